//! Operator access: a blank token is refused at start, sessions end when the
//! token changes, wrong tokens are limited per client address, and expired
//! sessions are deleted.

use std::{net::IpAddr, time::Duration};

use serde_json::json;
use test_executor::{config::Config, AppState};

use crate::helpers::{config, csrf_of, fresh_database, test_files, TestApp};

const TOKEN: &str = "operator-secret";

fn from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Serves another instance of the app on `database_url` (as a restart
/// with a new configuration would) and returns its address.
async fn serve(database_url: &str, tweak: impl FnOnce(&mut Config)) -> String {
    let mut config = config(database_url, &test_files(&[]));
    config.no_executor = true;
    tweak(&mut config);
    let state = AppState::start(config).await.expect("starting the app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            test_executor::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    address
}

async fn signed_in_on(client: &reqwest::Client, address: &str) -> bool {
    client
        .get(format!("{address}/environments"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("Signed in as operator")
}

#[tokio::test]
async fn a_blank_operator_token_is_refused_at_start() {
    let database_url = fresh_database().await;
    for blank in ["", "   ", "\t"] {
        let mut config = config(&database_url, &test_files(&[]));
        config.operator_token = Some(blank.into());
        let err = AppState::start(config).await.err().expect("refused");
        assert!(
            err.to_string().contains("OPERATOR_TOKEN is set but blank"),
            "{err:#}"
        );
    }
}

#[tokio::test]
async fn the_binary_exits_with_a_clear_message_for_a_blank_token() {
    for blank in ["", " "] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-executor"))
            .env_clear()
            // Nothing listens there: a server that got past the check would
            // fail differently.
            .env("DATABASE_URL", "postgres://te:te@127.0.0.1:1/none")
            .env("OPERATOR_TOKEN", blank)
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("OPERATOR_TOKEN is set but blank"),
            "{blank:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn a_rotated_token_ends_the_old_sessions() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let database_url: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let database_url = format!(
        "{}/{database_url}",
        std::env::var("DATABASE_URL")
            .unwrap()
            .rsplit_once('/')
            .unwrap()
            .0
    );
    let operator = from("127.0.0.1");
    let csrf = csrf_of(&app, &operator, "/operator").await;
    let signed_in = operator
        .post(app.url("/operator/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    assert!(signed_in_on(&operator, &app.address).await);

    // The same token on another instance: the session holds (the cookie
    // reaches it, since cookies do not depend on the port).
    let same = serve(&database_url, |_| {}).await;
    assert!(signed_in_on(&operator, &same).await);

    let rotated = serve(&database_url, |c| {
        c.operator_token = Some("the-new-secret".into())
    })
    .await;
    assert!(!signed_in_on(&operator, &rotated).await);
    // The flag is gone from the stored session, not just ignored there.
    assert!(!signed_in_on(&operator, &app.address).await);
    let disabled = serve(&database_url, |c| c.operator_token = None).await;
    assert!(!signed_in_on(&operator, &disabled).await);
}

#[tokio::test]
async fn wrong_bearer_tokens_are_limited_per_address_and_the_right_one_works_from_another() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let guesser = from("127.0.0.1");
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..1000 {
        let status = guesser
            .patch(app.url("/api/v1/environments/46"))
            .bearer_auth(format!("guess-{n}"))
            .json(&json!({"cpus": 0.5}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        *statuses.entry(status).or_default() += 1;
    }
    assert_eq!(
        statuses,
        [(403, 10), (429, 990)].into_iter().collect(),
        "10 wrong tokens answered, the rest limited"
    );
    let blocked = guesser
        .patch(app.url("/api/v1/environments/46"))
        .bearer_auth(TOKEN)
        .json(&json!({"cpus": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 429, "the guessing address waits");
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    let elsewhere = from("127.0.0.2")
        .patch(app.url("/api/v1/environments/46"))
        .bearer_auth(TOKEN)
        .json(&json!({"cpus": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200, "{:?}", elsewhere.text().await);
    let env = &app.get_json("/api/v1/environments").await[45];
    assert_eq!(env["cpus"], 0.5);
}

#[tokio::test]
async fn wrong_sign_ins_are_limited_per_address_and_count_with_the_bearer_path() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let guesser = from("127.0.0.1");
    let csrf = csrf_of(&app, &guesser, "/operator").await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let response = guesser
            .post(app.url("/operator/sign-in"))
            .form(&[("_csrf", csrf.as_str()), ("token", "guess")])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(statuses[10], 429);
    let api = guesser
        .get(app.url("/api/v1/environments"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 429, "one budget for both paths");

    let operator = from("127.0.0.3");
    let csrf = csrf_of(&app, &operator, "/operator").await;
    let right = operator
        .post(app.url("/operator/sign-in"))
        .form(&[("_csrf", csrf.as_str()), ("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 303);
    assert!(signed_in_on(&operator, &app.address).await);
}

#[tokio::test]
async fn expired_sessions_are_deleted_and_live_ones_kept() {
    let app = TestApp::spawn_with(&[], |c| {
        c.no_executor = true;
        c.session_cleanup_secs = 1;
    })
    .await;
    for (id, expiry) in [
        ("expired-session", "now() - interval '1 day'"),
        ("live-session", "now() + interval '1 day'"),
    ] {
        sqlx::query(&format!(
            "insert into tower_sessions.session (id, data, expiry_date) values ($1, '\\x80', {expiry})"
        ))
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> =
            sqlx::query_scalar("select id from tower_sessions.session order by id")
                .fetch_all(&app.db)
                .await
                .unwrap();
        if left == ["live-session"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expired session still there: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn cookies_are_secure_only_when_configured() {
    for secure in [false, true] {
        let app = TestApp::spawn_with(&[], |c| {
            c.no_executor = true;
            c.secure_cookies = secure;
        })
        .await;
        let response = app.get("/operator").await;
        let csrf_cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        let name = if secure {
            "__Host-te_csrf="
        } else {
            "te_csrf="
        };
        assert!(csrf_cookie.starts_with(name), "{csrf_cookie}");
        // A client that sends Secure cookies over plain HTTP, as a browser
        // would over HTTPS.
        let pair = csrf_cookie.split(';').next().unwrap().to_owned();
        let token = pair.split_once('=').unwrap().1.to_owned();
        let signed_in = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(app.url("/operator/sign-in"))
            .header("cookie", pair)
            .form(&[("_csrf", token.as_str()), ("token", TOKEN)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 303);
        let session_cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
        assert!(session_cookie.starts_with("id="), "{session_cookie}");
        for cookie in [csrf_cookie.as_str(), session_cookie] {
            assert!(cookie.contains("HttpOnly"), "{cookie}");
            assert_eq!(cookie.contains("; Secure"), secure, "{cookie}");
        }
    }
}
