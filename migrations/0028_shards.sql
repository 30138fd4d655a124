-- Sharding (issue 30): one suite over several environments.
--
-- A sharded run is a parent row (`shards`: how many were asked for) that
-- holds no environment; its shard runs (`shard_of`, `shard_index` from 1)
-- each hold one and run like any run. The tests are a queue in the
-- database, `shard_tests`: the first shard to have collected fills it,
-- longest first by the durations recorded for each test; every shard takes
-- the next test when it is done with one (the executor answers its runner's
-- ask, src/executor/shard_feed.rs). When the last shard ends, the trigger
-- below gives the parent its verdict, counts and results.
alter table runs add column shards integer check (shards between 1 and 100),
                 add column shard_of bigint references runs (id),
                 add column shard_index integer,
                 -- how many tests the first shard collected (the queue holds
                 -- at most 20,000: fewer queued than collected is an error)
                 add column shard_collected integer;
create index runs_shard_of on runs (shard_of) where shard_of is not null;

-- A parent runs while its shards do, holding no environment itself.
alter table runs drop constraint running_runs_hold_their_environment;
alter table runs add constraint running_runs_hold_their_environment
    check (status <> 'running' or holds_environment or shards is not null);

create table shard_tests (
    parent_id   bigint not null references runs (id) on delete cascade,
    -- the queue's order: longest recorded duration first
    position    integer not null,
    nodeid      text not null,
    -- the duration the order was made from (the median for an unknown test)
    duration_ms integer,
    -- the shard run that took it (null: waiting, or given back)
    run_id      bigint references runs (id),
    -- the shard has asked for its next test since taking this one
    finished    boolean not null default false,
    -- times taken: a test given back by a shard that died is taken once more
    attempts    integer not null default 0,
    primary key (parent_id, position)
);
create unique index shard_tests_once on shard_tests (parent_id, md5(nodeid));
create index shard_tests_by_run on shard_tests (run_id) where run_id is not null;

grant insert (shards, shard_of, shard_index, status, started_at) on runs to te_web;
-- (the parent says how many shards it got, once they are made)
grant update (shards) on runs to te_web;
grant select on shard_tests to te_web;
grant select, insert, update, delete on shard_tests to te_worker;

-- The web inserts queued runs, and a sharded run's parent as running
-- without an environment: never a verdict (the column grant cannot say
-- which values; runs_web_writes_no_verdict guards updates).
create or replace function runs_web_inserts_no_verdict() returns trigger
language plpgsql as $$
begin
    if not (new.status = 'queued'
            or (new.status = 'running' and new.shards is not null
                and not new.holds_environment and new.shard_of is null)) then
        raise exception 'the web role may not create run % as %', new.id, new.status
            using errcode = 'insufficient_privilege';
    end if;
    return new;
end $$;
create trigger runs_web_inserts_no_verdict
    before insert on runs
    for each row when (current_user = 'te_web')
    execute function runs_web_inserts_no_verdict();

-- When a shard ends: the test it had taken and not reported goes back to
-- the queue (once), and if it was the last shard running, the parent ends.
-- The parent's row is locked first, so of two shards ending at once the
-- second sees the first ended. Security definer: a queued shard cancelled
-- by the web ends its parent too, and only this function writes a parent's
-- verdict.
create or replace function end_shard() returns trigger
language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $$
declare
    parent runs%rowtype;
    total integer;
    unreported integer;
    bad_shard text;
    verdict text;
    why text;
begin
    update shard_tests s set run_id = null, finished = false
     where s.parent_id = new.shard_of and s.run_id = new.id and s.attempts < 2
       and not exists (select 1 from run_tests t
                        where t.run_id = new.id and md5(t.nodeid) = md5(s.nodeid)
                          and t.nodeid = s.nodeid);
    select * into parent from runs where id = new.shard_of for update;
    if parent.status not in ('queued', 'running')
       or exists (select 1 from runs where shard_of = parent.id and id <> new.id
                    and status in ('queued', 'running')) then
        return null;
    end if;
    insert into run_tests (run_id, idx, nodeid, outcome, duration_ms, message, longrepr,
                           cpu_ms, peak_rss_bytes)
    select parent.id, (row_number() over (order by r.shard_index, t.idx))::int - 1, t.nodeid,
           t.outcome, t.duration_ms, t.message, t.longrepr, t.cpu_ms, t.peak_rss_bytes
      from run_tests t join runs r on r.id = t.run_id
     where r.shard_of = parent.id;
    select count(*) into total from shard_tests where parent_id = parent.id;
    select count(*) into unreported from shard_tests s
     where s.parent_id = parent.id
       and not exists (select 1 from run_tests t where t.run_id = parent.id
                         and md5(t.nodeid) = md5(s.nodeid) and t.nodeid = s.nodeid);
    select format('shard %s (run #%s) ended %s: %s', shard_index, id, status,
                  coalesce(reason, 'no reason given'))
      into bad_shard from runs
     where shard_of = parent.id and status <> 'success' order by shard_index limit 1;
    update runs p set
        collected = total,
        passed = c.passed, failed = c.failed, skipped = c.skipped,
        xfailed = c.xfailed, xpassed = c.xpassed, errors = c.errors,
        cpu_seconds = c.cpu_seconds, peak_memory_bytes = c.peak_memory_bytes
      from (select count(*) filter (where outcome = 'passed')::int as passed,
                   count(*) filter (where outcome = 'failed')::int as failed,
                   count(*) filter (where outcome = 'skipped')::int as skipped,
                   count(*) filter (where outcome = 'xfailed')::int as xfailed,
                   count(*) filter (where outcome = 'xpassed')::int as xpassed,
                   count(*) filter (where outcome = 'error')::int as errors,
                   (select sum(cpu_seconds) from runs where shard_of = parent.id) as cpu_seconds,
                   (select max(peak_memory_bytes) from runs where shard_of = parent.id)
                       as peak_memory_bytes
              from run_tests where run_id = parent.id) c
     where p.id = parent.id;
    select * into parent from runs where id = parent.id;
    why := concat_ws(', ',
        nullif(format('%s passed', parent.passed), '0 passed'),
        nullif(format('%s failed', parent.failed), '0 failed'),
        nullif(format('%s error', parent.errors), '0 error'),
        nullif(format('%s skipped', parent.skipped), '0 skipped'),
        nullif(format('%s xfailed', parent.xfailed), '0 xfailed'),
        nullif(format('%s xpassed', parent.xpassed), '0 xpassed'));
    why := format('%s over %s shards', coalesce(nullif(why, ''), 'no results'),
                  (select count(*) from runs where shard_of = parent.id));
    if parent.cancel_requested is not null then
        verdict := 'cancelled';
        why := parent.cancel_requested || ' · ' || why;
    elsif total = 0 then
        verdict := 'error';
        why := coalesce(bad_shard, 'no shard collected any test');
        bad_shard := null;
    elsif parent.failed + parent.errors > 0 then
        verdict := 'failed';
    elsif unreported > 0 or bad_shard is not null or parent.shard_collected > total then
        verdict := 'error';
    else
        verdict := 'success';
    end if;
    if unreported > 0 then
        why := why || format(' · %s of %s tests never reported', unreported, total);
    end if;
    if parent.shard_collected > total then
        why := why || format(' · %s tests were collected, only the first %s were queued',
                             parent.shard_collected, total);
    end if;
    if bad_shard is not null then
        why := why || ' · ' || bad_shard;
    end if;
    -- One JUnit report: each shard's <testsuite>, in shard order.
    update runs set status = verdict, reason = why, finished_at = now(), current_test = null,
                    exit_code = case verdict when 'success' then 0 when 'failed' then 1 end,
                    junit_xml = (select '<?xml version="1.0" encoding="utf-8"?><testsuites>'
                                        || string_agg(substring(s.junit_xml
                                               from '<testsuite[ >].*</testsuite>'), ''
                                               order by s.shard_index)
                                        || '</testsuites>'
                                   from runs s where s.shard_of = parent.id
                                    and s.junit_xml like '%</testsuite>%')
     where id = parent.id;
    return null;
end $$;

create trigger end_shard
    after update of status on runs
    for each row
    when (new.shard_of is not null and old.status in ('queued', 'running')
          and new.status not in ('queued', 'running'))
    execute function end_shard();
