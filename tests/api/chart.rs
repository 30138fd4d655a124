//! The run page's CPU and memory charts say their values: the axis at the
//! limit, half of it and zero, the limit line named, times below, and a
//! tooltip for every point.

use std::time::Duration;

use crate::helpers::{id, remove_containers, TestApp};

const GROWS: &str = "import time\n\ndef test_grows():\n    blocks = []\n    for _ in range(4):\n        blocks.append(b'x' * (16 * 1024 * 1024))\n        time.sleep(1)\n";

#[tokio::test]
async fn the_charts_have_axis_values_a_named_limit_and_a_tooltip_per_point() {
    let app = TestApp::spawn_with(&[("chart/test_grows.py", GROWS)], |_| {}).await;
    let run_id = id(&app.create_run(47, &["chart/test_grows.py"]).await);
    app.wait_finished(run_id, Duration::from_secs(60)).await;
    let resources = app
        .get_json(&format!("/api/v1/runs/{run_id}/resources"))
        .await;
    let samples = resources["samples"].as_array().unwrap().len();
    assert!(samples >= 2, "{resources}");
    let page = app
        .get(&format!("/runs/{run_id}"))
        .await
        .text()
        .await
        .unwrap();

    for value in ["512 MiB", "256 MiB", "100 %", "50 %"] {
        assert!(
            page.contains(&format!(">{value}</span>")),
            "axis value {value}"
        );
    }
    assert!(
        page.contains(">limit 512 MiB</span>"),
        "the memory limit line is named"
    );
    assert!(
        page.contains(">limit 100 % (1 CPU)</span>"),
        "so is the CPU's"
    );
    assert!(page.contains("<span>0.0 s</span>"), "times below the chart");

    // One tooltip per point in each chart, saying when and how much.
    assert_eq!(
        page.matches("</title></rect>").count(),
        2 * samples,
        "{page}"
    );
    let first = &resources["samples"][0];
    let mib = first["memory_bytes"].as_f64().unwrap() / (1024.0 * 1024.0);
    let when = first["t_ms"].as_f64().unwrap() / 1000.0;
    let memory = if mib < 10.0 {
        format!("{mib:.1} MiB")
    } else {
        format!("{mib:.0} MiB")
    };
    assert!(
        page.contains(&format!("<title>{when:.1} s: {memory}</title>")),
        "the first point's tooltip: {when:.1} s: {memory}"
    );
    remove_containers(&app.instance);
}
