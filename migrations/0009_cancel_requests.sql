-- A cancel asked for a running run. The run keeps its environment (and its
-- status) until the executor that follows it has killed its container and
-- seen it dead; it then ends as `cancelled` with this reason. A queued run
-- has no container and is cancelled at once instead.
alter table runs add column cancel_requested text;
