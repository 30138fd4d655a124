-- Trees a client sent (`submit --tree DIR`, issue 31): file contents by
-- their sha256 (tree_blobs), trees by their manifest (trees, tree_files).
-- A tree row is written, with all its files, in one transaction and only
-- once every content it names is stored: a tree is never half there.
create table tree_blobs (
    sha256 text primary key check (sha256 ~ '^[0-9a-f]{64}$'),
    content bytea not null,
    size bigint not null check (size = octet_length(content)),
    -- who sent it first: the per-username quota (TREE_QUOTA_BYTES) counts it
    username text not null,
    created_at timestamptz not null default now(),
    last_used_at timestamptz not null default now()
);
create index tree_blobs_username on tree_blobs (username);

create table trees (
    id text primary key check (id ~ '^[0-9a-f]{64}$'),
    name text not null,
    username text not null,
    files integer not null,
    bytes bigint not null,
    -- the bytes of content no tree had before this one: what its upload cost
    received_bytes bigint not null,
    created_at timestamptz not null default now(),
    -- a run of it touches it; retention deletes trees unused for RETENTION_DAYS
    last_used_at timestamptz not null default now()
);

create table tree_files (
    tree_id text not null references trees (id) on delete cascade,
    path text not null,
    mode integer not null check (mode in (33188, 33261)),
    -- no content is deleted while a tree names it
    sha256 text not null references tree_blobs (sha256),
    primary key (tree_id, path)
);
create index tree_files_sha256 on tree_files (sha256);

-- A run of a tree: its files are paths within it (no foreign key: a run's
-- row outlives the tree's retention).
alter table runs add column tree_id text;

grant select, insert, update on tree_blobs, trees, tree_files to te_web;
grant insert (tree_id) on runs to te_web;
grant select, update, delete on tree_blobs, trees, tree_files to te_worker;
