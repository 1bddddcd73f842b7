//! Proof Key for Code Exchange (RFC 7636): challenge and verifier syntax and verification.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::OAuthError;

/// A `code_challenge_method` (RFC 7636 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChallengeMethod {
    /// `S256`: `BASE64URL(SHA256(verifier))`.
    #[serde(rename = "S256")]
    S256,
    /// `plain`: the verifier itself (only when the server enables it).
    #[serde(rename = "plain")]
    Plain,
}

impl ChallengeMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeMethod::S256 => "S256",
            ChallengeMethod::Plain => "plain",
        }
    }

    /// Parses a wire name (case-sensitive, as RFC 7636 registers them).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "S256" => Some(ChallengeMethod::S256),
            "plain" => Some(ChallengeMethod::Plain),
            _ => None,
        }
    }
}

/// A code challenge bound to an authorization code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeChallenge {
    /// The `code_challenge` value.
    pub challenge: String,
    /// The `code_challenge_method`.
    pub method: ChallengeMethod,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether `s` is 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`
/// (the syntax of both `code_verifier` and `code_challenge`, RFC 7636 §4.1, §4.2).
pub fn is_valid_syntax(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(is_unreserved)
}

impl CodeChallenge {
    /// Validates a challenge from an authorization request. An `S256` challenge is exactly
    /// 43 base64url characters.
    pub fn new(challenge: &str, method: ChallengeMethod) -> Result<Self, OAuthError> {
        let ok = match method {
            ChallengeMethod::S256 => {
                challenge.len() == 43
                    && URL_SAFE_NO_PAD
                        .decode(challenge)
                        .is_ok_and(|d| d.len() == 32)
            }
            ChallengeMethod::Plain => is_valid_syntax(challenge),
        };
        if !ok {
            return Err(OAuthError::invalid_request("code_challenge is malformed"));
        }
        Ok(CodeChallenge {
            challenge: challenge.to_owned(),
            method,
        })
    }

    /// Checks `verifier` against the challenge, in constant time (RFC 7636 §4.6).
    pub fn verify(&self, verifier: &str) -> bool {
        if !is_valid_syntax(verifier) {
            return false;
        }
        match self.method {
            ChallengeMethod::S256 => {
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                computed.as_bytes().ct_eq(self.challenge.as_bytes()).into()
            }
            ChallengeMethod::Plain => verifier.as_bytes().ct_eq(self.challenge.as_bytes()).into(),
        }
    }
}

/// `BASE64URL(SHA256(verifier))`: the S256 challenge for a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        let c = CodeChallenge::new(CHALLENGE, ChallengeMethod::S256).unwrap();
        assert!(c.verify(VERIFIER));
        assert!(!c.verify(&VERIFIER.replace('d', "e")));
    }

    #[test]
    fn verifier_syntax_rfc7636_4_1() {
        assert!(!is_valid_syntax("short"));
        assert!(!is_valid_syntax(&"a".repeat(129)));
        assert!(is_valid_syntax(&"a".repeat(43)));
        assert!(!is_valid_syntax(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn malformed_challenge_is_invalid_request() {
        assert!(CodeChallenge::new("abc", ChallengeMethod::S256).is_err());
        assert!(CodeChallenge::new(&"a".repeat(44), ChallengeMethod::S256).is_err());
        assert!(CodeChallenge::new(&"a".repeat(43), ChallengeMethod::Plain).is_ok());
    }

    #[test]
    fn plain_compares_verbatim() {
        let v = "a".repeat(50);
        let c = CodeChallenge::new(&v, ChallengeMethod::Plain).unwrap();
        assert!(c.verify(&v));
        assert!(!c.verify(&"b".repeat(50)));
    }
}
