-- Browser sessions (tower-sessions' Postgres store uses this schema and table).
create schema if not exists tower_sessions;
create table if not exists tower_sessions.session (
    id          text primary key not null,
    data        bytea not null,
    expiry_date timestamptz not null
);
