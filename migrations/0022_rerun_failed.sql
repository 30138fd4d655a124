-- A run may name the tests it runs (pytest node ids, within its files): a
-- rerun of another run's failed tests does, and points back at that run.
alter table runs add column node_ids text[],
                 add column rerun_of bigint references runs (id) on delete set null;
create index runs_rerun_of on runs (rerun_of) where rerun_of is not null;
grant insert (node_ids, rerun_of) on runs to te_web;
