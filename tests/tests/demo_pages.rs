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
