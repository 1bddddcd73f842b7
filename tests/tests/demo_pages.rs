//! The demo's pages as a showcase: the login page names the client asking, the consent page
//! describes each scope, every page is styled by `/demo.css`, and the form contract holds.

mod common;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use twisted_oauth2::pkce::s256_challenge;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn demo() -> Client {
    Client::tracked(twisted_oauth2_demo::rocket(common::demo_figment(8000)))
        .await
        .expect("demo ignites")
}

fn location(r: &rocket::local::asynchronous::LocalResponse<'_>) -> String {
    r.headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_owned()
}

#[rocket::async_test]
async fn login_names_the_client_and_consent_describes_the_scopes() {
    let c = demo().await;
    let r = c
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id=demo-web&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
             &scope=VIEW_CLOCK+profile&state=s&code_challenge={}&code_challenge_method=S256",
            s256_challenge(VERIFIER)
        ))
        .dispatch()
        .await;
    let login = c.get(location(&r)).dispatch().await;
    assert_eq!(login.status(), Status::Ok);
    let page = login.into_string().await.unwrap_or_default();
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert!(page.contains("href=\"/demo.css\""), "{page}");
    assert!(
        page.contains("Sign in to continue to <strong>Demo web client</strong>"),
        "{page}"
    );
    assert!(page.contains("<label for=\"username\">") && page.contains("name=\"username\""));
    assert!(page.contains("<label for=\"password\">") && page.contains("name=\"password\""));

    // A plain login (no pending request) names no client; neither does one for another
    // browser's request.
    let plain = c
        .get("/login")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    assert!(!plain.contains("continue to"), "{plain}");
    let next_start = page.find("name=\"next\" value=\"").unwrap_or(0) + 19;
    let next = page[next_start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&");
    let stranger = Client::untracked(twisted_oauth2_demo::rocket(common::demo_figment(8000)))
        .await
        .expect("demo ignites");
    let other = stranger
        .get(format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    assert!(!other.contains("continue to"), "{other}");

    let r = c
        .post("/login")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password=wonderland&next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ))
        .dispatch()
        .await;
    let consent = c
        .get(location(&r))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    assert!(consent.contains("Read the time on your clock"), "{consent}");
    assert!(consent.contains("See your user name"), "{consent}");
    assert!(consent.contains("<code>VIEW_CLOCK</code>"), "{consent}");
    assert!(
        consent.contains("<strong>127.0.0.1:9000</strong>"),
        "{consent}"
    );
    assert!(consent.contains("name=\"decision\" value=\"allow\""));
    assert!(consent.contains("name=\"decision\" value=\"deny\""));
}

#[rocket::async_test]
async fn the_stylesheet_is_served_and_the_client_page_links_it() {
    let c = demo().await;
    let css = c.get("/demo.css").dispatch().await;
    assert_eq!(css.status(), Status::Ok);
    assert_eq!(css.content_type(), Some(ContentType::CSS));
    assert!(css
        .into_string()
        .await
        .unwrap_or_default()
        .contains(":focus-visible"));
    let client = c
        .get("/client")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    assert!(client.contains("href=\"/demo.css\"") && client.contains("id=\"out\""));
    assert!(
        !client.contains("innerHTML"),
        "results are text, never markup"
    );
}

/// Signs `alice` in through the login the authorization request led to and returns the
/// consent page.
async fn consent_after_login(c: &Client, authorize: &str) -> String {
    let r = c.get(authorize.to_owned()).dispatch().await;
    let login = c.get(location(&r)).dispatch().await;
    let page = login.into_string().await.unwrap_or_default();
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
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
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
async fn consent_marks_a_self_registered_client_unverified_and_warns_of_a_local_redirect() {
    let c = demo().await;
    let r = c
        .post("/oauth2/register")
        .header(ContentType::JSON)
        .body(r#"{"redirect_uris":["http://127.0.0.1:7777/cb"],"client_name":"Some agent"}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Created);
    let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let id = v["client_id"].as_str().unwrap().to_owned();
    let consent = consent_after_login(
        &c,
        &format!(
            "/oauth2/authorize?response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A7777%2Fcb\
             &scope=VIEW_CLOCK&state=s&resource=http%3A%2F%2F127.0.0.1%3A8000%2F&code_challenge={}&code_challenge_method=S256",
            s256_challenge(VERIFIER)
        ),
    )
    .await;
    assert!(consent.contains("Unverified application"), "{consent}");
    assert!(consent.contains("a program on this device"), "{consent}");
    assert!(
        consent.contains("<code>http://127.0.0.1:8000</code>"),
        "{consent}"
    );
    // The demo's own configured client is vouched for.
    let c = demo().await;
    let consent = consent_after_login(
        &c,
        &format!(
            "/oauth2/authorize?response_type=code&client_id=demo-web&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
             &scope=VIEW_CLOCK&state=s&code_challenge={}&code_challenge_method=S256",
            s256_challenge(VERIFIER)
        ),
    )
    .await;
    assert!(consent.contains("name=\"decision\""), "{consent}");
    assert!(!consent.contains("Unverified application"), "{consent}");
    assert!(!consent.contains("a program on this device"), "{consent}");
}
