-- Each test's CPU time and peak memory (issue 29), as the runner measured
-- them in the pytest process (runner-image/te_usage.py); null when the
-- runner sent none (older runners, a test cut short by a kill).
alter table run_tests add column cpu_ms integer,
                      add column peak_rss_bytes bigint;
