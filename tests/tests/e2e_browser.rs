//! End to end in a real browser: headless Chromium, driven by `tests/browser/consent_flow.mjs`
//! (playwright-core), against the demo served on a loopback port: the code flow, the
//! browser client, the demo's pages by keyboard only and on a 375 px viewport. Screenshots
//! are kept in `target/browser-artifacts/`.
//!
//! Skips with a notice when Node.js, Chromium or playwright-core are missing, unless
//! `TWISTED_OAUTH2_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs them).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[rocket::async_test]
async fn chromium_logs_in_consents_and_lands_on_the_client_with_code_and_state() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    if let Some(why) = missing_browser_tools(&dir, &["playwright-core"]) {
        if std::env::var("TWISTED_OAUTH2_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("browser test required but {why}");
        }
        eprintln!("skipping the Chromium test: {why}");
        return;
    }
    let demo = serve_demo(demo_figment(free_port())).await;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    let base = demo.base.clone();
    let out = rocket::tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("consent_flow.mjs"))
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
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("landed on the client with a code"),
        "{stdout}"
    );
    assert!(stdout.contains("GET /clock -> 200"), "{stdout}");
    assert!(
        stdout.contains("demo keyboard: landed on the client with a code"),
        "{stdout}"
    );
    assert!(
        stdout.contains("demo narrow: login, consent and client fit 375 px"),
        "{stdout}"
    );
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    for shot in [
        "consent-page.png",
        "demo-login.png",
        "demo-client-narrow.png",
    ] {
        assert!(kept.join(shot).exists(), "{shot}");
    }
}
