//! End to end over real HTTP: the demo's device flow (RFC 8628) driven by the third-party
//! `oauth2` crate (unmodified: `exchange_device_code`, `exchange_device_access_token`) as
//! the CLI, and the user step done through the demo's login and its `/device` page in
//! headless Chromium (`tests/browser/device_flow.mjs --approve`).
//!
//! Without Node.js, Chromium or playwright-core the user step is done by a cookie-keeping
//! HTTP client instead, with a notice; with `TWISTED_OAUTH2_REQUIRE_BROWSER=1` (set by
//! `.ci/run`) missing browser tools fail the test.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};

/// The user's side in headless Chromium: open the complete verification URI, sign in on the
/// demo's login page, confirm and allow on `/device`.
async fn approve_in_chromium(dir: &Path, base: &str, complete_uri: &str) {
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    let mut node = Command::new("node");
    node.arg(dir.join("device_flow.mjs"))
        .arg(base)
        .arg(&artifacts)
        .arg("--approve")
        .arg(complete_uri);
    let out = rocket::tokio::task::spawn_blocking(move || node.output())
        .await
        .expect("join")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser step failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("device page: signed in and allowed in Chromium"),
        "{stdout}"
    );
}

/// The user's side without a browser: sign in, open the verification page with the code,
/// confirm, allow, with a cookie-keeping HTTP client.
async fn approve_over_http(base: &str, complete_uri: &str) {
    let mut b = Browser::new();
    let r = b.get(complete_uri).await;
    assert_eq!(r.status().as_u16(), 303, "not signed in: to the login page");
    let login_url = absolute(base, r.headers()["location"].to_str().unwrap());
    let page = b.get(&login_url).await.text().await.unwrap();
    let next = hidden_input(&page, "next").unwrap();
    assert!(next.starts_with("/device?user_code="), "{next}");
    let r = b
        .post_form(
            &format!("{base}/login"),
            &[
                ("username", "alice"),
                ("password", "wonderland"),
                ("next", &next),
            ],
        )
        .await;
    assert!(r.status().is_redirection());
    let confirm = absolute(base, r.headers()["location"].to_str().unwrap());
    let r = b.get(&confirm).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let page = r.text().await.unwrap();
    assert!(page.contains("Demo command-line client"), "{page}");
    let user_code = hidden_input(&page, "user_code").unwrap();
    let csrf = hidden_input(&page, "csrf_token").unwrap();
    let r = b
        .post_form(
            &format!("{base}/device"),
            &[
                ("user_code", user_code.as_str()),
                ("csrf_token", csrf.as_str()),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("Device connected"));
}

#[rocket::async_test]
async fn device_flow_via_oauth2_crate_with_the_user_step_on_the_demo_page() {
    let port = free_port();
    let demo = serve_demo(demo_figment(port).merge(("oauth2.device.interval", 1))).await;
    let base = demo.base.clone();
    let client = BasicClient::new(ClientId::new("demo-cli".into()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(format!("{base}/oauth2/device_authorization")).unwrap(),
        )
        .set_token_uri(TokenUrl::new(format!("{base}/oauth2/token")).unwrap());
    let http = http_client();
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("VIEW_CLOCK".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{base}/device")
    );
    let complete = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .clone();

    let poller = {
        let (client, http, details) = (client.clone(), http.clone(), details.clone());
        rocket::tokio::spawn(async move {
            client
                .exchange_device_access_token(&details)
                .request_async(&http, rocket::tokio::time::sleep, None)
                .await
        })
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    match missing_browser_tools(&dir, &["playwright-core", "oauth4webapi"]) {
        None => approve_in_chromium(&dir, &base, &complete).await,
        Some(why) if std::env::var("TWISTED_OAUTH2_REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            panic!("browser test required but {why}")
        }
        Some(why) => {
            eprintln!("user step over HTTP instead of Chromium: {why}");
            approve_over_http(&base, &complete).await;
        }
    }
    let tokens = poller.await.unwrap().expect("tokens after approval");
    assert!(tokens.refresh_token().is_some());
    let clock = http
        .get(format!("{base}/clock"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(clock.status().as_u16(), 200);
}
