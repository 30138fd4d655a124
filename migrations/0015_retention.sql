-- Retention (RETENTION_DAYS): the logs, samples and test results of runs
-- finished long ago are deleted; the run rows stay as history, marked here
-- so each run's data is deleted once and a pass reads only the runs left.
alter table runs add column data_deleted_at timestamptz;

create index runs_data_to_delete on runs (finished_at)
    where data_deleted_at is null and finished_at is not null;
