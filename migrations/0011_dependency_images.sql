-- One row per dependency image: a project's declared dependencies installed
-- into an image derived from the runner image, keyed by the hash of the base
-- image and the files that declare them. The key is the primary key so a
-- build is recorded once; who builds it is decided by an advisory lock on
-- the key (held while building, freed if the builder dies), so two
-- processes never build the same key.
create table dependency_images (
    key          text primary key,
    project      text not null,
    state        text not null check (state in ('building', 'ready', 'failed')),
    image        text not null,
    size_bytes   bigint,
    -- pip's output, bounded (its head and its tail) by the builder
    log          text not null default '',
    -- for a failed build: pip's own line, e.g. "No matching distribution found for frobnicate==9"
    error        text,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    last_used_at timestamptz not null default now()
);

-- Pruning keeps the most recently used images of each project.
create index dependency_images_by_project on dependency_images (project, last_used_at desc);
