//! Protocol tests of the authorization endpoint (RFC 6749 §4.1.1, §4.1.2, §4.1.2.1;
//! RFC 7636; RFC 8252 §7.3; RFC 9207), every validation branch in order, with where the
//! error lands.

mod common;

use common::*;
use twisted_oauth2::endpoint::authorize::{self, AuthorizeError, Grant, PendingAuthorization};
use twisted_oauth2::endpoint::Transport;
use twisted_oauth2::pkce::s256_challenge;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::Stores;
use twisted_oauth2::ErrorCode;

fn challenge() -> String {
    format!(
        "code_challenge={}&code_challenge_method=S256",
        s256_challenge(VERIFIER)
    )
}

async fn validate(f: &Fixture, q: &str) -> Result<PendingAuthorization, AuthorizeError> {
    authorize::validate(&f.server, q.as_bytes(), SECURE, BINDING).await
}

fn page_code(r: Result<PendingAuthorization, AuthorizeError>) -> (ErrorCode, String) {
    match r {
        Err(AuthorizeError::Page(e)) => (e.code(), e.description().unwrap_or("").to_owned()),
        other => panic!("expected an error page, got {other:?}"),
    }
}

/// The redirect's query (or fragment) parameters.
fn redirect_params(
    r: Result<PendingAuthorization, AuthorizeError>,
) -> (String, Vec<(String, String)>) {
    match r {
        Err(AuthorizeError::Redirect { redirect, .. }) => {
            let url = url::Url::parse(redirect.location()).unwrap();
            let base = format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.path()
            );
            (
                base,
                url.query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

// --- shown to the user, never redirected ----------------------------------------------

#[tokio::test]
async fn client_id_problems_are_shown_not_redirected() {
    let f = fixture();
    let (c, d) =
        page_code(validate(&f, &format!("response_type=code&scope=a&{}", challenge())).await);
    assert_eq!(
        (c, d.as_str()),
        (ErrorCode::InvalidRequest, "missing parameter: client_id")
    );
    let (c, d) =
        page_code(validate(&f, "response_type=code&client_id=web&client_id=web&scope=a").await);
    assert_eq!(
        (c, d.as_str()),
        (ErrorCode::InvalidRequest, "duplicate parameter: client_id")
    );
    let (c, d) = page_code(validate(&f, "response_type=code&client_id=nobody&scope=a").await);
    assert_eq!(
        (c, d.as_str()),
        (ErrorCode::InvalidRequest, "unknown client_id")
    );
}

#[tokio::test]
async fn redirect_uri_problems_are_shown_not_redirected_no_open_redirector() {
    let f = fixture();
    let q = |extra: &str| {
        format!(
            "response_type=code&client_id=web&scope=a&{}&{extra}",
            challenge()
        )
    };
    let (c, _) = page_code(validate(&f, &q("redirect_uri=https%3A%2F%2Fevil.example%2Fcb")).await);
    assert_eq!(c, ErrorCode::InvalidRequest);
    let (c, d) = page_code(validate(&f, &q("redirect_uri=https%3A%2F%2Fclient.example%2Fcb&redirect_uri=https%3A%2F%2Fclient.example%2Fcb")).await);
    assert_eq!(
        (c, d.as_str()),
        (
            ErrorCode::InvalidRequest,
            "duplicate parameter: redirect_uri"
        )
    );
    // Prefix or suffix tricks do not match: exact string comparison.
    for bad in [
        "https%3A%2F%2Fclient.example%2Fcb%2F",
        "https%3A%2F%2Fclient.example%2Fcb%3Fx%3D1",
        "https%3A%2F%2Fclient.example%2Fcb%23f",
    ] {
        let (c, _) = page_code(validate(&f, &q(&format!("redirect_uri={bad}"))).await);
        assert_eq!(c, ErrorCode::InvalidRequest, "{bad}");
    }
}

#[tokio::test]
async fn missing_redirect_uri_with_several_registered_is_shown() {
    let mut cfg = config();
    let mut multi = client("multi", None, &["authorization_code"], &["a"]);
    multi
        .redirect_uris
        .push("https://client.example/other".into());
    cfg.clients.push(multi);
    let f = fixture_with(cfg);
    let (c, d) = page_code(
        validate(
            &f,
            &format!("response_type=code&client_id=multi&scope=a&{}", challenge()),
        )
        .await,
    );
    assert_eq!(
        (c, d.as_str()),
        (ErrorCode::InvalidRequest, "missing parameter: redirect_uri")
    );
    let ok = validate(&f, &format!("response_type=code&client_id=multi&scope=a&{}&redirect_uri=https%3A%2F%2Fclient.example%2Fother", challenge()))
        .await
        .unwrap();
    assert_eq!(ok.redirect_uri, "https://client.example/other");
}

#[tokio::test]
async fn loopback_redirect_may_use_any_port_rfc8252_7_3() {
    let mut cfg = config();
    let mut native = client("native", None, &["authorization_code"], &["a"]);
    native.redirect_uris = vec!["http://127.0.0.1/callback".into()];
    cfg.clients.push(native);
    let f = fixture_with(cfg);
    let p = validate(&f, &format!("response_type=code&client_id=native&scope=a&{}&redirect_uri=http%3A%2F%2F127.0.0.1%3A53012%2Fcallback", challenge()))
        .await
        .unwrap();
    assert_eq!(p.redirect_uri, "http://127.0.0.1:53012/callback");
    let (c, _) = page_code(validate(&f, &format!("response_type=code&client_id=native&scope=a&{}&redirect_uri=http%3A%2F%2F127.0.0.1%3A53012%2Fother", challenge())).await);
    assert_eq!(c, ErrorCode::InvalidRequest);
}

// --- redirected to the client -----------------------------------------------------------

#[tokio::test]
async fn duplicate_state_is_redirected_without_state() {
    let f = fixture();
    let (base, p) = redirect_params(
        validate(
            &f,
            "response_type=code&client_id=web&scope=a&state=1&state=2",
        )
        .await,
    );
    assert_eq!(base, REDIRECT);
    assert_eq!(get(&p, "error"), Some("invalid_request"));
    assert_eq!(get(&p, "state"), None);
    assert_eq!(get(&p, "iss"), Some("https://as.example"));
}

#[tokio::test]
async fn response_type_problems_are_redirected_with_state_and_iss() {
    let f = fixture();
    let (_, p) = redirect_params(validate(&f, "client_id=web&scope=a&state=s1").await);
    assert_eq!(get(&p, "error"), Some("invalid_request"));
    assert_eq!(
        get(&p, "error_description"),
        Some("missing parameter: response_type")
    );
    assert_eq!(get(&p, "state"), Some("s1"));
    assert_eq!(get(&p, "iss"), Some("https://as.example"));
    let (_, p) = redirect_params(
        validate(
            &f,
            "response_type=code&response_type=code&client_id=web&scope=a&state=s1",
        )
        .await,
    );
    assert_eq!(
        get(&p, "error_description"),
        Some("duplicate parameter: response_type")
    );
    for rt in ["token", "id_token", "code+token"] {
        let (_, p) = redirect_params(
            validate(
                &f,
                &format!("response_type={rt}&client_id=web&scope=a&state=s1"),
            )
            .await,
        );
        assert_eq!(get(&p, "error"), Some("unsupported_response_type"), "{rt}");
        assert_eq!(get(&p, "state"), Some("s1"));
    }
}

#[tokio::test]
async fn plain_http_is_redirected_as_invalid_request() {
    let f = fixture();
    let r = authorize::validate(
        &f.server,
        format!(
            "response_type=code&client_id=web&scope=a&state=s&{}",
            challenge()
        )
        .as_bytes(),
        Transport { secure: false },
        BINDING,
    )
    .await;
    let (_, p) = redirect_params(r);
    assert_eq!(get(&p, "error"), Some("invalid_request"));
    assert_eq!(
        get(&p, "error_description"),
        Some("OAuth 2.0 requires requests over HTTPS")
    );
}

#[tokio::test]
async fn client_not_allowed_the_flow_is_unauthorized_client() {
    let f = fixture();
    let (_, p) = redirect_params(
        validate(
            &f,
            &format!(
                "response_type=code&client_id=svc&scope=a&state=s&{}",
                challenge()
            ),
        )
        .await,
    );
    assert_eq!(get(&p, "error"), Some("unauthorized_client"));
}

#[tokio::test]
async fn scope_problems_are_invalid_scope() {
    let f = fixture();
    for scope in ["z", "a%20%20b", "a%22", ""] {
        let (_, p) = redirect_params(
            validate(
                &f,
                &format!(
                    "response_type=code&client_id=web&scope={scope}&state=s&{}",
                    challenge()
                ),
            )
            .await,
        );
        assert_eq!(get(&p, "error"), Some("invalid_scope"), "{scope:?}");
    }
    let mut cfg = config();
    cfg.default_scope = Some("b".into());
    let f = fixture_with(cfg);
    let p = validate(
        &f,
        &format!("response_type=code&client_id=web&{}", challenge()),
    )
    .await
    .unwrap();
    assert_eq!(p.scope.to_string(), "b", "default scope when omitted");
}

#[tokio::test]
async fn public_client_without_code_challenge_is_refused_rfc7636_4_4_1() {
    let f = fixture();
    let (_, p) =
        redirect_params(validate(&f, "response_type=code&client_id=web&scope=a&state=s").await);
    assert_eq!(get(&p, "error"), Some("invalid_request"));
    assert!(get(&p, "error_description")
        .unwrap()
        .contains("code_challenge"));
    // A confidential client may omit it unless the server requires PKCE for all.
    validate(&f, "response_type=code&client_id=app&scope=a")
        .await
        .unwrap();
    let mut cfg = config();
    cfg.pkce_required_for_all_clients = true;
    let f = fixture_with(cfg);
    let (_, p) = redirect_params(validate(&f, "response_type=code&client_id=app&scope=a").await);
    assert_eq!(get(&p, "error"), Some("invalid_request"));
}

#[tokio::test]
async fn plain_challenge_is_refused_unless_enabled() {
    let f = fixture();
    let v = "a".repeat(50);
    let (_, p) = redirect_params(validate(&f, &format!("response_type=code&client_id=web&scope=a&code_challenge={v}&code_challenge_method=plain")).await);
    assert_eq!(get(&p, "error"), Some("invalid_request"));
    let (_, p) = redirect_params(
        validate(
            &f,
            &format!("response_type=code&client_id=web&scope=a&code_challenge={v}"),
        )
        .await,
    );
    assert_eq!(
        get(&p, "error"),
        Some("invalid_request"),
        "method defaults to plain, which is off"
    );
    let mut cfg = config();
    cfg.pkce_allow_plain = true;
    let f = fixture_with(cfg);
    let p = validate(&f, &format!("response_type=code&client_id=web&scope=a&code_challenge={v}&code_challenge_method=plain")).await.unwrap();
    assert_eq!(
        p.code_challenge.unwrap().method,
        twisted_oauth2::pkce::ChallengeMethod::Plain
    );
}

#[tokio::test]
async fn malformed_challenge_or_method_is_invalid_request() {
    let f = fixture();
    for q in [
        "code_challenge=short&code_challenge_method=S256",
        "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S512",
        "code_challenge_method=S256",
    ] {
        let (_, p) = redirect_params(
            validate(&f, &format!("response_type=code&client_id=web&scope=a&{q}")).await,
        );
        assert_eq!(get(&p, "error"), Some("invalid_request"), "{q}");
    }
}

#[tokio::test]
async fn redirect_keeps_registered_query_parameters() {
    let mut cfg = config();
    let mut c = client("q", None, &["authorization_code"], &["a"]);
    c.redirect_uris = vec!["https://client.example/cb?tenant=7".into()];
    cfg.clients.push(c);
    let f = fixture_with(cfg);
    let (_, p) =
        redirect_params(validate(&f, "response_type=code&client_id=q&scope=z&state=s").await);
    assert_eq!(get(&p, "tenant"), Some("7"));
    assert_eq!(get(&p, "error"), Some("invalid_scope"));
}

// --- decisions ------------------------------------------------------------------------

async fn pending(f: &Fixture, state: Option<&str>) -> PendingAuthorization {
    let mut q = format!("response_type=code&client_id=web&scope=a+b&{}", challenge());
    if let Some(s) = state {
        q.push_str("&state=");
        q.push_str(&url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>());
    }
    validate(f, &q).await.unwrap()
}

fn location_params(loc: &str) -> Vec<(String, String)> {
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn state_round_trips_byte_exact_and_absent_stays_absent() {
    let f = fixture();
    let state = "a b&c=d%/\u{e9}+~";
    let p = pending(&f, Some(state)).await;
    assert_eq!(p.state.as_deref(), Some(state));
    let r = authorize::grant(
        &f.server,
        &p.request_id,
        Some(BINDING),
        &p.csrf_token,
        Grant::default(),
    )
    .await
    .unwrap();
    let params = location_params(r.location());
    assert_eq!(get(&params, "state"), Some(state));
    assert_eq!(get(&params, "iss"), Some("https://as.example"));
    assert!(get(&params, "code").is_some());

    let p = pending(&f, None).await;
    let r = authorize::grant(
        &f.server,
        &p.request_id,
        Some(BINDING),
        &p.csrf_token,
        Grant::default(),
    )
    .await
    .unwrap();
    assert!(!r.location().contains("state"), "{}", r.location());
    let p = pending(&f, None).await;
    let r = authorize::deny(&f.server, &p.request_id, Some(BINDING), &p.csrf_token)
        .await
        .unwrap();
    assert!(!r.location().contains("state"), "{}", r.location());
}

#[tokio::test]
async fn deny_redirects_access_denied_with_state_and_iss_rfc6749_4_1_2_1() {
    let f = fixture();
    let p = pending(&f, Some("st")).await;
    let r = authorize::deny(&f.server, &p.request_id, Some(BINDING), &p.csrf_token)
        .await
        .unwrap();
    let params = location_params(r.location());
    assert_eq!(get(&params, "error"), Some("access_denied"));
    assert_eq!(get(&params, "state"), Some("st"));
    assert_eq!(get(&params, "iss"), Some("https://as.example"));
}

#[tokio::test]
async fn grant_may_narrow_scope_but_not_widen() {
    let f = fixture();
    let p = pending(&f, None).await;
    let g = Grant {
        scope: Some(twisted_oauth2::Scope::parse("a").unwrap()),
        ..Default::default()
    };
    let r = authorize::grant(&f.server, &p.request_id, Some(BINDING), &p.csrf_token, g)
        .await
        .unwrap();
    let code = get(&location_params(r.location()), "code")
        .unwrap()
        .to_owned();
    let t = f.redeem_web(&code).await.unwrap();
    assert_eq!(t.scope, "a");

    let p = pending(&f, Some("s")).await;
    let g = Grant {
        scope: Some(twisted_oauth2::Scope::parse("a c").unwrap()),
        ..Default::default()
    };
    match authorize::grant(&f.server, &p.request_id, Some(BINDING), &p.csrf_token, g).await {
        Err(AuthorizeError::Redirect { error, .. }) => {
            assert_eq!(error.code(), ErrorCode::InvalidScope)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pending_request_is_single_use() {
    let f = fixture();
    let p = pending(&f, None).await;
    authorize::grant(
        &f.server,
        &p.request_id,
        Some(BINDING),
        &p.csrf_token,
        Grant::default(),
    )
    .await
    .unwrap();
    for r in [
        authorize::grant(
            &f.server,
            &p.request_id,
            Some(BINDING),
            &p.csrf_token,
            Grant::default(),
        )
        .await,
        authorize::deny(&f.server, &p.request_id, Some(BINDING), &p.csrf_token).await,
    ] {
        match r {
            Err(AuthorizeError::Page(e)) => assert_eq!(e.code(), ErrorCode::InvalidRequest),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn pending_request_expires_after_pending_lifetime() {
    let f = fixture();
    let p = pending(&f, None).await;
    f.clock.advance(600);
    assert!(matches!(
        authorize::grant(
            &f.server,
            &p.request_id,
            Some(BINDING),
            &p.csrf_token,
            Grant::default()
        )
        .await,
        Err(AuthorizeError::Page(_))
    ));
    assert!(authorize::load(&f.server, &p.request_id, Some(BINDING))
        .await
        .is_err());
}

#[tokio::test]
async fn pending_request_is_bound_to_its_browser_and_csrf_token() {
    let f = fixture();
    let p = pending(&f, None).await;
    for (binding, csrf) in [
        (
            Some("another-browser-binding-value-000000"),
            p.csrf_token.as_str(),
        ),
        (None, p.csrf_token.as_str()),
        (Some(BINDING), "forged"),
        (Some(BINDING), ""),
    ] {
        match authorize::grant(&f.server, &p.request_id, binding, csrf, Grant::default()).await {
            Err(AuthorizeError::Page(e)) => assert_eq!(e.code(), ErrorCode::AccessDenied),
            other => panic!("{other:?}"),
        }
    }
    // Failed attempts do not consume it: the right browser can still decide.
    authorize::grant(
        &f.server,
        &p.request_id,
        Some(BINDING),
        &p.csrf_token,
        Grant::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn unknown_handle_is_a_clean_error() {
    let f = fixture();
    match authorize::deny(&f.server, "no-such-request", Some(BINDING), "x").await {
        Err(AuthorizeError::Page(e)) => assert_eq!(e.code(), ErrorCode::InvalidRequest),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn plain_http_redirect_uri_is_refused_at_grant_time_unless_allowed() {
    let mut cfg = config();
    let mut c = client("insecure", Some("s"), &["authorization_code"], &["a"]);
    c.redirect_uris = vec!["http://client.example/cb".into()];
    cfg.clients.push(c.clone());
    c.id = "insecure-ok".into();
    c.allow_insecure_redirect = true;
    cfg.clients.push(c);
    let f = fixture_with(cfg);
    let p = validate(&f, "response_type=code&client_id=insecure&scope=a")
        .await
        .unwrap();
    match authorize::grant(
        &f.server,
        &p.request_id,
        Some(BINDING),
        &p.csrf_token,
        Grant::default(),
    )
    .await
    {
        Err(AuthorizeError::Page(e)) => assert!(e.description().unwrap().contains("plain-HTTP")),
        other => panic!("{other:?}"),
    }
    let p = validate(&f, "response_type=code&client_id=insecure-ok&scope=a")
        .await
        .unwrap();
    authorize::grant(
        &f.server,
        &p.request_id,
        Some(BINDING),
        &p.csrf_token,
        Grant::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn earlier_checks_win_when_several_fail() {
    let f = fixture();
    // client_id before redirect_uri: both bad → the client problem is shown.
    let (_, d) = page_code(
        validate(
            &f,
            "client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=bogus",
        )
        .await,
    );
    assert_eq!(d, "unknown client_id");
    // redirect_uri before everything redirected: shown, never redirected.
    let (_, d) = page_code(validate(&f, "client_id=web&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=bogus&state=a&state=b").await);
    assert_eq!(d, "redirect_uri is not registered for this client");
    // duplicate state before response_type.
    let (_, p) = redirect_params(validate(&f, "client_id=web&state=a&state=b&scope=zzz").await);
    assert_eq!(
        get(&p, "error_description"),
        Some("duplicate parameter: state")
    );
    // response_type before transport, client permission, scope and PKCE.
    let r = authorize::validate(
        &f.server,
        b"client_id=svc&response_type=bogus&scope=zzz&state=s",
        Transport { secure: false },
        BINDING,
    )
    .await;
    let (_, p) = redirect_params(r);
    assert_eq!(get(&p, "error"), Some("unsupported_response_type"));
    // transport before client permission.
    let r = authorize::validate(
        &f.server,
        b"client_id=svc&response_type=code&scope=zzz&state=s",
        Transport { secure: false },
        BINDING,
    )
    .await;
    let (_, p) = redirect_params(r);
    assert_eq!(
        get(&p, "error_description"),
        Some("OAuth 2.0 requires requests over HTTPS")
    );
    // client permission before scope.
    let (_, p) =
        redirect_params(validate(&f, "client_id=svc&response_type=code&scope=zzz&state=s").await);
    assert_eq!(get(&p, "error"), Some("unauthorized_client"));
    // scope before PKCE.
    let (_, p) =
        redirect_params(validate(&f, "client_id=web&response_type=code&scope=zzz&state=s").await);
    assert_eq!(get(&p, "error"), Some("invalid_scope"));
}

// --- bounds on what an unauthenticated request can make the server hold -----------------

fn flood_fixture(max_total: usize, max_per_agent: usize) -> (Fixture, std::sync::Arc<MemoryStore>) {
    let mut cfg = config();
    cfg.max_pending_requests = max_total;
    cfg.max_pending_per_user_agent = max_per_agent;
    let store = std::sync::Arc::new(MemoryStore::new());
    let clock = std::sync::Arc::new(twisted_oauth2::clock::FixedClock::at(T0));
    let server = twisted_oauth2::AuthorizationServer::builder(cfg)
        .stores(Stores::from_backend(store.clone()))
        .clock(clock.clone())
        .build()
        .unwrap();
    (
        Fixture {
            server: std::sync::Arc::new(server),
            clock,
        },
        store,
    )
}

fn web_query() -> String {
    format!(
        "response_type=code&client_id=web&scope=a&state=s&{}",
        challenge()
    )
}

#[tokio::test]
async fn pending_requests_are_bounded_in_total_under_a_flood() {
    let (f, store) = flood_fixture(100, 32);
    let q = web_query();
    let (mut admitted, mut refused) = (0, 0);
    for i in 0..1_000 {
        let binding = format!("flooding-browser-{i:08}-0123456789abcdef");
        match authorize::validate(&f.server, q.as_bytes(), SECURE, &binding).await {
            Ok(_) => admitted += 1,
            Err(AuthorizeError::Page(e)) => {
                assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
                assert_eq!(e.status(), 503);
                refused += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((admitted, refused), (100, 900));
    assert_eq!(store.pending_count(), 100);
    assert_eq!(f.server.pending_count(), 100);
    // Expired requests free their places.
    f.clock.advance(f.server.config().pending_lifetime as i64);
    assert!(
        authorize::validate(&f.server, q.as_bytes(), SECURE, BINDING)
            .await
            .is_ok(),
        "room again once the flood expired"
    );
    assert_eq!(f.server.pending_count(), 1);
}

#[tokio::test]
async fn one_browser_keeps_only_its_newest_pending_requests() {
    let (f, store) = flood_fixture(1_000, 4);
    let q = web_query();
    let mut ids = vec![];
    for _ in 0..10 {
        ids.push(
            authorize::validate(&f.server, q.as_bytes(), SECURE, BINDING)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        store.pending_count(),
        4,
        "older requests were dropped from the store"
    );
    assert!(
        authorize::load(&f.server, &ids[0].request_id, Some(BINDING))
            .await
            .is_err()
    );
    assert!(
        authorize::load(&f.server, &ids[9].request_id, Some(BINDING))
            .await
            .is_ok()
    );
    // A decided request frees its place.
    let p = &ids[9];
    authorize::deny(&f.server, &p.request_id, Some(BINDING), &p.csrf_token)
        .await
        .unwrap();
    assert_eq!(f.server.pending_count(), 3);
}

#[tokio::test]
async fn long_state_is_refused_without_echoing_it() {
    let f = fixture();
    let state = "s".repeat(f.server.config().max_state_length + 1);
    let q = format!(
        "response_type=code&client_id=web&scope=a&state={state}&{}",
        challenge()
    );
    let (_, p) = redirect_params(validate(&f, &q).await);
    assert_eq!(get(&p, "error"), Some("invalid_request"));
    assert_eq!(get(&p, "state"), None);
    assert!(get(&p, "error_description")
        .unwrap()
        .contains("state is too long"));
    let ok = "s".repeat(f.server.config().max_state_length);
    let q = format!(
        "response_type=code&client_id=web&scope=a&state={ok}&{}",
        challenge()
    );
    assert!(validate(&f, &q).await.is_ok());
}

#[tokio::test]
async fn long_scope_is_invalid_scope() {
    let f = fixture();
    let scope = vec!["a"; 600].join("+");
    let q = format!(
        "response_type=code&client_id=web&scope={scope}&state=s&{}",
        challenge()
    );
    let (_, p) = redirect_params(validate(&f, &q).await);
    assert_eq!(get(&p, "error"), Some("invalid_scope"));
    assert!(get(&p, "error_description").unwrap().contains("too long"));
}

#[tokio::test]
async fn too_many_parameters_is_an_error_page() {
    let f = fixture();
    let extra: String = (0..70).map(|i| format!("&x{i}=1")).collect();
    let q = format!("{}{extra}", web_query());
    let (code, desc) = page_code(validate(&f, &q).await);
    assert_eq!(code, ErrorCode::InvalidRequest);
    assert!(desc.contains("too many parameters"), "{desc}");
}

#[tokio::test]
async fn only_scopes_from_a_known_set_enter_the_scope_cache() {
    // No scopes_supported and a client without registered scopes: any valid scope is
    // accepted, and none is cached.
    let mut cfg = config();
    let mut open = client("open", Some("open-secret"), &["client_credentials"], &[]);
    open.scopes = None;
    cfg.clients.push(open);
    let f = fixture_with(cfg);
    for i in 0..2_000 {
        let scope = format!("made-up-scope-{i}-{}", "x".repeat(500));
        f.token(
            &format!("grant_type=client_credentials&scope={scope}"),
            Some(("open", "open-secret")),
        )
        .await
        .unwrap();
    }
    assert_eq!(f.server.scope_cache_len(), 0);
    // Registered scopes are cached, once per distinct string.
    for _ in 0..10 {
        f.token(
            "grant_type=client_credentials&scope=a",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap();
    }
    assert_eq!(f.server.scope_cache_len(), 1);
}

#[tokio::test]
async fn localhost_redirects_match_any_port_only_behind_the_opt_in_rfc8252_7_3() {
    let mut cfg = config();
    let mut native = client("native", None, &["authorization_code"], &["a"]);
    native.redirect_uris = vec!["http://localhost/callback".into()];
    cfg.clients.push(native);
    let q = format!(
        "response_type=code&client_id=native&redirect_uri=http%3A%2F%2Flocalhost%3A53117%2Fcallback&scope=a&{}",
        challenge()
    );
    let f = fixture_with(cfg.clone());
    let (code, desc) = page_code(validate(&f, &q).await);
    assert_eq!(code, ErrorCode::InvalidRequest);
    assert!(desc.contains("not registered"), "{desc}");
    cfg.allow_localhost_any_port = true;
    let f = fixture_with(cfg);
    let p = validate(&f, &q).await.expect("any port behind the opt-in");
    assert_eq!(p.redirect_uri, "http://localhost:53117/callback");
    // The path must still match.
    let other = q.replace("callback", "elsewhere");
    assert!(matches!(
        validate(&f, &other).await,
        Err(AuthorizeError::Page(_))
    ));
}
