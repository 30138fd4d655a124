-- Runs outlive the environments they ran in: an operator may delete an
-- environment, and its runs keep their number and the limits they were given.
alter table runs drop constraint runs_environment_id_fkey;
alter table runs add constraint runs_environment_id_range check (environment_id between 1 and 100);
