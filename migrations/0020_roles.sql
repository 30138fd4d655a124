-- Least privilege: what the web may write, and what only workers write.
--
-- Two roles without a login, made once per cluster (roles are the cluster's,
-- grants each database's): te_web (pages, the API, operators) and te_worker
-- (the executor). A process of the `web` role works as te_web, a `worker` as
-- te_worker, `serve` with one pool of each; the login of DATABASE_URL owns
-- the tables and only migrates (docs/architecture.md, "Database roles").
--
-- The web creates queued runs, cancels them, hands free environments to the
-- runs waiting for them, edits environments and keeps the sessions. It never
-- writes a verdict: not a run's status past `cancelled`, not its results,
-- resources, image or worker. A worker never reads the sessions.
-- scripts/lib.sh makes them as the cluster's administrator, so the login
-- needs no CREATEROLE; elsewhere (compose) the login makes them.
do $$
declare
    name text;
begin
    foreach name in array array['te_web', 'te_worker'] loop
        begin
            if not exists (select from pg_roles where rolname = name) then
                execute format('create role %I nologin', name);
            end if;
        exception when duplicate_object or unique_violation then null;
        end;
        -- The owner may act as either (`set role`).
        if not pg_has_role(current_user, name, 'member') then
            execute format('grant %I to %I', name, current_user);
        end if;
    end loop;
end $$;

-- The web.
grant usage on schema tower_sessions to te_web;
grant select, insert, update, delete on tower_sessions.session to te_web;
grant select on environments, runs, run_logs, run_tests, run_resources,
                dependency_images, workers, installation to te_web;
grant insert, update, delete on environments to te_web;
grant insert (username, environment_id, files, file_sha256, queue_if_busy, holds_environment,
              millicpus, memory_mb, pids_limit, timeout_secs, project, tree_sha256)
    on runs to te_web;
grant update (status, holds_environment, finished_at, reason, cancel_requested,
              log_lines, log_bytes) on runs to te_web;
grant insert on run_logs to te_web;
grant delete on dependency_images to te_web;
grant update (draining) on workers to te_web;
grant usage on all sequences in schema public to te_web;

-- The workers.
grant select on environments, installation to te_worker;
grant select, insert, update, delete on runs, run_logs, run_tests, run_resources,
                dependency_images, workers to te_worker;
grant usage on all sequences in schema public to te_worker;

-- The web moves a run's status only from `queued` to `cancelled`; the rest is
-- the workers' (a column grant cannot say which values).
create or replace function runs_web_writes_no_verdict() returns trigger
language plpgsql as $$
begin
    if new.status is distinct from old.status
       and not (old.status = 'queued' and new.status = 'cancelled') then
        raise exception 'the web role may not move run % from % to %',
            old.id, old.status, new.status
            using errcode = 'insufficient_privilege';
    end if;
    return new;
end $$;
create trigger runs_web_writes_no_verdict
    before update of status on runs
    for each row when (current_user = 'te_web')
    execute function runs_web_writes_no_verdict();
