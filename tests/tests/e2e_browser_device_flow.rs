//! End to end in a real browser: the device flow (RFC 8628) with the unmodified npm client
//! `oauth4webapi` as the device (`tests/browser/device_flow.mjs`: discovery, device
//! authorization, polling, GET /clock), and the user's step in headless Chromium on the
//! demo's login and `/device` pages. Screenshots are kept in `target/browser-artifacts/`.
//!
//! Skips with a notice when Node.js, Chromium, playwright-core or oauth4webapi are missing,
//! unless `TWISTED_OAUTH2_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs them).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[rocket::async_test]
async fn oauth4webapi_device_flow_with_the_user_step_in_chromium_reads_the_clock() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    if let Some(why) = missing_browser_tools(&dir, &["playwright-core", "oauth4webapi"]) {
        if std::env::var("TWISTED_OAUTH2_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("browser test required but {why}");
        }
        eprintln!("skipping the oauth4webapi device-flow test: {why}");
        return;
    }
    let demo = serve_demo(demo_figment(free_port()).merge(("oauth2.device.interval", 1))).await;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    let base = demo.base.clone();
    let out = rocket::tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("device_flow.mjs"))
            .arg(&base)
            .arg(&artifacts)
            .output()
    })
    .await
    .expect("join")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "device flow failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "oauth4webapi: device authorization, user code issued",
        "device page: signed in and allowed in Chromium",
        "oauth4webapi: tokens after the user allowed on /device",
        "oauth4webapi: GET /clock -> 200",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    assert!(kept.join("device-connected.png").exists());
}
