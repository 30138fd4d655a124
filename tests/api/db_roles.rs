//! Least privilege in the database (migrations/0020_roles.sql): the app
//! works as `te_web` and `te_worker`, and neither can do the other's part.
//! The rest of the suite, whose apps run with both pools, shows that they
//! refuse nothing the app does.

use std::time::Duration;

use sqlx::PgPool;
use test_executor::db::{connect_as, DbRole};

use crate::helpers::{id, TestApp};

fn database_url(app: &TestApp) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL must be set");
    let (prefix, _) = base.rsplit_once('/').expect("a database name");
    format!("{prefix}/{}", app.database)
}

async fn refused(db: &PgPool, statement: &str, run: i64) {
    let err = sqlx::query(statement)
        .bind(run)
        .execute(db)
        .await
        .expect_err(statement);
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .unwrap_or_default();
    assert_eq!(code, "42501", "{statement}: {err}");
}

#[tokio::test]
async fn the_web_writes_no_verdict_and_a_worker_reads_no_session() {
    let app = TestApp::spawn().await;
    let run = id(&app.create_run(1, &["test_math.py"]).await);
    let finished = app.wait_finished(run, Duration::from_secs(60)).await;
    assert_eq!(finished["status"], "success", "{finished}");

    let web = connect_as(&database_url(&app), DbRole::Web).await.unwrap();
    for statement in [
        "update runs set status = 'failed' where id = $1",
        "update runs set exit_code = 1 where id = $1",
        "update runs set passed = 0 where id = $1",
        "delete from run_tests where run_id = $1",
        "insert into run_tests (run_id, idx, nodeid, outcome) values ($1, 99, 'x', 'passed')",
        "delete from runs where id = $1",
        "update workers set slots = 0 where $1 > 0",
        // a run born with a verdict, or a parent holding an environment
        "insert into runs (username, environment_id, files, file_sha256, status, millicpus,
                           memory_mb, pids_limit, timeout_secs)
         select 'ann', 2, '{a.py}', '{x}', 'success', 1000, 512, 256, 60 where $1 > 0",
        "insert into runs (username, environment_id, files, file_sha256, status, shards,
                           holds_environment, millicpus, memory_mb, pids_limit, timeout_secs)
         select 'ann', 2, '{a.py}', '{x}', 'running', 2, true, 1000, 512, 256, 60 where $1 > 0",
    ] {
        refused(&web, statement, run).await;
    }
    // What the web does write, it still may: a session, a cancel mark.
    sqlx::query(
        "insert into tower_sessions.session (id, data, expiry_date) values ('t', '', now())",
    )
    .execute(&web)
    .await
    .expect("the web keeps the sessions");

    let worker = connect_as(&database_url(&app), DbRole::Worker)
        .await
        .unwrap();
    refused(
        &worker,
        "select * from tower_sessions.session where $1 > 0",
        run,
    )
    .await;
    refused(
        &worker,
        "update environments set memory_mb = 1 where $1 > 0",
        run,
    )
    .await;

    let status: String = sqlx::query_scalar("select status from runs where id = $1")
        .bind(run)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "success", "a refused statement changed the run");
}
