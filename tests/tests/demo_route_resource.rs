//! The demo's `/mcp` is a resource of its own (RFC 8707, RFC 9728; issue "MCP 2026-07-28 and
//! what MCP hosts do", item 2). Before, `resource=http://127.0.0.1:8000/mcp` (what the MCP
//! spec tells clients to send, "the most specific URI") was `invalid_target`.

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::Value;

const ISSUER: &str = "http://127.0.0.1:8000";

async fn demo() -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"))
        .merge(("oauth2.resources", ["https://other.example/api"]));
    Client::untracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("the demo ignites")
}

async fn token_for(c: &Client, resource: Option<&str>) -> (Status, Value) {
    let mut body =
        "grant_type=client_credentials&client_id=demo-svc&client_secret=secret".to_owned();
    if let Some(r) = resource {
        body.push_str("&resource=");
        body.push_str(&url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>());
    }
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await;
    let status = r.status();
    (
        status,
        serde_json::from_str(&r.into_string().await.unwrap()).unwrap(),
    )
}

async fn call_mcp(c: &Client, token: &str) -> (Status, Option<String>) {
    let r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Accept", "application/json, text/event-stream"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .dispatch()
        .await;
    (
        r.status(),
        r.headers().get_one("WWW-Authenticate").map(str::to_owned),
    )
}

#[rocket::async_test]
async fn every_spelling_of_the_mcp_resource_and_none_get_tokens_mcp_accepts() {
    let c = demo().await;
    for resource in [
        None,
        Some("http://127.0.0.1:8000"),
        Some("http://127.0.0.1:8000/"),
        Some("http://127.0.0.1:8000/mcp"),
        Some("http://127.0.0.1:8000/mcp/"),
        Some("HTTP://127.0.0.1:8000/mcp"),
    ] {
        let (status, t) = token_for(&c, resource).await;
        assert_eq!(status, Status::Ok, "{resource:?}: {t}");
        let (status, _) = call_mcp(&c, t["access_token"].as_str().unwrap()).await;
        assert_eq!(status, Status::Ok, "{resource:?}");
    }
}

#[rocket::async_test]
async fn a_token_for_another_resource_is_refused_at_mcp_and_mcp_tokens_stay_at_mcp() {
    let c = demo().await;
    let (status, t) = token_for(&c, Some("https://other.example/api")).await;
    assert_eq!(status, Status::Ok);
    let (status, challenge) = call_mcp(&c, t["access_token"].as_str().unwrap()).await;
    assert_eq!(status, Status::Unauthorized);
    assert!(challenge.unwrap().contains("invalid_token"));
    // A token for /mcp alone does not open the origin's other routes.
    let (_, t) = token_for(&c, Some("http://127.0.0.1:8000/mcp")).await;
    let r = c
        .get("/clock")
        .header(Header::new(
            "Authorization",
            format!("Bearer {}", t["access_token"].as_str().unwrap()),
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn mcp_challenges_point_to_its_own_rfc9728_document() {
    let c = demo().await;
    let r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let challenge = r.headers().get_one("WWW-Authenticate").unwrap().to_owned();
    let url = format!("{ISSUER}/.well-known/oauth-protected-resource/mcp");
    assert!(
        challenge.contains(&format!("resource_metadata=\"{url}\"")),
        "{challenge}"
    );
    let r = c
        .get("/.well-known/oauth-protected-resource/mcp")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let doc: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(doc["resource"], format!("{ISSUER}/mcp"));
    assert_eq!(doc["authorization_servers"][0], ISSUER);
    // The origin's document and /clock's challenge are unchanged.
    let r = c
        .get("/.well-known/oauth-protected-resource")
        .dispatch()
        .await;
    let doc: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(doc["resource"], ISSUER);
    let r = c.get("/clock").dispatch().await;
    assert!(r
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap()
        .contains(&format!(
            "resource_metadata=\"{ISSUER}/.well-known/oauth-protected-resource\""
        )));
}

#[rocket::async_test]
async fn the_authorization_endpoint_takes_the_mcp_endpoint_as_resource() {
    let c = demo().await;
    let r = c
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id=demo-web&redirect_uri={}&scope=VIEW_CLOCK&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&resource={}",
            url::form_urlencoded::byte_serialize(b"http://127.0.0.1:9000/callback").collect::<String>(),
            url::form_urlencoded::byte_serialize(b"http://127.0.0.1:8000/mcp/").collect::<String>(),
        ))
        .dispatch()
        .await;
    let location = r
        .headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_owned();
    assert!(
        !location.contains("invalid_target") && !location.starts_with("http://127.0.0.1:9000"),
        "{} {location}",
        r.status()
    );
}
