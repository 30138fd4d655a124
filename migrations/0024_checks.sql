-- Checks (issue 29): a question about one failed test answered by runs of
-- it. `flaky` runs the test alone `times` times and counts its failures;
-- `bisect` runs it after halves of the tests that ran before it in the
-- source run (`candidates`, in their order) to find the one that makes it
-- fail. A check's runs are ordinary runs pointing back at it, one at a
-- time: each is created when the previous one has ended (by the check
-- driver, src/check_driver/), so they queue and hold their environment
-- like any run. The progress is those runs; `verdict` is written at the end.
create table checks (
    id bigserial primary key,
    kind text not null check (kind in ('flaky', 'bisect')),
    nodeid text not null,
    source_run_id bigint not null references runs (id),
    environment_id integer not null,
    username text not null,
    times integer check (times between 1 and 50),
    candidates text[] not null default '{}',
    status text not null default 'running'
        check (status in ('running', 'done', 'error', 'cancelled')),
    verdict jsonb,
    reason text,
    created_at timestamptz not null default now(),
    finished_at timestamptz
);

-- One check at a time per environment: a second is refused (409) while one
-- runs, whichever process asks.
create unique index one_check_per_environment on checks (environment_id)
    where status = 'running';
create index checks_by_nodeid on checks (md5(nodeid), id desc);

alter table runs add column check_id bigint references checks (id),
                 add column check_step integer;
-- A step is created once, even by two drivers at the same moment.
create unique index one_run_per_check_step on runs (check_id, check_step)
    where check_id is not null;

-- The web creates checks and their runs (queued runs are the web's), and
-- its driver ends them; a check's verdict is read off runs that the
-- workers ended. Workers only read checks.
grant select, insert on checks to te_web;
grant update (status, verdict, reason, finished_at) on checks to te_web;
grant insert (check_id, check_step) on runs to te_web;
grant select on checks to te_worker;
grant usage on sequence checks_id_seq to te_web, te_worker;
