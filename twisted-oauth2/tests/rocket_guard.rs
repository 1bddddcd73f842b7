//! Adapter tests of resource protection (RFC 6750): `#[oauth]`, `Authorized`, `AuthResult`
//! and `TokenInfo` guards, with exact `WWW-Authenticate` values, with and without the
//! application's own catchers.

mod common;

use std::sync::Arc;

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Json;
use rocket::{catch, catchers, get, post, routes, Responder};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::rocket::{AuthResult, OAuth2, OAuth2State};
use twisted_oauth2::token::TokenDigest;
use twisted_oauth2::{oauth, TokenInfo};

twisted_oauth2::required_scope!(ScopeA = "a");

#[oauth(scope = "a")]
#[get("/a")]
fn need_a() -> &'static str {
    "a-ok"
}

#[oauth(scope = "a b")]
#[get("/ab")]
async fn need_ab(info: TokenInfo) -> String {
    format!("ab-ok for {}", info.client_id)
}

/// A handler that marks its answer cacheable by anyone.
#[oauth(scope = "a")]
#[get("/public")]
fn public_cache() -> PublicAnswer {
    PublicAnswer {
        body: "shared",
        cache: rocket::http::Header::new("Cache-Control", "public, max-age=60"),
    }
}

#[derive(rocket::Responder)]
struct PublicAnswer {
    body: &'static str,
    cache: rocket::http::Header<'static>,
}

#[oauth(scope = "a")]
#[post("/echo/<id>?<q>", data = "<body>")]
async fn echo(id: u32, q: Option<&str>, body: String) -> String {
    format!("{id}:{}:{body}", q.unwrap_or("-"))
}

#[get("/me")]
fn me(info: TokenInfo) -> Json<TokenInfo> {
    Json(info)
}

#[get("/maybe")]
fn maybe(auth: AuthResult<ScopeA>) -> String {
    match auth.result() {
        Ok(info) => format!("yes {}", info.client_id),
        Err(e) => format!("no {}", e.code()),
    }
}

#[derive(Responder)]
#[response(status = 401)]
struct AppChallenge(&'static str, Header<'static>);

#[catch(401)]
fn app_401() -> AppChallenge {
    AppChallenge(
        "custom 401 page",
        Header::new("WWW-Authenticate", "AppScheme realm=\"app\""),
    )
}

#[catch(401)]
fn plain_401() -> &'static str {
    "plain 401 page"
}

#[catch(403)]
fn plain_403() -> &'static str {
    "plain 403 page"
}

const REALM: &str = "twisted-oauth2";

struct App {
    client: Client,
    clock: Arc<FixedClock>,
}

async fn app_with(query_tokens: bool, catchers: Vec<rocket::Catcher>) -> App {
    let clock = Arc::new(FixedClock::at(common::T0));
    let mut cfg = common::config();
    cfg.allow_insecure_request_debug = true;
    cfg.allow_access_token_in_query = query_tokens;
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .clock(clock.clone())
                .on_authenticate(common::NoConsent),
        )
        .mount("/", routes![need_a, need_ab, echo, me, maybe, public_cache])
        .register("/", catchers);
    App {
        client: Client::untracked(rocket).await.expect("launch"),
        clock,
    }
}

async fn app() -> App {
    app_with(false, vec![]).await
}

impl App {
    async fn token(&self, scope: &str) -> String {
        let r = self
            .client
            .post("/oauth2/token")
            .header(ContentType::Form)
            .header(Header::new(
                "Authorization",
                common::basic("svc", "svc-secret"),
            ))
            .body(format!("grant_type=client_credentials&scope={scope}"))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Ok);
        let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (Status, Option<String>, String) {
        let mut req = self.client.get(path.to_owned());
        if let Some(t) = token {
            req = req.header(Header::new("Authorization", format!("Bearer {t}")));
        }
        let r = req.dispatch().await;
        let status = r.status();
        let www = r.headers().get_one("WWW-Authenticate").map(str::to_owned);
        (status, www, r.into_string().await.unwrap_or_default())
    }
}

#[rocket::async_test]
async fn valid_token_with_scope_reaches_handler() {
    let app = app().await;
    let t = app.token("a+b").await;
    assert_eq!(app.get("/a", Some(&t)).await.0, Status::Ok);
    let (s, _, body) = app.get("/ab", Some(&t)).await;
    assert_eq!((s, body.as_str()), (Status::Ok, "ab-ok for svc"));
}

#[rocket::async_test]
async fn no_token_is_401_with_challenge_without_error_rfc6750_3_1() {
    let app = app().await;
    let (s, www, _) = app.get("/ab", None).await;
    assert_eq!(s, Status::Unauthorized);
    assert_eq!(
        www.as_deref(),
        Some("Bearer realm=\"twisted-oauth2\", scope=\"a b\", resource_metadata=\"https://as.example/.well-known/oauth-protected-resource\"")
    );
}

#[rocket::async_test]
async fn unknown_token_is_401_invalid_token() {
    let app = app().await;
    let (s, www, _) = app.get("/a", Some("bogus-token")).await;
    assert_eq!(s, Status::Unauthorized);
    assert_eq!(
        www.as_deref(),
        Some("Bearer realm=\"twisted-oauth2\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\", resource_metadata=\"https://as.example/.well-known/oauth-protected-resource\"")
    );
}

#[rocket::async_test]
async fn expired_token_is_401_invalid_token() {
    let app = app().await;
    let t = app.token("a").await;
    assert_eq!(app.get("/a", Some(&t)).await.0, Status::Ok);
    app.clock.advance(3600);
    let (s, www, _) = app.get("/a", Some(&t)).await;
    assert_eq!(s, Status::Unauthorized);
    assert!(www.unwrap().contains("error=\"invalid_token\""));
}

#[rocket::async_test]
async fn revoked_token_is_401_invalid_token() {
    let app = app().await;
    let t = app.token("a").await;
    let state = app.client.rocket().state::<OAuth2State>().unwrap();
    state
        .server()
        .unwrap()
        .stores()
        .access
        .revoke_access(&TokenDigest::of(&t))
        .await
        .unwrap();
    let (s, www, _) = app.get("/a", Some(&t)).await;
    assert_eq!(s, Status::Unauthorized);
    assert!(www.unwrap().contains("error=\"invalid_token\""));
}

#[rocket::async_test]
async fn missing_scope_is_403_insufficient_scope_with_scope() {
    let app = app().await;
    let t = app.token("a").await;
    let (s, www, _) = app.get("/ab", Some(&t)).await;
    assert_eq!(s, Status::Forbidden);
    assert_eq!(
        www.as_deref(),
        Some("Bearer realm=\"twisted-oauth2\", error=\"insufficient_scope\", error_description=\"the access token lacks a required scope\", scope=\"a b\", resource_metadata=\"https://as.example/.well-known/oauth-protected-resource\"")
    );
}

#[rocket::async_test]
async fn two_token_methods_are_400_invalid_request_rfc6750_2() {
    let app = app_with(true, vec![]).await;
    let t = app.token("a").await;
    let (s, www, _) = app.get(&format!("/a?access_token={t}"), Some(&t)).await;
    assert_eq!(s, Status::BadRequest);
    assert_eq!(
        www.as_deref(),
        Some("Bearer realm=\"twisted-oauth2\", error=\"invalid_request\", error_description=\"the request carries more than one access token\", resource_metadata=\"https://as.example/.well-known/oauth-protected-resource\"")
    );
    let (s, _, _) = app
        .get(&format!("/a?access_token={t}&access_token={t}"), None)
        .await;
    assert_eq!(s, Status::BadRequest);
}

#[rocket::async_test]
async fn query_token_only_when_enabled_and_response_is_private_rfc6750_2_3() {
    let app = app().await;
    let t = app.token("a").await;
    assert_eq!(
        app.get(&format!("/a?access_token={t}"), None).await.0,
        Status::Unauthorized
    );
    let app = app_with(true, vec![]).await;
    let t = app.token("a").await;
    let r = app
        .client
        .get(format!("/a?access_token={t}"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.headers().get_one("Cache-Control"), Some("private"));
    let r = app
        .client
        .get(format!("/public?access_token={t}"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(
        r.headers().get_one("Cache-Control"),
        Some("private"),
        "a handler's `public` does not let shared caches keep a query-token answer"
    );
    // A malformed query is a malformed request, not a request without a query token: with
    // a header token as well it is still two methods.
    let r = app
        .client
        .get(format!("/a?access_token={t}&x=%ZZ"))
        .header(Header::new("Authorization", format!("Bearer {t}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    let r = app
        .client
        .get(format!("/a?access_token={t}&x=%ZZ"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
}

#[rocket::async_test]
async fn query_tokens_on_parse_a_capped_query() {
    let app = app_with(true, vec![]).await;
    let t = app.token("a").await;
    let r = app
        .client
        .get(format!("/a?access_token={t}&pad={}", "x".repeat(8 * 1024)))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::UriTooLong);
    let many: String = (0..70).map(|i| format!("&p{i}=1")).collect();
    let r = app
        .client
        .get(format!("/a?access_token={t}{many}"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
}

#[rocket::async_test]
async fn bearer_scheme_is_case_insensitive() {
    let app = app().await;
    let t = app.token("a").await;
    let r = app
        .client
        .get("/a")
        .header(Header::new("Authorization", format!("bEaReR {t}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let r = app
        .client
        .get("/a")
        .header(Header::new("Authorization", "Bearer a b"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest, "malformed token value");
}

#[rocket::async_test]
async fn refresh_token_is_refused_at_protected_routes() {
    let app = app().await;
    let state = app.client.rocket().state::<OAuth2State>().unwrap();
    let record = twisted_oauth2::storage::TokenRecord::new(
        "svc",
        twisted_oauth2::Scope::parse("a").unwrap(),
        twisted_oauth2::storage::GrantId::from_u128(7),
        common::T0,
        common::T0 + 1000,
    );
    state
        .server()
        .unwrap()
        .stores()
        .refresh
        .put_refresh(&TokenDigest::of("refresh-token-value"), &record)
        .await
        .unwrap();
    assert_eq!(
        app.get("/a", Some("refresh-token-value")).await.0,
        Status::Unauthorized
    );
}

#[rocket::async_test]
async fn challenge_reaches_response_through_app_catchers() {
    let app = app_with(false, catchers![plain_401, plain_403]).await;
    let (s, www, body) = app.get("/a", None).await;
    assert_eq!((s, body.as_str()), (Status::Unauthorized, "plain 401 page"));
    assert_eq!(
        www.as_deref(),
        Some("Bearer realm=\"twisted-oauth2\", scope=\"a\", resource_metadata=\"https://as.example/.well-known/oauth-protected-resource\"")
    );
    let t = app.token("a").await;
    let (s, www, body) = app.get("/ab", Some(&t)).await;
    assert_eq!((s, body.as_str()), (Status::Forbidden, "plain 403 page"));
    assert!(www
        .unwrap()
        .starts_with("Bearer realm=\"twisted-oauth2\", error=\"insufficient_scope\""));
}

#[rocket::async_test]
async fn app_set_www_authenticate_is_not_overwritten() {
    let app = app_with(false, catchers![app_401]).await;
    let (s, www, _) = app.get("/a", None).await;
    assert_eq!(s, Status::Unauthorized);
    assert_eq!(www.as_deref(), Some("AppScheme realm=\"app\""));
}

#[rocket::async_test]
async fn oauth_route_with_params_and_data_guard() {
    let app = app().await;
    let t = app.token("a").await;
    let r = app
        .client
        .post("/echo/7?q=x")
        .header(Header::new("Authorization", format!("Bearer {t}")))
        .body("hello")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.into_string().await.unwrap(), "7:x:hello");
    let r = app.client.post("/echo/7").body("hello").dispatch().await;
    assert_eq!(
        r.status(),
        Status::Unauthorized,
        "auth runs before the body is read"
    );
}

#[rocket::async_test]
async fn token_info_guard_gives_client_scope_and_expiry() {
    let app = app().await;
    let t = app.token("b+a").await;
    let (s, _, body) = app.get("/me", Some(&t)).await;
    assert_eq!(s, Status::Ok);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["client_id"], "svc");
    assert_eq!(v["scope"], "a b");
    assert_eq!(v["iat"], common::T0);
    assert_eq!(v["exp"], common::T0 + 3600);
    assert!(v.get("sub").is_none(), "client_credentials has no user");
    let (s, www, _) = app.get("/me", None).await;
    assert_eq!(s, Status::Unauthorized);
    assert_eq!(
        www.as_deref(),
        Some("Bearer realm=\"twisted-oauth2\", resource_metadata=\"https://as.example/.well-known/oauth-protected-resource\"")
    );
}

#[rocket::async_test]
async fn auth_result_never_fails_and_hands_over_the_outcome() {
    let app = app().await;
    let (s, www, body) = app.get("/maybe", None).await;
    assert_eq!((s, body.as_str()), (Status::Ok, "no invalid_request"));
    assert_eq!(www, None);
    let t = app.token("b").await;
    assert_eq!(app.get("/maybe", Some(&t)).await.2, "no insufficient_scope");
    let t = app.token("a").await;
    assert_eq!(app.get("/maybe", Some(&t)).await.2, "yes svc");
}

#[rocket::async_test]
async fn launch_without_fairing_but_with_oauth_route_aborts() {
    let rocket = rocket::custom(rocket::Config::figment().merge(("log_level", "off")))
        .mount("/", routes![need_a]);
    let e = Client::untracked(rocket)
        .await
        .expect_err("launch must abort");
    match e.kind() {
        rocket::error::ErrorKind::SentinelAborts(s) => {
            assert!(
                s.iter().any(|s| s.type_name.contains("Authorized")),
                "{s:?}"
            );
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[rocket::async_test]
async fn protected_route_scopes_are_collected_at_ignite() {
    let app = app().await;
    let state = app.client.rocket().state::<OAuth2State>().unwrap();
    let used: Vec<String> = state.scopes_used().into_iter().collect();
    assert_eq!(used, vec!["a".to_owned(), "b".to_owned()]);
    let _ = REALM;
}
