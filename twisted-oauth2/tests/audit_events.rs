//! Audit events: a full life of grants through the protocol core records each event with
//! client, subject and grant, and no event carries a token, code or secret.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use twisted_oauth2::audit::{AuditEvent, AuditSink};
use twisted_oauth2::endpoint::authorize;
use twisted_oauth2::endpoint::revoke::{self, RevokeRequest};
use twisted_oauth2::AuthorizationServer;

#[derive(Default)]
struct Recorder(Mutex<Vec<AuditEvent>>);

impl AuditSink for Recorder {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

fn fixture_with_audit() -> (Fixture, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let clock = Arc::new(twisted_oauth2::clock::FixedClock::at(T0));
    let server = AuthorizationServer::builder(config())
        .clock(clock.clone())
        .audit(rec.clone())
        .build()
        .unwrap();
    (
        Fixture {
            server: Arc::new(server),
            clock,
        },
        rec,
    )
}

fn kinds(rec: &Recorder) -> Vec<&'static str> {
    rec.0.lock().unwrap().iter().map(AuditEvent::kind).collect()
}

#[tokio::test]
async fn each_security_event_is_recorded_once_with_its_client_and_grant() {
    let (f, rec) = fixture_with_audit();
    // Client credentials.
    let cc = f
        .token(
            "grant_type=client_credentials&scope=a",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap();
    // Failed client authentication.
    assert!(f
        .token("grant_type=client_credentials", Some(("svc", "wrong")))
        .await
        .is_err());
    // Code flow: consent, redemption, refresh, reuse.
    let code = f.code("web", "a", true).await;
    let t = f.redeem_web(&code).await.unwrap();
    let rt = t.refresh_token.clone().unwrap();
    let t2 = f
        .token(
            &format!("grant_type=refresh_token&client_id=web&refresh_token={rt}"),
            None,
        )
        .await
        .unwrap();
    assert!(f
        .token(
            &format!("grant_type=refresh_token&client_id=web&refresh_token={rt}"),
            None
        )
        .await
        .is_err());
    // Code replay.
    let code = f.code("web", "a", true).await;
    f.redeem_web(&code).await.unwrap();
    assert!(f.redeem_web(&code).await.is_err());
    // Consent denied.
    let q = format!(
        "response_type=code&client_id=web&scope=a&code_challenge={}&code_challenge_method=S256",
        twisted_oauth2::pkce::s256_challenge(VERIFIER)
    );
    let p = authorize::validate(&f.server, q.as_bytes(), SECURE, BINDING)
        .await
        .unwrap();
    authorize::deny(&f.server, &p.request_id, Some(BINDING), &p.csrf_token)
        .await
        .unwrap();
    // Revocation of the client-credentials token.
    let body = format!("token={}", cc.access_token);
    let auth = basic("svc", "svc-secret");
    revoke::handle(
        &f.server,
        RevokeRequest {
            body: body.as_bytes(),
            content_type: Some(FORM),
            authorization: Some(&auth),
            query: None,
            transport: SECURE,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    assert_eq!(
        kinds(&rec),
        [
            "token_issued",
            "client_authentication_failed",
            "consent_granted",
            "token_issued",
            "token_refreshed",
            "refresh_reuse_detected",
            "consent_granted",
            "token_issued",
            "code_replayed",
            "consent_denied",
            "revoked",
        ]
    );
    let events = rec.0.lock().unwrap().clone();
    match &events[0] {
        AuditEvent::TokenIssued {
            client_id,
            grant_type,
            refresh_token,
            ..
        } => {
            assert_eq!(&**client_id, "svc");
            assert_eq!(grant_type, "client_credentials");
            assert!(!refresh_token);
        }
        other => panic!("{other:?}"),
    }
    match &events[3] {
        AuditEvent::TokenIssued {
            client_id,
            subject,
            grant_type,
            refresh_token,
            ..
        } => {
            assert_eq!(&**client_id, "web");
            assert_eq!(subject.as_deref(), Some("alice"));
            assert_eq!(grant_type, "authorization_code");
            assert!(refresh_token);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &events[1],
        AuditEvent::ClientAuthenticationFailed { client_id: Some(id), method: "client_secret_basic" } if id == "svc"
    ));
    // The same grant runs from consent through refresh to its reuse.
    let grant_of = |e: &AuditEvent| match e {
        AuditEvent::ConsentGranted { grant, .. }
        | AuditEvent::TokenIssued { grant, .. }
        | AuditEvent::TokenRefreshed { grant, .. }
        | AuditEvent::RefreshReuseDetected { grant, .. }
        | AuditEvent::CodeReplayed { grant, .. }
        | AuditEvent::Revoked { grant, .. } => Some(*grant),
        _ => None,
    };
    let g = grant_of(&events[2]);
    assert!(g.is_some());
    assert!(events[2..6].iter().all(|e| grant_of(e) == g));
    // Never a secret, token or code in an event.
    let shown = format!("{events:?}");
    for secret in [
        cc.access_token.as_str(),
        t.access_token.as_str(),
        rt.as_str(),
        t2.access_token.as_str(),
        code.as_str(),
        "svc-secret",
        "wrong",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
