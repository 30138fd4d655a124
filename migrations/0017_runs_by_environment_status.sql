-- The runs list filtered by environment and status (`/?environment_id=&status=`):
-- without it, the newest of one status in one environment are found by
-- reading that environment's runs newest first and skipping the others
-- (~350 rows read for 50 shown at 1,000,000 runs); with it, 50.
create index runs_by_environment_status on runs (environment_id, status, id desc);
