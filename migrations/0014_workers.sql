-- Several Docker hosts share one queue: each executor process ("worker")
-- registers here under a stable name and sends a heartbeat. A worker is lost
-- when the advisory lock on its `lock_id` is free and its heartbeat is older
-- than WORKER_LOST_AFTER; its running runs are then ended by a survivor.
create table workers (
    name text primary key,
    -- the advisory lock the worker's process holds while alive (runs.worker_id)
    lock_id bigint not null,
    engine text not null,
    engine_id text not null default '',
    engine_version text not null default '',
    cpus integer not null default 0,
    memory_bytes bigint not null default 0,
    slots integer not null,
    warm_pool integer not null default 0,
    warm_ready integer not null default 0,
    running integer not null default 0,
    labels text[] not null default '{}',
    started_at timestamptz not null default now(),
    last_seen timestamptz not null default now(),
    draining boolean not null default false
);

-- Which worker (by name, stable across its restarts) executes a run.
alter table runs add column worker_name text;
create index runs_running_by_worker on runs (worker_name) where status = 'running';

-- Only workers having every one of these labels take the environment's runs.
alter table environments add column required_labels text[] not null default '{}';
