-- Projects: a run takes the files of one project (a folder under TESTS_DIR
-- with a pyproject.toml, setup.py, ... ) and the project's whole tree goes
-- into its container. Runs of files outside any project leave these null.
alter table runs
    -- the project's name (its folder relative to TESTS_DIR)
    add column project     text,
    -- sha256 of the tree as sent to the container (paths and contents), so
    -- "exactly what ran" is known; set at creation, then to what was sent
    add column tree_sha256 text,
    -- the image the run's container was created from, set when it starts
    add column image       text;
