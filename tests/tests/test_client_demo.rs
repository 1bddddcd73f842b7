//! The test client (`twisted_oauth2::testing`, feature `test-client`) used exactly as a
//! downstream app's tests would: against the demo through `rocket::local`, a token in one
//! call, then the code flow through the demo's own login and consent pages, refresh and
//! revocation.

mod common;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use twisted_oauth2::testing::{bearer, TestClient, TestClientError};

async fn demo(tracked: bool) -> Client {
    let app = twisted_oauth2_demo::rocket(common::demo_figment(8000));
    if tracked {
        Client::tracked(app).await.expect("the demo ignites")
    } else {
        Client::untracked(app).await.expect("the demo ignites")
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).expect("JSON")
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[rocket::async_test]
async fn a_token_in_one_call_reads_the_clock_as_alice() {
    let client = demo(false).await;
    let oauth = TestClient::new(&client).secret("demo-app", "app-secret");

    let tokens = oauth
        .token("demo-web", "alice", "VIEW_CLOCK")
        .await
        .expect("a token");
    assert_eq!(tokens.scope, "VIEW_CLOCK");
    assert!(tokens.refresh_token.is_some());
    let res = client
        .get("/clock")
        .header(bearer(&tokens.access_token))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let me = client
        .get("/me")
        .header(bearer(&tokens.access_token))
        .dispatch()
        .await;
    let me = json(&me.into_string().await.unwrap_or_default());
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["client_id"], "demo-web");

    // A confidential client with its secret; a scope without VIEW_CLOCK gets 403 at /clock.
    let profile = oauth
        .token("demo-app", "bob", "profile")
        .await
        .expect("a token");
    let res = client
        .get("/clock")
        .header(bearer(&profile.access_token))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Forbidden);

    // Refusals are errors, as the server gives them.
    let err = oauth
        .token("demo-spa", "alice", "profile")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TestClientError::Authorization(e) if e.code().as_str() == "invalid_scope"),
        "{err}"
    );
    assert!(matches!(
        oauth.token("nobody", "alice", "VIEW_CLOCK").await,
        Err(TestClientError::UnknownClient(_))
    ));
    let svc = oauth
        .client_credentials("demo-svc", "VIEW_CLOCK")
        .await
        .unwrap_err();
    assert!(
        matches!(svc, TestClientError::Endpoint { status: 401, .. }),
        "{svc}"
    );
    let svc = TestClient::new(&client)
        .secret("demo-svc", "secret")
        .client_credentials("demo-svc", "VIEW_CLOCK")
        .await
        .expect("client credentials");
    assert!(svc.refresh_token.is_none());
}

#[rocket::async_test]
async fn the_code_flow_through_the_demo_pages_then_refresh_and_revocation() {
    let client = demo(true).await;
    let oauth = TestClient::new(&client);

    let request = oauth
        .authorization("demo-web", "VIEW_CLOCK profile")
        .await
        .expect("a request");
    let res = client.get(request.uri()).dispatch().await;
    assert_eq!(res.status(), Status::SeeOther);
    let login = res
        .headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_owned();
    assert!(login.starts_with("/login?next="), "{login}");
    let page = client
        .get(login)
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    let next = hidden(&page, "next").replace("&amp;", "&");

    let res = client
        .post("/login")
        .header(ContentType::Form)
        .body(format!(
            "username=alice&password=wonderland&next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let consent = res
        .headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_owned();
    let page = client
        .get(consent)
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    let res = client
        .post("/consent")
        .header(ContentType::Form)
        .body(format!(
            "request_id={}&csrf_token={}&decision=allow",
            hidden(&page, "request_id"),
            hidden(&page, "csrf_token")
        ))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let back = res
        .headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_owned();

    let tokens = oauth.exchange(&request, &back).await.expect("tokens");
    assert_eq!(tokens.scope, "VIEW_CLOCK profile");

    let refresh = tokens.refresh_token.clone().expect("a refresh token");
    let renewed = oauth.refresh("demo-web", &refresh).await.expect("renewed");
    let rotated = renewed.refresh_token.clone().expect("rotated");
    assert_ne!(rotated, refresh);
    let res = client
        .get("/clock")
        .header(bearer(&renewed.access_token))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);

    // Revoking the refresh token ends the grant: refresh and the access token both stop.
    oauth.revoke("demo-web", &rotated).await.expect("revoked");
    assert!(oauth.refresh("demo-web", &rotated).await.is_err());
    let res = client
        .get("/clock")
        .header(bearer(&renewed.access_token))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Unauthorized);

    // The same redirect again: the code is spent (and a replay would end the grant).
    assert!(matches!(
        oauth.exchange(&request, &back).await,
        Err(TestClientError::Endpoint { status: 400, .. })
    ));
}

#[rocket::async_test]
async fn a_denied_consent_is_an_error_from_exchange() {
    let client = demo(true).await;
    let oauth = TestClient::new(&client);
    let request = oauth
        .authorization("demo-web", "VIEW_CLOCK")
        .await
        .expect("a request");
    client
        .post("/login")
        .header(ContentType::Form)
        .body("username=bob&password=builder&next=/")
        .dispatch()
        .await;
    let page = client
        .get(request.uri())
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default();
    let res = client
        .post("/consent")
        .header(ContentType::Form)
        .body(format!(
            "request_id={}&csrf_token={}&decision=deny",
            hidden(&page, "request_id"),
            hidden(&page, "csrf_token")
        ))
        .dispatch()
        .await;
    let back = res
        .headers()
        .get_one("Location")
        .unwrap_or_default()
        .to_owned();
    let err = oauth.exchange(&request, &back).await.unwrap_err();
    assert!(err.to_string().contains("access_denied"), "{err}");
}
