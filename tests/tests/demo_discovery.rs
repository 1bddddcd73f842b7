//! The demo's revocation, introspection and discovery documents (RFC 7009, 7662, 8414,
//! 9728), served through the fairing from the repository's `Rocket.toml`. Clients
//! authenticate with `client_secret_post` here (the adapter tests cover Basic).

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::Value;

const ISSUER: &str = "http://127.0.0.1:8000";

async fn demo() -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"));
    Client::untracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("the demo ignites")
}

async fn json(r: LocalResponse<'_>) -> Value {
    serde_json::from_str(&r.into_string().await.unwrap_or_default()).expect("JSON body")
}

async fn svc_token(c: &Client) -> String {
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body("grant_type=client_credentials&scope=VIEW_CLOCK&client_id=demo-svc&client_secret=secret")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    json(r).await["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// The README's command, `curl -u demo-svc:secret -d grant_type=client_credentials
/// http://127.0.0.1:8000/oauth2/token`: Basic credentials, no scope (the default applies).
#[rocket::async_test]
async fn demo_answers_the_readme_client_credentials_curl_with_a_token() {
    let c = demo().await;
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new(
            "Authorization",
            "Basic ZGVtby1zdmM6c2VjcmV0", // demo-svc:secret
        ))
        .body("grant_type=client_credentials")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let body = json(r).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "VIEW_CLOCK");
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
}

fn bearer(t: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {t}"))
}

#[rocket::async_test]
async fn demo_protected_resource_lists_exactly_its_route_scopes_rfc9728_2() {
    let c = demo().await;
    let r = c
        .get("/.well-known/oauth-protected-resource")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v = json(r).await;
    assert_eq!(v["scopes_supported"], serde_json::json!(["VIEW_CLOCK"]));
    assert_eq!(v["resource"], ISSUER);
    assert_eq!(v["authorization_servers"], serde_json::json!([ISSUER]));
    assert_eq!(v["bearer_methods_supported"], serde_json::json!(["header"]));
}

#[rocket::async_test]
async fn demo_serves_authorization_server_metadata_rfc8414_3() {
    let c = demo().await;
    let r = c
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v = json(r).await;
    assert_eq!(v["issuer"], ISSUER);
    assert_eq!(
        v["authorization_endpoint"],
        format!("{ISSUER}/oauth2/authorize")
    );
    assert_eq!(v["token_endpoint"], format!("{ISSUER}/oauth2/token"));
    assert_eq!(v["revocation_endpoint"], format!("{ISSUER}/oauth2/revoke"));
    assert_eq!(
        v["introspection_endpoint"],
        format!("{ISSUER}/oauth2/introspect")
    );
    let mut scopes: Vec<String> = serde_json::from_value(v["scopes_supported"].clone()).unwrap();
    scopes.sort();
    assert_eq!(scopes, ["VIEW_CLOCK", "profile"]);
    assert_eq!(v["authorization_response_iss_parameter_supported"], true);
    assert_eq!(v["jwks_uri"], format!("{ISSUER}/oauth2/jwks"));
}

#[rocket::async_test]
async fn demo_publishes_its_signing_keys_at_jwks_uri_rfc7517_5() {
    let c = demo().await;
    let r = c.get("/oauth2/jwks").dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert!(r
        .headers()
        .get_one("Cache-Control")
        .is_some_and(|v| v.starts_with("public, max-age=")));
    let v = json(r).await;
    let keys = v["keys"].as_array().unwrap();
    // ES256 and EdDSA: the key that signs and the next one of each.
    assert_eq!(keys.len(), 4, "{v}");
    assert!(keys
        .iter()
        .all(|k| k.get("d").is_none() && k["use"] == "sig"));
}

#[rocket::async_test]
async fn demo_revoked_token_is_refused_at_me_rfc7009_2_1() {
    let c = demo().await;
    let t = svc_token(&c).await;
    assert_eq!(
        c.get("/me").header(bearer(&t)).dispatch().await.status(),
        Status::Ok
    );
    let r = c
        .post("/oauth2/revoke")
        .header(ContentType::Form)
        .body(format!("token={t}&client_id=demo-svc&client_secret=secret"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    for path in ["/me", "/clock"] {
        let r = c.get(path).header(bearer(&t)).dispatch().await;
        assert_eq!(r.status(), Status::Unauthorized, "{path}");
    }
}

#[rocket::async_test]
async fn demo_rs_client_introspects_rfc7662_2_1() {
    let c = demo().await;
    let t = svc_token(&c).await;
    let r = c
        .post("/oauth2/introspect")
        .header(ContentType::Form)
        .body(format!(
            "token={t}&client_id=demo-rs&client_secret=rs-secret"
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    let v = json(r).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "demo-svc");
    assert_eq!(v["scope"], "VIEW_CLOCK");
    assert_eq!(v["iss"], ISSUER);
    let r = c
        .post("/oauth2/introspect")
        .header(ContentType::Form)
        .body(format!("token={t}&client_id=demo-svc&client_secret=secret"))
        .dispatch()
        .await;
    assert_eq!(
        r.status(),
        Status::Unauthorized,
        "demo-svc may not introspect"
    );
}

#[rocket::async_test]
async fn demo_challenge_names_the_resource_metadata_rfc9728_5_1() {
    let c = demo().await;
    let r = c.get("/clock").dispatch().await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some(
            "Bearer realm=\"twisted-oauth2\", scope=\"VIEW_CLOCK\", resource_metadata=\"http://127.0.0.1:8000/.well-known/oauth-protected-resource\""
        )
    );
}
