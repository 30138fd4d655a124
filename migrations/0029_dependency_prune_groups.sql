-- Dependency images are pruned per group (DEPS_KEEP_IMAGES of each): a
-- catalog project's by its name, a tree's by its name and the username its
-- builds were for. A tree's name is its sender's folder's and usernames are
-- free text, so grouping trees by name alone let one person's builds push
-- another's images out. The web and the worker write this table already
-- (0020_roles.sql grants it whole, new columns included).
alter table dependency_images add column prune_group text;
update dependency_images set prune_group = project;
alter table dependency_images alter column prune_group set not null;

create index dependency_images_by_prune_group
    on dependency_images (prune_group, last_used_at desc);
