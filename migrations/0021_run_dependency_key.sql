-- The dependency image a run waited for: its page shows that build's output
-- while it installs, and its reason, last lines and log when it failed.
alter table runs add column dependency_key text;
