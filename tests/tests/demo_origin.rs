//! Origin validation on the demo's checked routes (`/mcp`, `/clock`; MCP Streamable HTTP
//! transport: a server MUST validate `Origin` and answer 403 when it is present and not
//! allowed, against DNS rebinding). Before it, a valid token with `Origin: http://evil.example`
//! was served, and `OPTIONS /clock` was 404.

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::Value;

async fn demo() -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"));
    Client::untracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("the demo ignites")
}

async fn token(c: &Client) -> String {
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body("grant_type=client_credentials&client_id=demo-svc&client_secret=secret")
        .dispatch()
        .await;
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn mcp(c: &Client, token: &str, origin: Option<&str>) -> (Status, Option<String>) {
    let mut r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Accept", "application/json, text/event-stream"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    if let Some(o) = origin {
        r = r.header(Header::new("Origin", o.to_owned()));
    }
    let r = r.dispatch().await;
    let acao = r
        .headers()
        .get_one("Access-Control-Allow-Origin")
        .map(str::to_owned);
    (r.status(), acao)
}

#[rocket::async_test]
async fn a_foreign_origin_gets_403_at_mcp_even_with_a_valid_token() {
    let c = demo().await;
    let t = token(&c).await;
    let (status, acao) = mcp(&c, &t, Some("http://evil.example")).await;
    assert_eq!(status, Status::Forbidden);
    assert_eq!(acao, None, "no CORS headers on the refusal");
    // Without a token too: 403, not a challenge to follow.
    let r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Origin", "http://evil.example"))
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Forbidden);
    assert_eq!(r.headers().get_one("WWW-Authenticate"), None);
    assert_eq!(r.headers().get_one("Access-Control-Allow-Origin"), None);
    assert_eq!(mcp(&c, &t, Some("null")).await.0, Status::Forbidden);
}

#[rocket::async_test]
async fn no_origin_the_own_origin_and_the_listed_inspector_origin_are_served() {
    let c = demo().await;
    let t = token(&c).await;
    assert_eq!(mcp(&c, &t, None).await.0, Status::Ok);
    assert_eq!(
        mcp(&c, &t, Some("http://127.0.0.1:8000")).await.0,
        Status::Ok
    );
    let (status, acao) = mcp(&c, &t, Some("http://localhost:6274")).await;
    assert_eq!(status, Status::Ok);
    assert!(acao.is_some(), "the MCP Inspector may read the answer");
    assert_eq!(
        mcp(&c, &t, Some("http://localhost:6275")).await.0,
        Status::Forbidden
    );
}

#[rocket::async_test]
async fn preflights_of_checked_routes_refuse_foreign_origins() {
    let c = demo().await;
    for path in ["/mcp", "/clock"] {
        let r = c
            .options(path)
            .header(Header::new("Origin", "http://evil.example"))
            .header(Header::new("Access-Control-Request-Method", "POST"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Forbidden, "{path}");
        assert_eq!(r.headers().get_one("Access-Control-Allow-Origin"), None);
    }
}

/// Item 8: `/clock`'s 401 was readable cross-origin but its preflight was 404, so a browser
/// could never send it a token.
#[rocket::async_test]
async fn the_clock_serves_its_preflight_and_a_browser_token_request() {
    let c = demo().await;
    let r = c
        .options("/clock")
        .header(Header::new("Origin", "http://localhost:6274"))
        .header(Header::new("Access-Control-Request-Method", "GET"))
        .header(Header::new(
            "Access-Control-Request-Headers",
            "authorization",
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent);
    assert!(r.headers().get_one("Access-Control-Allow-Origin").is_some());
    assert!(r
        .headers()
        .get_one("Access-Control-Allow-Headers")
        .is_some_and(|h| h.to_ascii_lowercase().contains("authorization")));
    let t = token(&c).await;
    let r = c
        .get("/clock")
        .header(Header::new("Origin", "http://localhost:6274"))
        .header(Header::new("Authorization", format!("Bearer {t}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert!(r.headers().get_one("Access-Control-Allow-Origin").is_some());
    let r = c
        .get("/clock")
        .header(Header::new("Origin", "http://evil.example"))
        .header(Header::new("Authorization", format!("Bearer {t}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Forbidden);
}
