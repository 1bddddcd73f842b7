//! Adapter tests of revocation (RFC 7009), introspection (RFC 7662) and discovery
//! (RFC 8414, RFC 9207, RFC 9728) through Rocket: the metadata document is walked and every
//! advertised endpoint is called with every advertised method.

mod common;

use std::sync::Arc;

use rocket::figment::Figment;
use rocket::form::Form;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::request::Request;
use rocket::response::content::RawHtml;
use rocket::{get, post, routes};
use serde_json::Value;
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::endpoint::authorize::PendingAuthorization;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::rocket::{
    AuthResult, AuthorizeReply, Consent, DecisionForm, OAuth2, OAuth2State, OnAuthenticate,
    PendingRequests,
};
use twisted_oauth2::{oauth, OAuthError, TokenInfo};

const ISSUER: &str = "https://as.example";
const PR_URL: &str = "https://as.example/.well-known/oauth-protected-resource";

twisted_oauth2::required_scope!(ScopeD = "d");

#[oauth(scope = "a")]
#[get("/a")]
fn need_a() -> &'static str {
    "a-ok"
}

#[oauth(scope = "b c")]
#[get("/bc")]
fn need_bc() -> &'static str {
    "bc-ok"
}

#[get("/me")]
fn me(info: TokenInfo) -> String {
    info.client_id.to_string()
}

#[get("/maybe")]
fn maybe(auth: AuthResult<ScopeD>) -> Result<&'static str, OAuthError> {
    auth.into_result().map(|_| "d-ok")
}

/// Shows the handle and CSRF token as text.
struct TextConsent;

#[rocket::async_trait]
impl OnAuthenticate for TextConsent {
    async fn on_authenticate(
        &self,
        _req: &Request<'_>,
        p: PendingAuthorization,
    ) -> Result<Consent, OAuthError> {
        Ok(Consent::new(RawHtml(format!(
            "request_id={}\ncsrf_token={}\n",
            p.request_id, p.csrf_token
        ))))
    }
}

#[post("/decide", data = "<form>")]
async fn decide(form: Form<DecisionForm>, pending: PendingRequests<'_>) -> AuthorizeReply {
    pending.decide(&form, "alice").await
}

/// The common clients plus `rs` (may introspect) and `bearer-rs` (gets the
/// introspection scope); bearer introspection enabled.
fn config() -> ServerConfig {
    let mut cfg = common::config();
    cfg.allow_insecure_request_debug = true;
    let mut rs = common::client("rs", Some("rs-secret"), &[], &[]);
    rs.introspect = true;
    cfg.clients.push(rs);
    cfg.clients.push(common::client(
        "bearer-rs",
        Some("bearer-secret"),
        &["client_credentials"],
        &["introspect"],
    ));
    cfg.introspection_scope = Some("introspect".into());
    cfg
}

fn figment(cfg: ServerConfig) -> Figment {
    Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg))
}

async fn app_with(cfg: ServerConfig, consent: bool) -> Client {
    let mut fairing = OAuth2::fairing().clock(Arc::new(FixedClock::at(common::T0)));
    if consent {
        fairing = fairing.on_authenticate(TextConsent);
    }
    let rocket = rocket::custom(figment(cfg))
        .attach(fairing)
        .mount("/", routes![need_a, need_bc, me, maybe, decide]);
    Client::tracked(rocket).await.expect("launch")
}

async fn app() -> Client {
    app_with(config(), true).await
}

/// The path of an advertised URL (they all live under the issuer).
fn path_of(url: &str) -> String {
    url.strip_prefix(ISSUER)
        .unwrap_or_else(|| panic!("{url} is not under the issuer"))
        .to_owned()
}

async fn json(r: LocalResponse<'_>) -> Value {
    serde_json::from_str(&r.into_string().await.unwrap_or_default()).expect("JSON body")
}

fn assert_no_store(r: &LocalResponse<'_>) {
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(r.headers().get_one("Pragma"), Some("no-cache"));
    assert_eq!(r.content_type(), Some(ContentType::JSON));
}

/// How a client authenticates in a form request.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    None(&'a str),
    Bearer(&'a str),
    Nothing,
}

async fn post_form<'c>(c: &'c Client, path: &str, body: &str, auth: Auth<'_>) -> LocalResponse<'c> {
    let mut body = body.to_owned();
    let mut req = c.post(path.to_owned()).header(ContentType::Form);
    match auth {
        Auth::Basic(id, secret) => {
            req = req.header(Header::new("Authorization", common::basic(id, secret)));
        }
        Auth::Post(id, secret) => {
            body.push_str(&format!("&client_id={id}&client_secret={secret}"));
        }
        Auth::None(id) => body.push_str(&format!("&client_id={id}")),
        Auth::Bearer(t) => {
            req = req.header(Header::new("Authorization", format!("Bearer {t}")));
        }
        Auth::Nothing => {}
    }
    req.body(body).dispatch().await
}

async fn cc_token(c: &Client, auth: Auth<'_>, scope: &str) -> String {
    let r = post_form(
        c,
        "/oauth2/token",
        &format!("grant_type=client_credentials&scope={scope}"),
        auth,
    )
    .await;
    assert_eq!(r.status(), Status::Ok);
    json(r).await["access_token"].as_str().unwrap().to_owned()
}

async fn get_with<'c>(c: &'c Client, path: &str, token: Option<&str>) -> LocalResponse<'c> {
    let mut req = c.get(path.to_owned());
    if let Some(t) = token {
        req = req.header(Header::new("Authorization", format!("Bearer {t}")));
    }
    req.dispatch().await
}

/// Runs the authorization endpoint at `authorize` for the public client `web` with PKCE
/// `method`, grants as alice, and returns the code after checking `iss` (RFC 9207).
async fn authorization_code(
    c: &Client,
    authorize: &str,
    response_type: &str,
    method: &str,
) -> String {
    assert_eq!(method, "S256", "only S256 is enabled in this test app");
    let r = c
        .get(format!(
            "{authorize}?response_type={response_type}&client_id=web&scope=a&state=st&code_challenge={}&code_challenge_method={method}",
            s256_challenge(common::VERIFIER)
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let body = r.into_string().await.unwrap();
    let field = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let r = c
        .post("/decide")
        .header(ContentType::Form)
        .body(format!(
            "request_id={}&csrf_token={}&decision=allow",
            field("request_id"),
            field("csrf_token")
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::SeeOther);
    let location = url::Url::parse(r.headers().get_one("Location").unwrap()).unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("iss").as_deref(), Some(ISSUER), "RFC 9207 iss");
    assert_eq!(param("state").as_deref(), Some("st"));
    param("code").expect("code in the query (response mode query)")
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

// --- revocation and introspection over HTTP -------------------------------------------------

#[rocket::async_test]
async fn revoked_access_token_is_refused_at_guarded_routes_rfc7009_2_1() {
    let c = app().await;
    let t = cc_token(&c, Auth::Basic("svc", "svc-secret"), "a").await;
    assert_eq!(get_with(&c, "/a", Some(&t)).await.status(), Status::Ok);
    assert_eq!(get_with(&c, "/me", Some(&t)).await.status(), Status::Ok);
    let r = post_form(
        &c,
        "/oauth2/revoke",
        &format!("token={t}"),
        Auth::Basic("svc", "svc-secret"),
    )
    .await;
    assert_eq!(r.status(), Status::Ok);
    assert_no_store(&r);
    assert_eq!(json(r).await, serde_json::json!({}));
    for path in ["/a", "/me"] {
        let r = get_with(&c, path, Some(&t)).await;
        assert_eq!(r.status(), Status::Unauthorized, "{path}");
        assert!(r
            .headers()
            .get_one("WWW-Authenticate")
            .unwrap()
            .contains("error=\"invalid_token\""));
    }
}

#[rocket::async_test]
async fn other_clients_token_survives_revocation_rfc7009_2_1() {
    let c = app().await;
    let t = cc_token(&c, Auth::Basic("svc", "svc-secret"), "a").await;
    let r = post_form(
        &c,
        "/oauth2/revoke",
        &format!("token={t}"),
        Auth::Basic("other", "other-secret"),
    )
    .await;
    assert_eq!(r.status(), Status::Ok, "silently");
    assert_eq!(get_with(&c, "/a", Some(&t)).await.status(), Status::Ok);
}

#[rocket::async_test]
async fn revocation_errors_are_json_rfc7009_2_2_1() {
    let c = app().await;
    let r = post_form(
        &c,
        "/oauth2/revoke",
        "token_type_hint=access_token",
        Auth::Basic("svc", "svc-secret"),
    )
    .await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_no_store(&r);
    assert_eq!(json(r).await["error"], "invalid_request");
    let r = post_form(&c, "/oauth2/revoke", "token=x", Auth::Basic("svc", "wrong")).await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some("Basic realm=\"twisted-oauth2\"")
    );
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = c
        .post("/oauth2/revoke")
        .header(ContentType::JSON)
        .header(Header::new(
            "Authorization",
            common::basic("svc", "svc-secret"),
        ))
        .body("{\"token\":\"x\"}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
}

#[rocket::async_test]
async fn introspection_answers_json_with_no_store_rfc7662_2_2() {
    let c = app().await;
    let t = cc_token(&c, Auth::Basic("svc", "svc-secret"), "a").await;
    let r = post_form(
        &c,
        "/oauth2/introspect",
        &format!("token={t}"),
        Auth::Basic("rs", "rs-secret"),
    )
    .await;
    assert_eq!(r.status(), Status::Ok);
    assert_no_store(&r);
    let v = json(r).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "svc");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["iss"], ISSUER);
    let r = post_form(
        &c,
        "/oauth2/introspect",
        "token=unknown",
        Auth::Basic("rs", "rs-secret"),
    )
    .await;
    assert_eq!(json(r).await, serde_json::json!({"active": false}));
}

#[rocket::async_test]
async fn introspection_without_authorization_is_401_with_challenge_rfc7662_2_1() {
    let c = app().await;
    let t = cc_token(&c, Auth::Basic("svc", "svc-secret"), "a").await;
    for auth in [
        Auth::Nothing,
        Auth::Basic("svc", "svc-secret"),
        Auth::None("web"),
    ] {
        let r = post_form(&c, "/oauth2/introspect", &format!("token={t}"), auth).await;
        assert_eq!(r.status(), Status::Unauthorized);
        assert_eq!(
            r.headers().get_one("WWW-Authenticate"),
            Some("Basic realm=\"twisted-oauth2\"")
        );
        assert_eq!(json(r).await["error"], "invalid_client");
    }
    let r = post_form(
        &c,
        "/oauth2/introspect",
        &format!("token={t}"),
        Auth::Bearer("bogus"),
    )
    .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let www = r.headers().get_one("WWW-Authenticate").unwrap().to_owned();
    assert!(
        www.starts_with("Bearer realm=\"twisted-oauth2\", error=\"invalid_token\""),
        "{www}"
    );
    let r = post_form(
        &c,
        "/oauth2/introspect",
        &format!("token={t}"),
        Auth::Bearer(&t),
    )
    .await;
    assert_eq!(
        r.status(),
        Status::Forbidden,
        "a token without the introspection scope"
    );
    assert_eq!(json(r).await["error"], "insufficient_scope");
}

#[rocket::async_test]
async fn other_methods_are_405_with_allow_post() {
    let c = app().await;
    for path in ["/oauth2/revoke", "/oauth2/introspect"] {
        for r in [
            c.get(path).dispatch().await,
            c.put(path).dispatch().await,
            c.delete(path).dispatch().await,
            c.patch(path).dispatch().await,
        ] {
            assert_eq!(r.status(), Status::MethodNotAllowed, "{path}");
            assert_eq!(r.headers().get_one("Allow"), Some("POST"));
        }
    }
}

#[rocket::async_test]
async fn oversize_body_is_413() {
    let mut cfg = config();
    cfg.max_body_size = 64;
    let c = app_with(cfg, true).await;
    let body = format!("token={}", "x".repeat(200));
    for path in ["/oauth2/revoke", "/oauth2/introspect"] {
        let r = post_form(&c, path, &body, Auth::Basic("rs", "rs-secret")).await;
        assert_eq!(r.status(), Status::PayloadTooLarge, "{path}");
    }
}

// --- the metadata document, walked ----------------------------------------------------------

/// Checks the token endpoint with `method`; returns a live access token obtained with it.
async fn check_token_endpoint(c: &Client, doc: &Value, method: &str) -> String {
    let token = path_of(doc["token_endpoint"].as_str().unwrap());
    match method {
        "client_secret_basic" | "client_secret_post" => {
            let auth = if method == "client_secret_basic" {
                Auth::Basic("svc", "svc-secret")
            } else {
                Auth::Post("svc", "svc-secret")
            };
            let r = post_form(c, &token, "grant_type=client_credentials&scope=a", auth).await;
            assert_eq!(r.status(), Status::Ok, "{method}");
            json(r).await["access_token"].as_str().unwrap().to_owned()
        }
        "none" => {
            let authorize = path_of(
                doc["authorization_endpoint"]
                    .as_str()
                    .expect("none needs the code flow"),
            );
            let code = authorization_code(c, &authorize, "code", "S256").await;
            let r = post_form(
                c,
                &token,
                &format!(
                    "grant_type=authorization_code&code={code}&code_verifier={}",
                    common::VERIFIER
                ),
                Auth::None("web"),
            )
            .await;
            assert_eq!(r.status(), Status::Ok, "{method}");
            json(r).await["access_token"].as_str().unwrap().to_owned()
        }
        other => panic!("the token endpoint advertises `{other}`, which this test does not know"),
    }
}

/// Checks one advertised grant type end to end.
async fn check_grant(c: &Client, doc: &Value, grant: &str) {
    let token = path_of(doc["token_endpoint"].as_str().unwrap());
    let authorize = doc["authorization_endpoint"].as_str().map(path_of);
    match grant {
        "client_credentials" => {
            cc_token(c, Auth::Basic("svc", "svc-secret"), "a").await;
        }
        "authorization_code" | "refresh_token" => {
            let authorize = authorize.expect("authorization_code needs the authorization endpoint");
            for rt in strings(&doc["response_types_supported"]) {
                for m in strings(&doc["code_challenge_methods_supported"]) {
                    let code = authorization_code(c, &authorize, &rt, &m).await;
                    let r = post_form(
                        c,
                        &token,
                        &format!(
                            "grant_type=authorization_code&code={code}&code_verifier={}",
                            common::VERIFIER
                        ),
                        Auth::None("web"),
                    )
                    .await;
                    assert_eq!(r.status(), Status::Ok);
                    let v = json(r).await;
                    if grant == "refresh_token" {
                        let rt = v["refresh_token"].as_str().expect("refresh token issued");
                        let r = post_form(
                            c,
                            &token,
                            &format!("grant_type=refresh_token&refresh_token={rt}"),
                            Auth::None("web"),
                        )
                        .await;
                        assert_eq!(r.status(), Status::Ok, "refresh_token grant");
                    }
                }
            }
        }
        other => panic!("`{other}` is advertised but this test does not know it"),
    }
}

async fn check_revocation(c: &Client, doc: &Value, method: &str) {
    let revoke = path_of(doc["revocation_endpoint"].as_str().unwrap());
    let (token, auth) = match method {
        "client_secret_basic" => (
            check_token_endpoint(c, doc, method).await,
            Auth::Basic("svc", "svc-secret"),
        ),
        "client_secret_post" => (
            check_token_endpoint(c, doc, method).await,
            Auth::Post("svc", "svc-secret"),
        ),
        "none" => (
            check_token_endpoint(c, doc, "none").await,
            Auth::None("web"),
        ),
        other => panic!("revocation advertises `{other}`, which this test does not know"),
    };
    assert_eq!(get_with(c, "/me", Some(&token)).await.status(), Status::Ok);
    let r = post_form(c, &revoke, &format!("token={token}"), auth).await;
    assert_eq!(r.status(), Status::Ok, "revocation with {method}");
    assert_eq!(
        get_with(c, "/me", Some(&token)).await.status(),
        Status::Unauthorized,
        "revoked with {method}"
    );
}

async fn check_introspection(c: &Client, doc: &Value, method: &str) {
    let introspect = path_of(doc["introspection_endpoint"].as_str().unwrap());
    let live = cc_token(c, Auth::Basic("svc", "svc-secret"), "a").await;
    let bearer;
    let auth = match method {
        "client_secret_basic" => Auth::Basic("rs", "rs-secret"),
        "client_secret_post" => Auth::Post("rs", "rs-secret"),
        "Bearer" => {
            bearer = cc_token(c, Auth::Basic("bearer-rs", "bearer-secret"), "introspect").await;
            Auth::Bearer(&bearer)
        }
        other => panic!("introspection advertises `{other}`, which this test does not know"),
    };
    let r = post_form(c, &introspect, &format!("token={live}"), auth).await;
    assert_eq!(r.status(), Status::Ok, "introspection with {method}");
    let v = json(r).await;
    assert_eq!(v["active"], true, "{method}");
    assert_eq!(v["client_id"], "svc");
}

#[rocket::async_test]
async fn every_advertised_endpoint_and_method_works_rfc8414_2() {
    let c = app().await;
    let r = c
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.content_type(), Some(ContentType::JSON));
    let doc = json(r).await;
    assert_eq!(doc["issuer"], ISSUER, "RFC 8414 section 3.3");
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(strings(&doc["response_modes_supported"])
        .iter()
        .all(|m| m == "query"));

    // Every member naming an endpoint is one this test calls.
    let endpoints: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_endpoint"))
        .map(String::as_str)
        .collect();
    for e in &endpoints {
        assert!(
            matches!(
                *e,
                "authorization_endpoint"
                    | "token_endpoint"
                    | "revocation_endpoint"
                    | "introspection_endpoint"
            ),
            "advertised endpoint `{e}` is not exercised"
        );
    }
    assert_eq!(endpoints.len(), 4);

    let token_methods = strings(&doc["token_endpoint_auth_methods_supported"]);
    assert!(!token_methods.is_empty());
    for m in &token_methods {
        check_token_endpoint(&c, &doc, m).await;
    }
    let grants = strings(&doc["grant_types_supported"]);
    assert!(!grants.is_empty());
    for g in &grants {
        check_grant(&c, &doc, g).await;
    }
    let revocation_methods = strings(&doc["revocation_endpoint_auth_methods_supported"]);
    assert!(!revocation_methods.is_empty());
    for m in &revocation_methods {
        check_revocation(&c, &doc, m).await;
    }
    let introspection_methods = strings(&doc["introspection_endpoint_auth_methods_supported"]);
    assert!(introspection_methods.contains(&"Bearer".to_owned()));
    for m in &introspection_methods {
        check_introspection(&c, &doc, m).await;
    }
    // What is not advertised does not work: public clients cannot introspect.
    let t = cc_token(&c, Auth::Basic("svc", "svc-secret"), "a").await;
    let introspect = path_of(doc["introspection_endpoint"].as_str().unwrap());
    let r = post_form(&c, &introspect, &format!("token={t}"), Auth::None("web")).await;
    assert_eq!(r.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn without_consent_hook_no_authorization_endpoint_is_advertised_rfc8414_2() {
    // Only clients that do not use the code grant: with one, launch aborts (next test).
    let mut cfg = config();
    cfg.clients
        .retain(|c| !c.grant_types.iter().any(|g| g == "authorization_code"));
    let c = app_with(cfg, false).await;
    let doc = json(
        c.get("/.well-known/oauth-authorization-server")
            .dispatch()
            .await,
    )
    .await;
    assert!(doc.get("authorization_endpoint").is_none(), "{doc}");
    assert_eq!(doc["response_types_supported"], serde_json::json!([]));
    assert!(!strings(&doc["grant_types_supported"]).contains(&"authorization_code".to_owned()));
    assert_eq!(
        c.get("/oauth2/authorize").dispatch().await.status(),
        Status::NotFound
    );
    for g in strings(&doc["grant_types_supported"]) {
        if g == "client_credentials" {
            check_grant(&c, &doc, &g).await;
        }
    }
}

#[rocket::async_test]
async fn issuer_with_path_is_served_at_the_inserted_location_rfc8414_3_1() {
    let mut cfg = config();
    cfg.issuer = "https://as.example/tenant".into();
    let c = app_with(cfg, true).await;
    let r = c
        .get("/.well-known/oauth-authorization-server/tenant")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let doc = json(r).await;
    assert_eq!(doc["issuer"], "https://as.example/tenant");
    // The advertised endpoints live under the issuer's path, and are served there.
    let at = |key: &str| {
        doc[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} advertised"))
            .strip_prefix(ISSUER)
            .unwrap_or_else(|| panic!("{key} under the issuer's origin"))
            .to_owned()
    };
    assert_eq!(at("token_endpoint"), "/tenant/oauth2/token");
    let r = post_form(
        &c,
        &at("token_endpoint"),
        "grant_type=client_credentials&scope=introspect",
        Auth::Basic("bearer-rs", "bearer-secret"),
    )
    .await;
    assert_eq!(r.status(), Status::Ok);
    let token = json(r).await["access_token"].as_str().unwrap().to_owned();
    let r = post_form(
        &c,
        &at("introspection_endpoint"),
        &format!("token={token}"),
        Auth::Basic("rs", "rs-secret"),
    )
    .await;
    assert_eq!(json(r).await["active"], true);
    let r = post_form(
        &c,
        &at("revocation_endpoint"),
        &format!("token={token}"),
        Auth::Basic("bearer-rs", "bearer-secret"),
    )
    .await;
    assert_eq!(r.status(), Status::Ok);
    let r = c.get(at("authorization_endpoint")).dispatch().await;
    assert_eq!(
        r.status(),
        Status::BadRequest,
        "served, refusing a request without client_id"
    );
    assert_eq!(
        c.post("/oauth2/token").dispatch().await.status(),
        Status::NotFound,
        "nothing served outside the issuer's path"
    );
    assert_eq!(
        c.get("/.well-known/oauth-authorization-server")
            .dispatch()
            .await
            .status(),
        Status::NotFound,
        "no document for an issuer this server is not"
    );
    let r = c
        .get("/.well-known/oauth-protected-resource/tenant")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(json(r).await["resource"], "https://as.example/tenant");
    let r = get_with(&c, "/a", None).await;
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some("Bearer realm=\"twisted-oauth2\", scope=\"a\", resource_metadata=\"https://as.example/.well-known/oauth-protected-resource/tenant\"")
    );
}

#[rocket::async_test]
async fn unmountable_issuer_path_aborts_launch_cleanly() {
    for issuer in ["https://as.example/t<x>", "https://as.example/a b"] {
        let mut cfg = config();
        cfg.issuer = issuer.into();
        let rocket = rocket::custom(figment(cfg)).attach(OAuth2::fairing());
        let e = Client::untracked(rocket).await.expect_err(issuer);
        assert!(
            matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_)),
            "{issuer}: {e:?}"
        );
    }
}

// --- protected resource metadata and challenges ------------------------------------------------

#[rocket::async_test]
async fn protected_resource_document_lists_exactly_the_routes_scopes_rfc9728_2() {
    let c = app().await;
    let r = c
        .get("/.well-known/oauth-protected-resource")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.content_type(), Some(ContentType::JSON));
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
    assert_eq!(
        json(r).await,
        serde_json::json!({
            "resource": ISSUER,
            "authorization_servers": [ISSUER],
            "scopes_supported": ["a", "b", "c", "d"],
            "bearer_methods_supported": ["header"],
        })
    );
    let state = c.rocket().state::<OAuth2State>().unwrap();
    assert_eq!(state.resource_metadata_url(), PR_URL);
}

#[rocket::async_test]
async fn configured_resource_is_served_at_its_own_location_rfc9728_3_1() {
    let mut cfg = config();
    cfg.resource = Some("https://as.example/api".into());
    cfg.resource_name = Some("Test API".into());
    cfg.allow_access_token_in_query = true;
    let c = app_with(cfg, true).await;
    let r = c
        .get("/.well-known/oauth-protected-resource/api")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v = json(r).await;
    assert_eq!(v["resource"], "https://as.example/api");
    assert_eq!(v["resource_name"], "Test API");
    assert_eq!(v["authorization_servers"], serde_json::json!([ISSUER]));
    assert_eq!(
        v["bearer_methods_supported"],
        serde_json::json!(["header", "query"])
    );
}

#[rocket::async_test]
async fn challenges_carry_resource_metadata_rfc9728_5_1() {
    let c = app().await;
    let meta = format!("resource_metadata=\"{PR_URL}\"");
    let r = get_with(&c, "/a", None).await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some(format!("Bearer realm=\"twisted-oauth2\", scope=\"a\", {meta}").as_str())
    );
    let r = get_with(&c, "/a", Some("bogus")).await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert!(r
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap()
        .ends_with(&meta));
    let t = cc_token(&c, Auth::Basic("svc", "svc-secret"), "a").await;
    let r = get_with(&c, "/bc", Some(&t)).await;
    assert_eq!(r.status(), Status::Forbidden);
    assert!(r
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap()
        .ends_with(&meta));
    // An error handed back by the handler (AuthResult) is answered by the responder.
    let r = get_with(&c, "/maybe", Some(&t)).await;
    assert_eq!(r.status(), Status::Forbidden);
    assert_eq!(
        r.headers().get_one("WWW-Authenticate"),
        Some(format!("Bearer realm=\"twisted-oauth2\", error=\"insufficient_scope\", error_description=\"the access token lacks a required scope\", scope=\"d\", {meta}").as_str())
    );
    // The advertised location serves the document.
    let r = c.get(path_of(PR_URL)).dispatch().await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(json(r).await["resource"], ISSUER);
}
