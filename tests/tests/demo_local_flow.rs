//! The demo's login → consent → code → token flow in process, with `rocket::local` and
//! tracked cookies, driving the demo's form contract.

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use twisted_oauth2::pkce::s256_challenge;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn demo() -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"));
    Client::tracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("demo launches")
}

fn input(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\"")).expect(name);
    let rest = &html[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    rest[v..v + rest[v..].find('"').unwrap()].replace("&amp;", "&")
}

fn location(r: &LocalResponse<'_>) -> String {
    r.headers()
        .get_one("Location")
        .expect("Location")
        .to_owned()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Authorize → login → consent page; returns (request_id, csrf_token).
async fn to_consent(c: &Client, state: &str) -> (String, String) {
    let r = c
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id=demo-web&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
             &scope=VIEW_CLOCK&state={state}&code_challenge={}&code_challenge_method=S256",
            s256_challenge(VERIFIER)
        ))
        .dispatch()
        .await;
    assert_eq!(
        r.status(),
        Status::SeeOther,
        "not logged in: sent to the login page"
    );
    let login = location(&r);
    let page = c.get(login).dispatch().await.into_string().await.unwrap();
    let next = input(&page, "next");
    let r = c
        .post("/login")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password=wonderland&next={}",
            urlenc(&next)
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let r = c.get(location(&r)).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("X-Frame-Options"), Some("DENY"));
    assert_eq!(
        r.headers().get_one("Content-Security-Policy"),
        Some("frame-ancestors 'none'")
    );
    let page = r.into_string().await.unwrap();
    assert!(page.contains("Demo web client") && page.contains("VIEW_CLOCK"));
    (input(&page, "request_id"), input(&page, "csrf_token"))
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[rocket::async_test]
async fn login_consent_code_token_with_pkce_s256() {
    let c = demo().await;
    let (rid, csrf) = to_consent(&c, "s-1").await;
    let r = c
        .post("/consent")
        .header(ContentType::Form)
        .body(format!("request_id={rid}&csrf_token={csrf}&decision=allow"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let landing = location(&r);
    assert!(landing.starts_with("http://127.0.0.1:9000/callback?"));
    assert_eq!(param(&landing, "state").as_deref(), Some("s-1"));
    assert_eq!(
        param(&landing, "iss").as_deref(),
        Some("http://127.0.0.1:8000")
    );
    let code = param(&landing, "code").unwrap();
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body(format!(
            "grant_type=authorization_code&code={code}&client_id=demo-web&code_verifier={VERIFIER}\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback"
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    let token = v["access_token"].as_str().unwrap();
    let r = c
        .get("/clock")
        .header(rocket::http::Header::new(
            "Authorization",
            format!("Bearer {token}"),
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let r = c
        .get("/me")
        .header(rocket::http::Header::new(
            "Authorization",
            format!("Bearer {token}"),
        ))
        .dispatch()
        .await;
    let me: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["scope"], "VIEW_CLOCK");
}

#[rocket::async_test]
async fn login_consent_deny_gives_access_denied() {
    let c = demo().await;
    let (rid, csrf) = to_consent(&c, "s-2").await;
    let r = c
        .post("/consent")
        .header(ContentType::Form)
        .body(format!("request_id={rid}&csrf_token={csrf}&decision=deny"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let landing = location(&r);
    assert_eq!(param(&landing, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&landing, "state").as_deref(), Some("s-2"));
}

#[rocket::async_test]
async fn wrong_password_does_not_log_in() {
    let c = demo().await;
    let r = c
        .post("/login")
        .header(ContentType::Form)
        .body("username=alice&password=nope&next=%2F")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert!(r
        .into_string()
        .await
        .unwrap()
        .contains("Wrong username or password"));
}

async fn demo_with(figment: rocket::figment::Figment) -> Client {
    Client::tracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("demo launches")
}

fn has_session(c: &Client) -> bool {
    c.cookies().get("demo_session").is_some()
}

#[rocket::async_test]
async fn cross_site_login_post_is_refused_login_csrf() {
    let c = demo().await;
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        let r = c
            .post("/login")
            .header(ContentType::Form)
            .header(rocket::http::Header::new("Host", "127.0.0.1:8000"))
            .header(rocket::http::Header::new(name, value))
            .body("username=alice&password=wonderland&next=%2F")
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Forbidden, "{name}: {value}");
        assert!(!has_session(&c), "{name}: {value} signed the browser in");
    }
    // The same site's own form (and clients that are not browsers) still sign in.
    let r = c
        .post("/login")
        .header(ContentType::Form)
        .header(rocket::http::Header::new("Host", "127.0.0.1:8000"))
        .header(rocket::http::Header::new("Origin", "http://127.0.0.1:8000"))
        .header(rocket::http::Header::new("Sec-Fetch-Site", "same-origin"))
        .body("username=alice&password=wonderland&next=%2F")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    assert!(has_session(&c));
}

#[rocket::async_test]
async fn odd_next_values_never_give_a_500() {
    let c = demo().await;
    for next in ["/a%20b", "/\u{e9}", "/\"", "/a b", "/%zz", "/<x>"] {
        let r = c
            .get(format!("/login?next={}", urlenc(next)))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Ok, "GET {next}");
        let r = c
            .post("/login")
            .header(ContentType::Form)
            .body(format!(
                "username=alice&password=wonderland&next={}",
                urlenc(next)
            ))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::SeeOther, "POST {next}");
        let loc = location(&r);
        assert!(
            loc.starts_with('/') && !loc.starts_with("//"),
            "{next} -> {loc}"
        );
        assert!(
            rocket::http::uri::Origin::parse(&loc).is_ok(),
            "{next} -> {loc}"
        );
    }
}

#[rocket::async_test]
async fn failed_sign_in_keeps_the_pending_authorization() {
    let c = demo().await;
    let r = c
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id=demo-web&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
             &scope=VIEW_CLOCK&state=k&code_challenge={}&code_challenge_method=S256",
            s256_challenge(VERIFIER)
        ))
        .dispatch()
        .await;
    let page = c
        .get(location(&r))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let next = input(&page, "next");
    assert!(next.starts_with("/consent?request_id="), "{next}");
    let r = c
        .post("/login")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password=nope&next={}",
            urlenc(&next)
        ))
        .dispatch()
        .await;
    let again = r.into_string().await.unwrap();
    assert!(again.contains("Wrong username or password"));
    assert_eq!(
        input(&again, "next"),
        next,
        "the retry goes back to the request"
    );
    let r = c
        .post("/login")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password=wonderland&next={}",
            urlenc(&next)
        ))
        .dispatch()
        .await;
    assert_eq!(location(&r), next);
    let r = c.get(next).dispatch().await;
    assert_eq!(
        r.status(),
        Status::Ok,
        "the consent page of the same request"
    );
}

#[rocket::async_test]
async fn demo_sessions_expire() {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"))
        .merge(("demo.session_lifetime", 1));
    let c = demo_with(figment).await;
    let r = c
        .post("/login")
        .header(ContentType::Form)
        .body("username=alice&password=wonderland&next=%2Fconsent%3Frequest_id%3Dx")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let cookie = c.cookies().get("demo_session").unwrap().clone();
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::seconds(1)));
    // Signed in: the consent route runs (and refuses the unknown request id).
    let r = c.get("/consent?request_id=x").dispatch().await;
    assert_ne!(r.status(), Status::Unauthorized);
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    // Expired on the server even if the browser kept the cookie.
    let r = c
        .get("/consent?request_id=x")
        .cookie(cookie)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized, "the session expired");
}
