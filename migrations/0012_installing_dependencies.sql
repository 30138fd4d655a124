-- While the executor gets a project's dependency image (built once per key,
-- perhaps by another process), the run says so: "installing dependencies (42 s)".
alter table runs add column installing_since timestamptz;
