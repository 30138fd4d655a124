-- Each run's CPU, memory (working set) and pids over time, sampled about once
-- a second by the executor and downsampled to at most ~1,000 points per run;
-- the run row keeps the summary.
create table run_resources (
    run_id bigint not null references runs (id) on delete cascade,
    t_ms integer not null,
    cpu_percent real not null,
    memory_bytes bigint not null,
    pids integer not null,
    primary key (run_id, t_ms)
);

alter table runs
    add column peak_memory_bytes bigint,
    add column cpu_seconds double precision,
    add column peak_pids integer,
    add column peak_cpu_percent real;
