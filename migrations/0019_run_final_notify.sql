-- A run that becomes final is announced on the channel `run_final` (payload:
-- its id), delivered when the transaction that ended it commits. Requests
-- waiting on a run (`GET /api/v1/runs/{id}?wait=`) answer at once instead
-- of their clients polling. Every path that ends a run (the executor, a
-- cancel, a lost worker's reconciliation) updates `status`, so the trigger
-- sees them all.
create or replace function notify_run_final() returns trigger
language plpgsql as $$
begin
    perform pg_notify('run_final', new.id::text);
    return null;
end $$;

create trigger run_final
    after update of status on runs
    for each row
    when (old.status in ('queued', 'running') and new.status not in ('queued', 'running'))
    execute function notify_run_final();
