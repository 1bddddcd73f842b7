//! The protections of a decision a signed-in user makes on a page (the code flow's
//! consent, device verification, a flow of an application's own): it is made only from the
//! browser it was shown in, its form carries a CSRF token, and it is decided once.
//!
//! Every flow uses the same three checks, in the same order and with the same refusals:
//!
//! 1. **Binding**: a decision kept server-side names the browser that may decide it, as the
//!    [`TokenDigest`] of a per-browser value (the Rocket adapter's private binding cookie,
//!    [`BrowserBinding`](crate::rocket::BrowserBinding)). A request from another browser is
//!    refused ([`DecisionRefused::OtherBrowser`]).
//! 2. **CSRF**: the posted form's `csrf_token` must equal the one the page was rendered with,
//!    compared in constant time ([`csrf_matches`]). The token lives where the flow's state
//!    lives: in the stored record when there is one per pending decision (the code flow's
//!    pending request, [`DecisionGuard`]), so several tabs of one browser can each decide
//!    their own request; in a private cookie when the page has no record of its own (device
//!    verification, whose record is the device code,
//!    [`UserDecision`](crate::rocket::UserDecision)).
//! 3. **Single use**: the record is taken by the store's atomic removal, so of two
//!    concurrent posts exactly one gets it ([`take_once`]); the other is told the decision is
//!    unknown or already made.
//!
//! This module is Rocket-free; the Rocket adapter carries the values in cookies and forms.

use std::future::Future;

use crate::error::StorageError;
use crate::error::{ErrorCode, OAuthError};
use crate::token::TokenDigest;

/// Whether `presented` (the posted form's `csrf_token`) equals `expected`, in constant time
/// for equal lengths. An empty token never matches.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Why a decision was refused before anything was decided. Every variant means the user
/// must start again from the application; none reveals anything about the stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecisionRefused {
    /// Unknown, expired or already decided.
    Unknown,
    /// Started in another browser (the binding does not match).
    OtherBrowser,
    /// The form's CSRF token is missing or wrong.
    BadCsrfToken,
}

impl DecisionRefused {
    /// The OAuth error a page shows: `invalid_request` for [`DecisionRefused::Unknown`],
    /// `access_denied` for the others.
    pub fn to_error(self) -> OAuthError {
        match self {
            DecisionRefused::Unknown => OAuthError::invalid_request(UNKNOWN_DECISION),
            DecisionRefused::OtherBrowser => OAuthError::with_description(
                ErrorCode::AccessDenied,
                "this request was started in another browser",
            ),
            DecisionRefused::BadCsrfToken => OAuthError::with_description(
                ErrorCode::AccessDenied,
                "the form's CSRF token is missing or wrong",
            ),
        }
    }
}

impl From<DecisionRefused> for OAuthError {
    fn from(r: DecisionRefused) -> Self {
        r.to_error()
    }
}

const UNKNOWN_DECISION: &str = "this request is unknown, expired or already decided";

/// The protections of one decision kept server-side, borrowed from its record: the digest
/// of the binding value of the browser that may decide it, the CSRF token its form was
/// rendered with, and its expiry (Unix seconds).
#[derive(Clone, Copy)]
pub struct DecisionGuard<'a> {
    binding: &'a TokenDigest,
    csrf_token: &'a str,
    expires_at: i64,
}

impl std::fmt::Debug for DecisionGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionGuard")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl<'a> DecisionGuard<'a> {
    /// The guard of a record holding these values.
    pub fn new(binding: &'a TokenDigest, csrf_token: &'a str, expires_at: i64) -> Self {
        DecisionGuard {
            binding,
            csrf_token,
            expires_at,
        }
    }

    /// The checks before the decision page is shown: not expired at `now`, and
    /// `presented_binding` (this browser's binding value) is the record's.
    pub fn check_browser(
        &self,
        now: i64,
        presented_binding: Option<&str>,
    ) -> Result<(), DecisionRefused> {
        if self.expires_at <= now {
            return Err(DecisionRefused::Unknown);
        }
        let bound = presented_binding.is_some_and(|b| {
            use subtle::ConstantTimeEq;
            TokenDigest::of(b).0.ct_eq(&self.binding.0).into()
        });
        if bound {
            Ok(())
        } else {
            Err(DecisionRefused::OtherBrowser)
        }
    }

    /// The checks before a posted decision is taken: [`Self::check_browser`], then the
    /// form's `csrf_token` ([`csrf_matches`]).
    pub fn check_decision(
        &self,
        now: i64,
        presented_binding: Option<&str>,
        presented_csrf: &str,
    ) -> Result<(), DecisionRefused> {
        self.check_browser(now, presented_binding)?;
        if csrf_matches(self.csrf_token, presented_csrf) {
            Ok(())
        } else {
            Err(DecisionRefused::BadCsrfToken)
        }
    }
}

/// Decides a record kept server-side exactly once: `peek` reads it without consuming it,
/// `guard` names its protections, which are checked against the browser's
/// `presented_binding` and the form's `presented_csrf` at `now`; only then does `take`
/// remove it with the store's atomic single-use removal. Of concurrent callers, only the
/// one whose `take` returns the record wins; the others get [`DecisionRefused::Unknown`].
/// A refusal before `take` leaves the record in place (a forged post cannot spend another
/// browser's decision).
///
/// `Err(Ok(refusal))` is a refused decision, `Err(Err(e))` a store failure.
pub async fn take_once<R, P, T>(
    peek: P,
    guard: impl for<'r> FnOnce(&'r R) -> DecisionGuard<'r>,
    now: i64,
    presented_binding: Option<&str>,
    presented_csrf: &str,
    take: impl FnOnce() -> T,
) -> Result<R, Result<DecisionRefused, StorageError>>
where
    P: Future<Output = Result<Option<R>, StorageError>>,
    T: Future<Output = Result<Option<R>, StorageError>>,
{
    let record = peek
        .await
        .map_err(Err)?
        .ok_or(Ok(DecisionRefused::Unknown))?;
    guard(&record)
        .check_decision(now, presented_binding, presented_csrf)
        .map_err(Ok)?;
    take()
        .await
        .map_err(Err)?
        .ok_or(Ok(DecisionRefused::Unknown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    struct Rec {
        binding: TokenDigest,
        csrf: String,
        expires_at: i64,
    }

    fn guard(r: &Rec) -> DecisionGuard<'_> {
        DecisionGuard::new(&r.binding, &r.csrf, r.expires_at)
    }

    fn rec() -> Rec {
        Rec {
            binding: TokenDigest::of("browser-one-binding-value-0123456789"),
            csrf: "csrf-token-of-the-form".into(),
            expires_at: 100,
        }
    }

    #[test]
    fn csrf_tokens_match_only_when_equal_and_never_when_empty() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", "ab"));
        assert!(!csrf_matches("", ""));
    }

    #[test]
    fn a_decision_from_another_browser_or_after_expiry_is_refused() {
        let r = rec();
        let g = guard(&r);
        let mine = Some("browser-one-binding-value-0123456789");
        assert_eq!(g.check_browser(99, mine), Ok(()));
        assert_eq!(
            g.check_browser(99, Some("browser-two-binding-value-0123456789")),
            Err(DecisionRefused::OtherBrowser)
        );
        assert_eq!(
            g.check_browser(99, None),
            Err(DecisionRefused::OtherBrowser)
        );
        assert_eq!(g.check_browser(100, mine), Err(DecisionRefused::Unknown));
        assert_eq!(g.check_decision(99, mine, "csrf-token-of-the-form"), Ok(()));
        assert_eq!(
            g.check_decision(99, mine, "forged"),
            Err(DecisionRefused::BadCsrfToken)
        );
        assert_eq!(
            g.check_decision(99, mine, ""),
            Err(DecisionRefused::BadCsrfToken)
        );
    }

    #[test]
    fn refusals_map_to_the_page_errors() {
        assert_eq!(
            DecisionRefused::Unknown.to_error().code(),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            DecisionRefused::OtherBrowser.to_error().code(),
            ErrorCode::AccessDenied
        );
        assert_eq!(
            OAuthError::from(DecisionRefused::BadCsrfToken).code(),
            ErrorCode::AccessDenied
        );
    }

    type Store = Arc<Mutex<HashMap<&'static str, Rec>>>;

    async fn decide(
        store: &Store,
        csrf: &str,
    ) -> Result<Rec, Result<DecisionRefused, StorageError>> {
        let peek = {
            let s = store.clone();
            async move {
                Ok(s.lock().unwrap().get("k").map(|r| Rec {
                    binding: r.binding,
                    csrf: r.csrf.clone(),
                    expires_at: r.expires_at,
                }))
            }
        };
        let s = store.clone();
        take_once(
            peek,
            guard,
            10,
            Some("browser-one-binding-value-0123456789"),
            csrf,
            move || async move { Ok(s.lock().unwrap().remove("k")) },
        )
        .await
    }

    #[test]
    fn a_decision_is_taken_once_and_a_forged_post_leaves_it_in_place() {
        let store: Store = Arc::new(Mutex::new(HashMap::from([("k", rec())])));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(matches!(
                decide(&store, "forged").await,
                Err(Ok(DecisionRefused::BadCsrfToken))
            ));
            assert!(store.lock().unwrap().contains_key("k"));
            assert!(decide(&store, "csrf-token-of-the-form").await.is_ok());
            assert!(matches!(
                decide(&store, "csrf-token-of-the-form").await,
                Err(Ok(DecisionRefused::Unknown))
            ));
        });
    }
}
