-- Where a run's time went: queued (created → started), container ready
-- (started → ready_at, when its files were sent), pytest (→ exited_at),
-- and storing the rest (→ finished_at); and whether the run got a warm
-- (pre-started) sandbox or a fresh one.
alter table runs
    add column ready_at  timestamptz,
    add column exited_at timestamptz,
    add column warm      boolean;
