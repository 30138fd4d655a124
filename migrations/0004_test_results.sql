-- Per-test results, reported live by the pytest plugin in the runner image.

alter table runs
    -- a per-run secret that marks the plugin's records in the output, so
    -- that text a test prints is never taken for a result
    add column record_token     text,
    add column collected        integer,
    add column passed           integer not null default 0,
    add column failed           integer not null default 0,
    add column skipped          integer not null default 0,
    add column xfailed          integer not null default 0,
    add column xpassed          integer not null default 0,
    add column errors           integer not null default 0,
    add column current_test     text,
    add column junit_xml        text;

create table run_tests (
    run_id      bigint not null references runs (id) on delete cascade,
    -- the result's position in the run (results arrive in this order)
    idx         integer not null,
    nodeid      text not null,
    outcome     text not null check (outcome in
                    ('passed', 'failed', 'skipped', 'xfailed', 'xpassed', 'error')),
    duration_ms integer not null default 0,
    message     text,
    longrepr    text,
    primary key (run_id, idx)
);

-- A test's history across runs, newest first.
create index run_tests_history on run_tests (nodeid, run_id desc);
