//! "Edit and run" on a tree's run: the form offers that tree's test files
//! (the run's chosen) and sends the tree again, never the tests folder's.

use crate::helpers::{browser, csrf_of, id, TestApp};
use crate::trees::{checkout, client_in, last_run, SUBMIT};

#[tokio::test]
async fn edit_and_run_of_a_trees_run_offers_the_trees_files_and_keeps_the_tree() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    std::fs::write(
        dir.join("tests/test_more.py"),
        "def test_more():\n    pass\n",
    )
    .unwrap();
    let args: Vec<&str> = SUBMIT
        .iter()
        .copied()
        .chain(["tests/test_more.py"])
        .collect();
    let (code, stdout, stderr) = client_in(&app, &dir, &args).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let run = last_run(&app).await;
    let tree_id = run["tree_id"].as_str().unwrap().to_owned();

    let page = app
        .get(&format!("/runs/new?from={}", id(&run)))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("name=\"tree_id\" value=\"{tree_id}\"")),
        "the form keeps the tree: {page}"
    );
    for file in ["tests/test_math.py", "tests/test_more.py"] {
        assert!(
            page.contains(&format!("value=\"{file}\"")),
            "{file}: {page}"
        );
    }
    assert!(
        page.contains("value=\"tests/test_more.py\" checked"),
        "the run's file is chosen: {page}"
    );

    let browser = browser();
    let csrf = csrf_of(&app, &browser, &format!("/runs/new?from={}", id(&run))).await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("username", "bob"),
        ("environment_id", "2"),
        ("files", "tests/test_math.py"),
        ("tree_id", tree_id.as_str()),
    ];
    let response = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let again = last_run(&app).await;
    assert_eq!(again["tree_id"], tree_id.as_str(), "{again}");
    assert_eq!(again["files"], serde_json::json!(["tests/test_math.py"]));
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}
