//! The demo with open registration: redirect URIs that are not RFC 3986 absolute URIs are
//! refused rather than repaired, names that pass for the demo's own client or hide
//! formatting characters are refused, and the login and consent pages show what a user
//! needs: the "unverified" note, and the host the code really goes to.

mod common;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};
use twisted_oauth2::pkce::s256_challenge;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn demo() -> Client {
    Client::tracked(twisted_oauth2_demo::rocket(common::demo_figment(8000)))
        .await
        .expect("demo ignites")
}

async fn register(c: &Client, body: Value) -> (Status, Value) {
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(body.to_string())
        .dispatch()
        .await;
    let status = r.status();
    let v = serde_json::from_str(&r.into_string().await.unwrap_or_default()).unwrap_or_default();
    (status, v)
}

fn location(r: &LocalResponse<'_>) -> String {
    r.headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_owned()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn authorize(client_id: &str, redirect: &str) -> String {
    format!(
        "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=VIEW_CLOCK\
         &state=s&code_challenge={}&code_challenge_method=S256",
        enc(client_id),
        enc(redirect),
        s256_challenge(VERIFIER)
    )
}

/// The login page the authorization request leads to.
async fn login_page(c: &Client, authorize: &str) -> String {
    let r = c.get(authorize.to_owned()).dispatch().await;
    assert_eq!(r.status(), Status::SeeOther, "{authorize}");
    c.get(location(&r))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}

/// Signs `alice` in from that login page and returns the consent page.
async fn consent_page(c: &Client, authorize: &str) -> String {
    let page = login_page(c, authorize).await;
    let next_start = page.find("name=\"next\" value=\"").unwrap_or(0) + 19;
    let next = page[next_start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    let r = c
        .post("/login")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password=wonderland&next={}",
            enc(&next)
        ))
        .dispatch()
        .await;
    c.get(location(&r))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}

#[rocket::async_test]
async fn the_demo_refuses_redirect_uris_a_url_parser_would_repair() {
    let c = demo().await;
    for bad in [
        "https://a.example/c b",
        "https://a.example\\@evil.example/cb",
        "https:cb",
        "https:///cb",
        "https://a.example/\u{7}cb",
        "https://\u{430}pple.example/cb", // a Cyrillic look-alike host, not punycode
        "http://127.0.0.1:65536/cb",
    ] {
        let (s, v) = register(&c, json!({"redirect_uris": [bad]})).await;
        assert_eq!(s, Status::BadRequest, "{bad:?} was registered: {v}");
        assert_eq!(v["error"], "invalid_redirect_uri", "{bad:?}");
    }
}

#[rocket::async_test]
async fn the_demo_refuses_names_that_pass_for_its_own_client() {
    let c = demo().await;
    for name in [
        "D\u{435}mo web client", // Cyrillic е
        "demo web client",
        "DEMO WEB CLIENT",
        "Demo web cIient",
        "demo-web",
        "Demo web client\u{202E}",
        "Demo\u{200B} agent",
    ] {
        let (s, v) = register(
            &c,
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "client_name": name}),
        )
        .await;
        assert_eq!(s, Status::BadRequest, "{name:?} was registered: {v}");
        assert_eq!(v["error"], "invalid_client_metadata", "{name:?}");
    }
}

#[rocket::async_test]
async fn the_demo_login_page_marks_a_registered_client_unverified() {
    let c = demo().await;
    let (s, v) = register(
        &c,
        json!({"redirect_uris": ["http://127.0.0.1:7777/cb"], "client_name": "Some agent"}),
    )
    .await;
    assert_eq!(s, Status::Created, "{v}");
    let id = v["client_id"].as_str().unwrap().to_owned();
    let page = login_page(&c, &authorize(&id, "http://127.0.0.1:7777/cb")).await;
    assert!(
        page.contains("Sign in to continue to <strong>Some agent</strong>"),
        "{page}"
    );
    assert!(page.contains("Unverified application"), "{page}");
    // The demo's configured client is vouched for: no note.
    let page = login_page(&c, &authorize("demo-web", "http://127.0.0.1:9000/callback")).await;
    assert!(
        page.contains("Sign in to continue to <strong>Demo web client</strong>"),
        "{page}"
    );
    assert!(!page.contains("Unverified application"), "{page}");
}

#[rocket::async_test]
async fn the_demo_consent_page_shows_where_the_code_really_goes() {
    let c = demo().await;
    let (s, v) = register(
        &c,
        json!({"redirect_uris": ["HTTPS://App.Example:443/cb", "http://127.1/cb"]}),
    )
    .await;
    assert_eq!(s, Status::Created, "{v}");
    assert_eq!(
        v["redirect_uris"],
        json!(["https://app.example/cb", "http://127.1/cb"])
    );
    let id = v["client_id"].as_str().unwrap().to_owned();
    let consent = consent_page(&c, &authorize(&id, "HTTPS://App.Example:443/cb")).await;
    assert!(
        consent.contains(
            "sent back to <strong>app.example</strong> (<code>https://app.example/cb</code>)"
        ),
        "{consent}"
    );
    // 127.1 is loopback: any port, and the page names the address it reaches.
    // (alice is signed in now: the request goes straight to the consent page.)
    let r = c
        .get(authorize(&id, "http://127.1:7777/cb"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let consent = r.into_string().await.unwrap_or_default();
    assert!(
        consent.contains("sent back to <strong>127.0.0.1:7777</strong>"),
        "{consent}"
    );
    assert!(consent.contains("a program on this device"), "{consent}");
}
