-- Where a run hung: every thread's Python stack shortly before its deadline
-- (bounded by the executor: 16 threads, 40 frames each, short strings).
alter table runs add column hang_stacks jsonb;
