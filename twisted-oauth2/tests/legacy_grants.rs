//! The legacy grants, each behind its cargo feature: password (RFC 6749 §4.3) and implicit
//! (RFC 6749 §4.2). Run with `--features password-grant,implicit-grant`.

#![cfg(any(feature = "password-grant", feature = "implicit-grant"))]

mod common;

#[allow(unused_imports)]
use common::*;

#[cfg(feature = "password-grant")]
mod password {
    use std::sync::Arc;

    use super::common::*;
    use twisted_oauth2::error::StorageError;
    use twisted_oauth2::storage::PasswordVerifier;
    use twisted_oauth2::{AuthorizationServer, ErrorCode};

    struct Users;

    #[async_trait::async_trait]
    impl PasswordVerifier for Users {
        async fn verify(
            &self,
            username: &str,
            password: &str,
        ) -> Result<Option<String>, StorageError> {
            Ok((username == "alice" && password == "wonderland").then(|| "user-alice".to_owned()))
        }
    }

    fn fixture_pw() -> Fixture {
        let mut cfg = config();
        cfg.grant_types.push("password".into());
        cfg.clients.push(client(
            "legacy",
            Some("legacy-secret"),
            &["password", "refresh_token"],
            &["a"],
        ));
        let server = AuthorizationServer::builder(cfg)
            .password_verifier(Arc::new(Users))
            .build()
            .unwrap();
        Fixture {
            server: Arc::new(server),
            clock: Arc::new(twisted_oauth2::clock::FixedClock::at(T0)),
        }
    }

    #[tokio::test]
    async fn password_grant_issues_tokens_for_valid_credentials_rfc6749_4_3() {
        let f = fixture_pw();
        let t = f
            .token(
                "grant_type=password&username=alice&password=wonderland&scope=a",
                Some(("legacy", "legacy-secret")),
            )
            .await
            .unwrap();
        assert!(t.refresh_token.is_some());
        let info = twisted_oauth2::endpoint::resource::lookup(&f.server, &t.access_token, "a")
            .await
            .unwrap();
        assert_eq!(info.subject.as_deref(), Some("user-alice"));
    }

    #[tokio::test]
    async fn password_grant_refuses_bad_credentials_and_missing_parameters() {
        let f = fixture_pw();
        let e = f
            .token(
                "grant_type=password&username=alice&password=nope&scope=a",
                Some(("legacy", "legacy-secret")),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidGrant);
        let e = f
            .token(
                "grant_type=password&username=alice&scope=a",
                Some(("legacy", "legacy-secret")),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        let e = f
            .token(
                "grant_type=password&username=alice&password=wonderland&scope=a",
                Some(("svc", "svc-secret")),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnauthorizedClient);
    }

    #[tokio::test]
    async fn password_grant_needs_a_verifier() {
        let mut cfg = config();
        cfg.grant_types.push("password".into());
        assert!(AuthorizationServer::builder(cfg).build().is_err());
    }
}

#[cfg(feature = "implicit-grant")]
mod implicit {
    use super::common::*;
    use twisted_oauth2::endpoint::authorize::{self, AuthorizeError, Grant};

    fn fixture_implicit() -> Fixture {
        let mut cfg = config();
        cfg.grant_types.push("implicit".into());
        cfg.clients.push(client("spa", None, &["implicit"], &["a"]));
        fixture_with(cfg)
    }

    fn fragment(loc: &str) -> Vec<(String, String)> {
        let url = url::Url::parse(loc).unwrap();
        assert!(url.query().is_none(), "no query parameters: {loc}");
        url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    fn get<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
        p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn implicit_grant_puts_the_token_in_the_fragment_rfc6749_4_2_2() {
        let f = fixture_implicit();
        let p = authorize::validate(
            &f.server,
            b"response_type=token&client_id=spa&scope=a&state=s1",
            SECURE,
            BINDING,
        )
        .await
        .unwrap();
        let r = authorize::grant(
            &f.server,
            &p.request_id,
            Some(BINDING),
            &p.csrf_token,
            Grant::default(),
        )
        .await
        .unwrap();
        let frag = fragment(r.location());
        assert_eq!(get(&frag, "token_type"), Some("Bearer"));
        assert_eq!(get(&frag, "state"), Some("s1"));
        assert_eq!(get(&frag, "iss"), Some("https://as.example"));
        assert!(get(&frag, "refresh_token").is_none());
        assert!(f.access_ok(get(&frag, "access_token").unwrap()).await);
    }

    #[tokio::test]
    async fn implicit_errors_go_to_the_fragment_rfc6749_4_2_2_1() {
        let f = fixture_implicit();
        match authorize::validate(
            &f.server,
            b"response_type=token&client_id=spa&scope=zzz&state=s1",
            SECURE,
            BINDING,
        )
        .await
        {
            Err(AuthorizeError::Redirect { redirect, .. }) => {
                let frag = fragment(redirect.location());
                assert_eq!(get(&frag, "error"), Some("invalid_scope"));
                assert_eq!(get(&frag, "state"), Some("s1"));
            }
            other => panic!("{other:?}"),
        }
        let p = authorize::validate(
            &f.server,
            b"response_type=token&client_id=spa&scope=a&state=s2",
            SECURE,
            BINDING,
        )
        .await
        .unwrap();
        let r = authorize::deny(&f.server, &p.request_id, Some(BINDING), &p.csrf_token)
            .await
            .unwrap();
        assert_eq!(get(&fragment(r.location()), "error"), Some("access_denied"));
    }

    #[tokio::test]
    async fn implicit_needs_config_as_well_as_the_feature() {
        let f = fixture();
        match authorize::validate(
            &f.server,
            b"response_type=token&client_id=web&scope=a&state=s",
            SECURE,
            BINDING,
        )
        .await
        {
            Err(AuthorizeError::Redirect { error, .. }) => assert_eq!(
                error.code(),
                twisted_oauth2::ErrorCode::UnsupportedResponseType
            ),
            other => panic!("{other:?}"),
        }
    }
}
