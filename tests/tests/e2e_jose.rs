//! Code nobody here wrote verifies our JWT access tokens: the demo (its own `Rocket.toml`,
//! where `demo-svc` gets RFC 9068 tokens) issues a `client_credentials` token, and npm `jose`
//! (`tests/jose/verify.mjs`) verifies it with `createRemoteJWKSet(<jwks_uri>)` and
//! `jwtVerify` checking `typ: at+jwt`, the issuer, the audience and the RFC 9068 §2.2
//! claims. The same token checked for another audience, and a tampered one, are refused.
//!
//! Skips with a notice when Node.js or `jose` (`cd tests/jose && npm ci`) is missing,
//! unless `TWISTED_OAUTH2_REQUIRE_JOSE=1` (set by `.ci/run`, which installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

fn jose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("jose")
}

/// Why the test cannot run here, or `None`.
fn missing() -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node not found".into());
    }
    if !jose_dir().join("node_modules/jose/package.json").exists() {
        return Some("jose not installed (cd tests/jose && npm ci)".into());
    }
    None
}

fn skip() -> bool {
    let Some(why) = missing() else { return false };
    if std::env::var("TWISTED_OAUTH2_REQUIRE_JOSE").is_ok_and(|v| v == "1") {
        panic!("the npm jose test is required but {why}");
    }
    eprintln!("skipping the npm jose test: {why}");
    true
}

/// What `jose` says of `token` checked for `issuer` and `audience` against `jwks_uri`.
async fn jose_verify(jwks_uri: &str, issuer: &str, audience: &str, token: &str) -> Value {
    let (jwks_uri, issuer, audience, token) = (
        jwks_uri.to_owned(),
        issuer.to_owned(),
        audience.to_owned(),
        token.to_owned(),
    );
    let out = rocket::tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(jose_dir())
            .args(["verify.mjs", &jwks_uri, &issuer, &audience, &token])
            .output()
            .expect("node runs")
    })
    .await
    .expect("the node task ends");
    assert!(
        out.status.success(),
        "verify.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

async fn get_json(http: &oauth2::reqwest::Client, url: &str) -> Value {
    let r = http.get(url).send().await.expect("GET");
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    serde_json::from_str(&r.text().await.expect("body")).expect("JSON")
}

async fn token(http: &oauth2::reqwest::Client, base: &str, id: &str, secret: &str) -> Value {
    let r = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert!(r.status().is_success(), "token: {}", r.status());
    serde_json::from_str(&r.text().await.expect("body")).expect("token response")
}

#[rocket::async_test]
async fn npm_jose_verifies_the_demos_jwt_access_token_against_its_jwks() {
    if skip() {
        return;
    }
    let demo = serve_demo(demo_figment(free_port())).await;
    let http = http_client();
    let base = &demo.base;
    let meta = get_json(
        &http,
        &format!("{base}/.well-known/oauth-authorization-server"),
    )
    .await;
    let issuer = meta["issuer"].as_str().expect("issuer").to_owned();
    let jwks_uri = meta["jwks_uri"].as_str().expect("jwks_uri").to_owned();
    let resource = get_json(
        &http,
        &format!("{base}/.well-known/oauth-protected-resource"),
    )
    .await;
    let audience = resource["resource"].as_str().expect("resource").to_owned();

    let issued = token(&http, base, "demo-svc", "secret").await;
    let jwt = issued["access_token"].as_str().expect("access_token");
    let v = jose_verify(&jwks_uri, &issuer, &audience, jwt).await;
    assert_eq!(v["ok"], true, "jose refused our token: {v}");
    assert_eq!(v["header"]["typ"], "at+jwt");
    assert!(v["header"]["kid"].is_string(), "{v}");
    let p = &v["payload"];
    assert_eq!(p["iss"], issuer.as_str());
    assert_eq!(p["client_id"], "demo-svc");
    assert_eq!(
        p["sub"], "demo-svc",
        "a client credentials token names the client"
    );
    assert_eq!(p["scope"], "VIEW_CLOCK");
    assert!(p["jti"].as_str().is_some_and(|j| !j.is_empty()), "{p}");
    let (iat, exp) = (p["iat"].as_i64().unwrap(), p["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, issued["expires_in"].as_i64().unwrap());

    // The same token checked for another audience, and a tampered one, are refused.
    let other = jose_verify(&jwks_uri, &issuer, "https://elsewhere.example", jwt).await;
    assert_eq!(other["ok"], false, "{other}");
    assert_eq!(other["code"], "ERR_JWT_CLAIM_VALIDATION_FAILED", "{other}");
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    // A character inside the signature (the last one may carry only padding bits).
    let sig = parts[2].clone();
    let flipped = if &sig[5..6] == "A" { "B" } else { "A" };
    parts[2] = format!("{}{flipped}{}", &sig[..5], &sig[6..]);
    let tampered = jose_verify(&jwks_uri, &issuer, &audience, &parts.join(".")).await;
    assert_eq!(tampered["ok"], false, "{tampered}");
}
