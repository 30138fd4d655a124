-- A run: some catalog files executed once in one environment.
create table runs (
    id              bigserial primary key,
    username        text not null,
    environment_id  integer not null references environments (id),
    files           text[] not null check (cardinality(files) > 0),
    -- sha256 of each file's content at creation, in the order of `files`
    file_sha256     text[] not null,
    status          text not null default 'queued' check (status in
                        ('queued', 'running', 'success', 'failed', 'error', 'cancelled', 'timed_out')),
    -- True while this run occupies its environment: from acceptance until it
    -- finishes. A run that waits in line for a busy environment is queued
    -- without holding it, and is promoted in arrival order.
    holds_environment boolean not null default false,
    queue_if_busy   boolean not null default false,
    reason          text,
    exit_code       integer,
    -- the limits the run was given, copied so that later changes to the
    -- environment do not rewrite history
    millicpus       integer not null,
    memory_mb       integer not null,
    pids_limit      integer not null,
    timeout_secs    integer not null,
    created_at      timestamptz not null default now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    -- which executor process runs it (it holds a Postgres advisory lock on
    -- this number while alive) and on which Docker engine
    worker_id       bigint,
    engine_id       text,
    -- log bookkeeping: lines stored so far (the next sequence number) and
    -- bytes, so that an executor taking over after a crash resumes exactly
    log_lines       integer not null default 0,
    log_bytes       bigint not null default 0,
    log_truncated   boolean not null default false,
    constraint finished_runs_release_their_environment
        check (status in ('queued', 'running') or not holds_environment),
    constraint running_runs_hold_their_environment
        check (status <> 'running' or holds_environment)
);

-- The hard rule: never two runs in one environment. Enforced here rather than
-- by a lock in memory, so that it holds across processes, crashes and races.
create unique index one_run_per_environment
    on runs (environment_id) where holds_environment;

-- Newest-first listing, with or without filters.
create index runs_newest_first on runs (id desc);
create index runs_by_user on runs (username, id desc);
create index runs_by_environment on runs (environment_id, id desc);
create index runs_by_status on runs (status, id desc);
-- The executor's queue: only the few active rows.
create index runs_active on runs (id) where status in ('queued', 'running');

-- Every line a run printed, in order.
create table run_logs (
    run_id  bigint not null references runs (id) on delete cascade,
    seq     integer not null,
    stream  smallint not null check (stream in (1, 2)), -- 1 stdout, 2 stderr
    ts      timestamptz not null,
    line    text not null,
    primary key (run_id, seq)
);

-- One row per database: names this installation's containers, so that two
-- installations (or test databases) sharing one Docker engine never touch
-- each other's containers.
create table installation (
    only_row    boolean primary key default true check (only_row),
    id          text not null default substr(md5(random()::text || clock_timestamp()::text), 1, 12)
);
insert into installation default values;
