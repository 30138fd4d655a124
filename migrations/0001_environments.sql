-- Test environments: each one a set of limits that a run is executed with.
-- Ids are the numbers people pick in the form, so they stay within 1..100.
create table environments (
    id           integer primary key check (id between 1 and 100),
    -- thousandths of a CPU, so that 0.5 or 1.25 CPUs are exact
    millicpus    integer not null check (millicpus between 10 and 256000),
    memory_mb    integer not null check (memory_mb between 16 and 1048576),
    pids_limit   integer not null check (pids_limit between 8 and 1000000),
    timeout_secs integer not null check (timeout_secs between 1 and 86400),
    enabled      boolean not null default true,
    updated_at   timestamptz not null default now()
);

-- Every environment exists from the start with the default limits:
-- 1 CPU, 512 MiB of memory and no swap, 256 processes, 15 minutes.
insert into environments (id, millicpus, memory_mb, pids_limit, timeout_secs)
select n, 1000, 512, 256, 900 from generate_series(1, 100) as n;
