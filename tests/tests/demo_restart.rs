//! The demo keeps its grants in SQLite (its Rocket.toml says `storage = "sqlite://..."`):
//! a restarted demo still accepts the access and refresh tokens issued before.

mod common;

use common::*;

fn token_of(body: &str, field: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
    v[field].as_str().expect(field).to_owned()
}

#[rocket::async_test]
async fn restarted_demo_accepts_tokens_issued_before() {
    let dir = std::env::temp_dir().join(format!(
        "twisted-oauth2-demo-restart-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("demo.db");
    let _ = std::fs::remove_file(&db);
    let url = format!("sqlite://{}", db.display());
    let http = http_client();

    // Both runs are one deployment: the same issuer (the `iss` of demo-svc's JWTs) and
    // resource identifier (the audience of its tokens, RFC 8707), though the second listens
    // on another port. demo-svc's JWT verifies after the restart with the signing key the
    // first run generated and sealed in the SQLite file.
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}");
    let deployment = |port| {
        demo_figment(port)
            .merge(("oauth2.storage", url.as_str()))
            .merge(("oauth2.resource", resource.as_str()))
            .merge(("oauth2.issuer", resource.as_str()))
    };
    let demo = serve_demo(deployment(port)).await;
    let r = http
        .post(format!("{}/oauth2/token", demo.base))
        .basic_auth("demo-app", Some("app-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=VIEW_CLOCK")
        .send()
        .await
        .unwrap();
    // demo-app may not use client_credentials: take a token from demo-svc instead.
    assert_eq!(r.status().as_u16(), 400);
    let body = http
        .post(format!("{}/oauth2/token", demo.base))
        .basic_auth("demo-svc", Some("secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=VIEW_CLOCK")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let access = token_of(&body, "access_token");
    drop(demo);
    rocket::tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let demo = serve_demo(deployment(free_port())).await;
    let r = http
        .get(format!("{}/clock", demo.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "access token survives the restart"
    );
    drop(demo);
    let _ = std::fs::remove_dir_all(&dir);
}
