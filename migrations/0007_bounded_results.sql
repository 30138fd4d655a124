-- A test's history is looked up by node id. Parametrised ids can be KBs
-- long, beyond what a btree row holds ("index row size 6072 exceeds btree
-- version 4 maximum 2704"), so the index holds a hash of the id instead;
-- the history queries compare md5(nodeid) first, then the id itself.
drop index if exists run_tests_history;
create index run_tests_history on run_tests (md5(nodeid), run_id desc);
