//! Launch-time checks of the fairing: mistakes that used to launch silently abort with one
//! clear line, or warn where the setting is legal. The log is captured by a logger this
//! test binary installs before any Rocket (Rocket keeps an installed logger).

mod common;

use common::log_capture::{capture, logged};
use rocket::figment::Figment;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::oauth;
use twisted_oauth2::rocket::OAuth2;

fn figment(cfg: ServerConfig) -> Figment {
    rocket::Config::figment()
        .merge(("log_level", "normal"))
        .merge(("oauth2", cfg))
}

fn svc_only() -> ServerConfig {
    let mut cfg = common::config();
    cfg.clients
        .retain(|c| !c.grant_types.iter().any(|g| g == "authorization_code"));
    cfg
}

#[oauth(scope = "nobody-gets-this")]
#[get("/unreachable")]
fn unreachable_scope() -> &'static str {
    "x"
}

#[oauth(scope = "a")]
#[get("/fine")]
fn fine_scope() -> &'static str {
    "x"
}

#[rocket::async_test]
async fn missing_issuer_aborts_launch_naming_the_key() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = String::new();
    let e = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect_err("no issuer");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&["`oauth2.issuer` is not set", "public URL"]));
}

#[rocket::async_test]
async fn missing_issuer_is_derived_from_rocket_with_the_debug_override_and_said_so() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = String::new();
    cfg.allow_insecure_request_debug = true;
    let figment = figment(cfg).merge(("port", 8123));
    let c = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect("launches");
    let doc: serde_json::Value = serde_json::from_str(
        &c.get("/.well-known/oauth-authorization-server")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["issuer"], "http://127.0.0.1:8123");
    assert!(logged(&[
        "using http://127.0.0.1:8123",
        "derived from Rocket"
    ]));
}

#[rocket::async_test]
async fn issuer_elsewhere_than_the_listener_warns_without_a_proxy_header() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = "http://127.0.0.1:8000".into();
    cfg.allow_insecure_request_debug = true;
    let figment = figment(cfg).merge(("port", 8101));
    // Liftoff runs for a local client too.
    let _c = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect("legal: only a warning");
    assert!(logged(&[
        "the issuer http://127.0.0.1:8000 is not where Rocket listens",
        ":8101"
    ]));
}

#[rocket::async_test]
async fn unknown_grant_type_aborts_listing_the_valid_names() {
    capture();
    let mut cfg = svc_only();
    cfg.clients[0].grant_types = vec!["client-credentials".into()];
    let e = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect_err("typo");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "unknown grant type `client-credentials`",
        "authorization_code, refresh_token, client_credentials"
    ]));
}

#[rocket::async_test]
async fn code_grant_client_without_consent_hook_aborts() {
    capture();
    let e = Client::untracked(rocket::custom(figment(common::config())).attach(OAuth2::fairing()))
        .await
        .expect_err("no hook");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "client `web` may use the authorization code grant but no consent hook"
    ]));
}

#[rocket::async_test]
async fn oauth_scope_no_client_may_obtain_warns_naming_the_route() {
    capture();
    let rocket = rocket::custom(figment(svc_only()))
        .attach(OAuth2::fairing())
        .mount("/", routes![unreachable_scope, fine_scope]);
    let _c = Client::untracked(rocket)
        .await
        .expect("legal: only a warning");
    assert!(logged(&[
        "route `unreachable_scope` requires scope `nobody-gets-this`",
        "no configured client"
    ]));
    assert!(!logged(&["route `fine_scope` requires"]));
}

#[rocket::async_test]
async fn config_type_errors_name_oauth2_key_and_unit() {
    capture();
    let figment = rocket::Config::figment()
        .merge(("log_level", "normal"))
        .merge(("oauth2", svc_only()))
        .merge(("oauth2.access_token_lifetime", "1h"));
    let e = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect_err("bad type");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "invalid configuration `oauth2.access_token_lifetime`",
        "seconds"
    ]));
    assert!(!logged(&["access_token_lifetime.oauth2"]));
}

#[rocket::async_test]
async fn open_registration_with_rockets_ip_header_and_no_trusted_proxy_warns() {
    capture();
    let mut cfg = svc_only();
    cfg.allow_insecure_request_debug = true;
    cfg.registration.enabled = true;
    // Rocket's default (the repository's Rocket.toml turns it off).
    let figment = figment(cfg).merge(("ip_header", "X-Real-IP"));
    let fairing = OAuth2::fairing().builtin_consent(Nobody, "/login");
    let _c = Client::untracked(rocket::custom(figment).attach(fairing))
        .await
        .expect("legal: only a warning");
    assert!(logged(&[
        "registration is open and Rocket's ip_header (`X-Real-IP`) is on",
        "oauth2.trusted_proxies"
    ]));
}

struct Nobody;

#[rocket::async_trait]
impl twisted_oauth2::rocket::SignedIn for Nobody {
    async fn user(&self, _: &rocket::Request<'_>) -> Option<String> {
        None
    }
}

#[rocket::async_test]
async fn registration_without_a_consent_hook_aborts_naming_both_fixes() {
    capture();
    let mut cfg = svc_only();
    cfg.registration.enabled = true;
    let e = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect_err("no hook");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "dynamic client registration is on (oauth2.registration.enabled) and registers \
         authorization_code clients, but no consent hook is set, so /authorize would not exist: \
         add `.builtin_consent(..)`",
        "or `.on_authenticate(..)` (a consent page of your own) to OAuth2::fairing()",
        "or remove authorization_code from oauth2.grant_types",
    ]));
}

#[rocket::async_test]
async fn client_metadata_documents_without_a_consent_hook_abort_naming_both_fixes() {
    capture();
    let mut cfg = svc_only();
    cfg.client_metadata.enabled = true;
    let e = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect_err("no hook");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "client ID metadata documents are on (oauth2.client_metadata.enabled) but no consent hook \
         is set, so /authorize would not exist and no such client could sign in: add \
         `.builtin_consent(..)`",
        "`.on_authenticate(..)`",
    ]));
}

#[rocket::async_test]
async fn a_configured_code_client_without_a_hook_is_told_of_the_builtin_consent_too() {
    capture();
    let e = Client::untracked(rocket::custom(figment(common::config())).attach(OAuth2::fairing()))
        .await
        .expect_err("no hook");
    let _ = e.kind();
    assert!(logged(&[
        "client `web` may use the authorization code grant",
        "add `.builtin_consent(..)`",
        "`.on_authenticate(..)`",
        "or remove the grant from the client",
    ]));
}

#[rocket::async_test]
async fn without_authorize_neither_registration_nor_the_code_grant_is_advertised() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = "https://no-authorize.example".into();
    cfg.grant_types = vec!["client_credentials".into()];
    cfg.registration.enabled = true;
    cfg.registration.open_client_credentials = true;
    let c = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect("client_credentials registration needs no /authorize");
    let doc: serde_json::Value = c
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await
        .into_json()
        .await
        .unwrap();
    assert!(doc.get("authorization_endpoint").is_none(), "{doc}");
    assert!(doc.get("registration_endpoint").is_none(), "{doc}");
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    // A registration asking for the code grant is refused.
    let r = c
        .post("/oauth2/register")
        .header(rocket::http::ContentType::JSON)
        .body(
            r#"{"redirect_uris":["http://127.0.0.1:9000/cb"],"token_endpoint_auth_method":"none"}"#,
        )
        .dispatch()
        .await;
    assert_eq!(r.status().code, 400);
    assert!(logged(&[
        "issuer:     https://no-authorize.example",
        "  authorize:  off (no consent hook: no authorization code grant)",
        "  registration: POST https://no-authorize.example/oauth2/register (open, not advertised (no /authorize))",
        "  grants:     client_credentials\n",
    ]));
}

#[rocket::async_test]
async fn the_banner_says_how_authorize_registration_documents_and_origins_are_served() {
    capture();
    let mut cfg = svc_only();
    cfg.issuer = "https://banner.example".into();
    cfg.registration.enabled = true;
    cfg.client_metadata.enabled = true;
    cfg.allowed_origins = vec!["http://localhost:*".into()];
    cfg.cors_allowed_origins = vec![];
    let _c = Client::untracked(
        rocket::custom(figment(cfg))
            .attach(
                OAuth2::fairing()
                    .builtin_consent(Nobody, "/login")
                    .client_metadata_fetcher(std::sync::Arc::new(
                        twisted_oauth2::client_metadata::StaticDocuments::new(),
                    ))
                    .check_origin("/fine"),
            )
            .mount("/", routes![fine_scope]),
    )
    .await
    .expect("launches");
    assert!(logged(&[
        "issuer:     https://banner.example",
        "  authorize:  GET|POST https://banner.example/oauth2/authorize (built-in consent page; sign-in at /login)",
        "  registration: POST https://banner.example/oauth2/register (open)",
        "  client metadata documents: on (any https host)",
        "  origin check: /fine (allowed: https://banner.example, http://localhost:*)",
        "  grants:     authorization_code, refresh_token, client_credentials",
    ]));
}

#[oauth(scope = "a mcp:admn")]
#[get("/unsupported")]
fn unsupported_scope() -> &'static str {
    "x"
}

#[rocket::async_test]
async fn a_route_scope_outside_scopes_supported_aborts_naming_route_and_scope() {
    capture();
    let mut cfg = svc_only();
    cfg.scopes_supported = Some(vec!["a".into(), "mcp:admin".into()]);
    let e = Client::untracked(
        rocket::custom(figment(cfg))
            .attach(OAuth2::fairing())
            .mount("/", routes![unsupported_scope]),
    )
    .await
    .expect_err("unsupported scope");
    assert!(
        matches!(e.kind(), rocket::error::ErrorKind::SentinelAborts(_)),
        "{e:?}"
    );
    assert!(logged(&[
        "route `unsupported_scope` requires scope `mcp:admn`, which is not in oauth2.scopes_supported: \
         the authorization server refuses to issue it, so every token would get 403; add it to \
         scopes_supported (did you mean `mcp:admin`?), or to the scope_includes of a supported scope"
    ]));
}

#[rocket::async_test]
async fn a_route_scope_included_by_a_supported_scope_launches() {
    capture();
    let mut cfg = svc_only();
    cfg.scopes_supported = Some(vec!["a".into(), "admin".into()]);
    cfg.scope_includes = [("admin".to_owned(), vec!["mcp:admn".to_owned()])].into();
    Client::untracked(
        rocket::custom(figment(cfg))
            .attach(OAuth2::fairing())
            .mount("/", routes![unsupported_scope]),
    )
    .await
    .expect("included by admin");
}

#[rocket::async_test]
async fn a_near_miss_key_gets_did_you_mean_without_nested_backticks() {
    capture();
    let figment = rocket::Config::figment()
        .merge(("log_level", "normal"))
        .merge(("oauth2", svc_only()))
        .merge(("oauth2.registration.enable", true));
    let e = Client::untracked(rocket::custom(figment).attach(OAuth2::fairing()))
        .await
        .expect_err("typo");
    assert!(matches!(
        e.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    assert!(logged(&[
        "invalid configuration `oauth2.registration.enable`: unknown key `enable` (did you mean \
         `enabled`?); the keys here are `enabled`, `initial_access_token_sha256`,"
    ]));
    assert!(!logged(&["`one of"]));
}

#[rocket::async_test]
async fn a_near_miss_grant_type_gets_did_you_mean() {
    capture();
    let mut cfg = svc_only();
    cfg.grant_types = vec!["client-credentials".into()];
    let e = Client::untracked(rocket::custom(figment(cfg)).attach(OAuth2::fairing()))
        .await
        .expect_err("typo");
    let _ = e.kind();
    assert!(logged(&[
        "unknown grant type `client-credentials` (did you mean `client_credentials`?): valid are"
    ]));
}
