//! The demo's configuration turns dynamic client registration on (RFC 7591): open, loopback
//! and https redirect URIs only. A client registers, and the registration is managed with
//! its registration access token (RFC 7592).

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};

async fn demo() -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"));
    Client::untracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("the demo ignites")
}

async fn register(c: &Client, body: Value) -> (Status, Value) {
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(body.to_string())
        .dispatch()
        .await;
    let status = r.status();
    let v = serde_json::from_str(&r.into_string().await.unwrap_or_default()).expect("JSON");
    (status, v)
}

#[rocket::async_test]
async fn the_demo_offers_open_registration_for_loopback_and_https_redirects() {
    let c = demo().await;
    let doc: Value = serde_json::from_str(
        &c.get("/.well-known/oauth-authorization-server")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc["registration_endpoint"],
        "http://127.0.0.1:8000/oauth2/register"
    );
    for ok in [
        "http://127.0.0.1/callback",
        "https://app.example/cb",
        "http://localhost/callback",
    ] {
        let (s, v) = register(
            &c,
            json!({"redirect_uris": [ok], "client_name": "MCP client"}),
        )
        .await;
        assert_eq!(s, Status::Created, "{ok}: {v}");
        assert_eq!(v["token_endpoint_auth_method"], "none");
    }
    for bad in ["com.example.app:/cb", "http://app.example/cb"] {
        let (s, v) = register(&c, json!({"redirect_uris": [bad]})).await;
        assert_eq!(s, Status::BadRequest, "{bad}");
        assert_eq!(v["error"], "invalid_redirect_uri", "{bad}");
    }

    let (_, v) = register(&c, json!({"redirect_uris": ["http://127.0.0.1/callback"]})).await;
    let path = url::Url::parse(v["registration_client_uri"].as_str().unwrap())
        .unwrap()
        .path()
        .to_owned();
    let auth = Header::new(
        "Authorization",
        format!(
            "Bearer {}",
            v["registration_access_token"].as_str().unwrap()
        ),
    );
    assert_eq!(
        c.get(path.clone())
            .header(auth.clone())
            .dispatch()
            .await
            .status(),
        Status::Ok
    );
    assert_eq!(
        c.delete(path.clone())
            .header(auth)
            .dispatch()
            .await
            .status(),
        Status::NoContent
    );
    assert_eq!(c.get(path).dispatch().await.status(), Status::Unauthorized);
}

/// What Claude Code registers: the portless `http://localhost/callback`, then an
/// authorization request on an ephemeral port. The demo refused the registration before
/// (`allow_localhost` off) and would not have matched the port (`allow_localhost_any_port`).
#[rocket::async_test]
async fn a_portless_localhost_redirect_registers_and_matches_an_ephemeral_port() {
    use rocket::http::{ContentType, Status};
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"));
    let c = rocket::local::asynchronous::Client::untracked(twisted_oauth2_demo::rocket(figment))
        .await
        .unwrap();
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(r#"{"redirect_uris":["http://localhost/callback"],"client_name":"Claude Code","grant_types":["authorization_code","refresh_token"]}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Created);
    let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let id = v["client_id"].as_str().unwrap();
    let r = c
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id={id}&redirect_uri={}&scope=VIEW_CLOCK&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            url::form_urlencoded::byte_serialize(b"http://localhost:53682/callback").collect::<String>()
        ))
        .dispatch()
        .await;
    // On to the demo's login page, not the error page.
    assert_eq!(r.status(), Status::SeeOther, "{:?}", r.into_string().await);
}
