-- 0029 put every existing image in its project's group; a tree's new builds
-- prune only "<name> by <username>", so a tree's older images (a
-- requirements-only tree's are still in use: its key did not change) would
-- never be pruned again. Each goes to the group of the last run that used it.
update dependency_images d
   set prune_group = d.project || ' by ' || (
         select r.username from runs r
          where r.dependency_key = d.key
          order by r.id desc limit 1)
 where d.project like 'tree:%'
   and d.prune_group = d.project
   and exists (select 1 from runs r where r.dependency_key = d.key);
