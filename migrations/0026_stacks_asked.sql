-- "Where is it now?": a person asks a running run for every thread's stack.
-- The web raises the counter; the executor following the run sees it move
-- (in the answer to its next counters write) and signals the container,
-- whose runner sends the stacks; they are kept in hang_stacks (the latest
-- wins: one asked for, or the one taken shortly before the deadline).
alter table runs add column stacks_asked integer not null default 0;
grant update (stacks_asked) on runs to te_web;
