//! CORS for browser clients (MCP inspectors, web agents): preflight and
//! `Access-Control-Allow-Origin` without credentials on the discovery documents, token and
//! revocation endpoints; protected routes' 401/403 expose `WWW-Authenticate`; origins are
//! configurable. And the step-up challenge: a 403 names every scope the route needs.

mod common;

use std::sync::Arc;

use rocket::http::{ContentType, Header, Method, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, routes};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::{oauth, ServerConfig};

#[oauth(scope = "a b")]
#[get("/both")]
fn both() -> &'static str {
    "ok"
}

async fn app(origins: &[&str]) -> Client {
    let cfg = ServerConfig {
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        cors_allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
        ..common::config()
    };
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .clock(Arc::new(FixedClock::at(common::T0)))
                .on_authenticate(common::NoConsent)
                .cors_route("/mcp", "POST, OPTIONS"),
        )
        .mount("/", routes![both, mcp]);
    Client::untracked(rocket).await.unwrap()
}

/// A client-credentials token of `svc` for `scope` (over the trusted proxy's HTTPS).
async fn svc_token(c: &Client, scope: &str) -> String {
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body(format!("grant_type=client_credentials&scope={scope}"))
        .dispatch()
        .await;
    let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

fn h<'a>(r: &'a LocalResponse<'_>, name: &str) -> Option<&'a str> {
    r.headers().get_one(name)
}

#[rocket::async_test]
async fn preflight_of_token_revocation_and_discovery_allows_the_origin() {
    let c = app(&["*"]).await;
    for (path, methods) in [
        ("/oauth2/token", "POST, OPTIONS"),
        ("/oauth2/revoke", "POST, OPTIONS"),
        ("/.well-known/oauth-authorization-server", "GET, OPTIONS"),
        ("/.well-known/oauth-protected-resource", "GET, OPTIONS"),
    ] {
        let r = c
            .req(Method::Options, path)
            .header(Header::new("Origin", "https://inspector.example"))
            .header(Header::new("Access-Control-Request-Method", "POST"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::NoContent, "{path}");
        assert_eq!(h(&r, "Access-Control-Allow-Origin"), Some("*"), "{path}");
        assert_eq!(
            h(&r, "Access-Control-Allow-Methods"),
            Some(methods),
            "{path}"
        );
        assert!(h(&r, "Access-Control-Allow-Headers")
            .unwrap()
            .contains("Authorization"));
        assert!(h(&r, "Access-Control-Allow-Credentials").is_none());
    }
}

#[rocket::async_test]
async fn token_answers_carry_the_allowed_origin_and_expose_the_challenge() {
    let c = app(&["*"]).await;
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://inspector.example"))
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body("grant_type=client_credentials&scope=a")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(h(&r, "Access-Control-Allow-Origin"), Some("*"));
    // Without Origin (not a browser) nothing is added.
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .body("grant_type=client_credentials")
        .dispatch()
        .await;
    assert!(h(&r, "Access-Control-Allow-Origin").is_none());
}

#[rocket::async_test]
async fn configured_origins_are_echoed_others_get_nothing() {
    let c = app(&["https://allowed.example"]).await;
    let send = |origin: &'static str| {
        c.post("/oauth2/token")
            .header(ContentType::Form)
            .header(Header::new("X-Forwarded-Proto", "https"))
            .header(Header::new("Origin", origin))
            .body("grant_type=client_credentials")
            .dispatch()
    };
    let r = send("https://allowed.example").await;
    assert_eq!(
        h(&r, "Access-Control-Allow-Origin"),
        Some("https://allowed.example")
    );
    assert_eq!(h(&r, "Vary"), Some("Origin"));
    let r = send("https://other.example").await;
    assert!(h(&r, "Access-Control-Allow-Origin").is_none());
    let c = app(&[]).await;
    let r = c
        .req(Method::Options, "/oauth2/token")
        .header(Header::new("Origin", "https://allowed.example"))
        .dispatch()
        .await;
    assert!(h(&r, "Access-Control-Allow-Origin").is_none(), "CORS off");
}

#[rocket::async_test]
async fn protected_route_401_and_403_expose_www_authenticate_and_name_every_scope() {
    let c = app(&["*"]).await;
    let r = c
        .get("/both")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://inspector.example"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        h(&r, "Access-Control-Expose-Headers"),
        Some("WWW-Authenticate")
    );
    assert_eq!(h(&r, "Access-Control-Allow-Origin"), Some("*"));
    // A token with only `a`: the 403 names both scopes and the metadata (step-up).
    let token = svc_token(&c, "a").await;
    let token = token.as_str();
    let r = c
        .get("/both")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://inspector.example"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Forbidden);
    let challenge = h(&r, "WWW-Authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"a b\""), "{challenge}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    assert_eq!(
        h(&r, "Access-Control-Expose-Headers"),
        Some("WWW-Authenticate")
    );
}

#[oauth(scope = "a")]
#[rocket::post("/mcp")]
fn mcp() -> &'static str {
    "{}"
}

#[rocket::async_test]
async fn an_app_route_opened_with_cors_route_answers_preflight_and_exposes_its_headers() {
    let c = app(&["https://inspector.example"]).await;
    let r = c
        .req(Method::Options, "/mcp")
        .header(Header::new("Origin", "https://inspector.example"))
        .header(Header::new("Access-Control-Request-Method", "POST"))
        .header(Header::new(
            "Access-Control-Request-Headers",
            "authorization, content-type, mcp-protocol-version",
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent);
    assert_eq!(
        h(&r, "Access-Control-Allow-Origin"),
        Some("https://inspector.example")
    );
    assert_eq!(h(&r, "Access-Control-Allow-Methods"), Some("POST, OPTIONS"));
    let allowed = h(&r, "Access-Control-Allow-Headers").unwrap().to_owned();
    for name in [
        "Authorization",
        "Content-Type",
        "MCP-Protocol-Version",
        "Mcp-Session-Id",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(h(&r, "Access-Control-Allow-Credentials").is_none());
    // The 401 and a success both carry the origin and expose the challenge.
    let r = c
        .post("/mcp")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://inspector.example"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        h(&r, "Access-Control-Allow-Origin"),
        Some("https://inspector.example")
    );
    assert!(h(&r, "Access-Control-Expose-Headers")
        .unwrap()
        .contains("WWW-Authenticate"));
    let token = svc_token(&c, "a").await;
    let r = c
        .post("/mcp")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://inspector.example"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(
        h(&r, "Access-Control-Allow-Origin"),
        Some("https://inspector.example")
    );
    // Another origin gets nothing; a route not opened gets no preflight.
    let r = c
        .req(Method::Options, "/mcp")
        .header(Header::new("Origin", "https://evil.example"))
        .dispatch()
        .await;
    assert!(h(&r, "Access-Control-Allow-Origin").is_none());
    let r = c
        .req(Method::Options, "/both")
        .header(Header::new("Origin", "https://inspector.example"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NotFound);
}

/// MCP 2026-07-28 puts `Mcp-Method` and `Mcp-Name` on every POST and mirrors tool
/// parameters into `Mcp-Param-*`: the preflight must allow them, or a browser never sends the
/// request. A prefix cannot be wildcarded, so the requested `Mcp-Param-*` names are echoed;
/// other unknown names are not.
#[rocket::async_test]
async fn cors_route_preflight_allows_the_mcp_2026_request_headers_and_echoes_mcp_param_names() {
    let c = app(&["https://inspector.example"]).await;
    let r = c
        .req(Method::Options, "/mcp")
        .header(Header::new("Origin", "https://inspector.example"))
        .header(Header::new("Access-Control-Request-Method", "POST"))
        .header(Header::new(
            "Access-Control-Request-Headers",
            "authorization,content-type,mcp-method,mcp-name,mcp-param-foo,mcp-protocol-version,x-secret",
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent);
    let allowed: Vec<String> = h(&r, "Access-Control-Allow-Headers")
        .unwrap()
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for name in [
        "authorization",
        "content-type",
        "mcp-method",
        "mcp-name",
        "mcp-param-foo",
        "mcp-protocol-version",
        "mcp-session-id",
    ] {
        assert!(allowed.iter().any(|a| a == name), "{name}: {allowed:?}");
    }
    assert!(!allowed.iter().any(|a| a == "x-secret"), "{allowed:?}");
    assert!(h(&r, "Vary")
        .unwrap()
        .contains("Access-Control-Request-Headers"));
    // The session id stays readable by a 2025-era browser client.
    let token = svc_token(&c, "a").await;
    let r = c
        .post("/mcp")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://inspector.example"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    assert!(h(&r, "Access-Control-Expose-Headers")
        .unwrap()
        .contains("Mcp-Session-Id"));
}

/// Origin validation (MCP transport, DNS rebinding) is opt-in for any `#[oauth]` route with
/// `check_origin`, and `cors_allowed_origins = ["*"]` does not switch it off.
#[rocket::async_test]
async fn check_origin_refuses_a_foreign_origin_on_an_opted_in_route() {
    let cfg = ServerConfig {
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        cors_allowed_origins: vec!["*".into()],
        allowed_origins: vec!["http://localhost:*".into()],
        ..common::config()
    };
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .clock(Arc::new(FixedClock::at(common::T0)))
                .on_authenticate(common::NoConsent)
                .check_origin("/both"),
        )
        .mount("/", routes![both, mcp]);
    let c = Client::untracked(rocket).await.unwrap();
    let t = svc_token(&c, "a%20b").await;
    let get = |origin: Option<&'static str>| {
        let mut r = c
            .get("/both")
            .header(Header::new("X-Forwarded-Proto", "https"))
            .header(Header::new("Authorization", format!("Bearer {t}")));
        if let Some(o) = origin {
            r = r.header(Header::new("Origin", o));
        }
        r.dispatch()
    };
    assert_eq!(get(None).await.status(), Status::Ok);
    assert_eq!(
        get(Some("https://as.example")).await.status(),
        Status::Ok,
        "own origin"
    );
    assert_eq!(
        get(Some("http://localhost:5173")).await.status(),
        Status::Ok
    );
    let r = get(Some("https://evil.example")).await;
    assert_eq!(r.status(), Status::Forbidden);
    assert_eq!(h(&r, "Access-Control-Allow-Origin"), None);
    // A route not opted in is unchanged.
    let r = c
        .post("/mcp")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Origin", "https://evil.example"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn allowed_origins_star_is_refused_at_launch() {
    let cfg = ServerConfig {
        allowed_origins: vec!["*".into()],
        ..common::config()
    };
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket =
        rocket::custom(figment).attach(OAuth2::fairing().on_authenticate(common::NoConsent));
    let e = Client::untracked(rocket).await.expect_err("refused");
    let _ = e.kind();
}
