//! The claims of an RFC 9068 access token: made from a [`TokenRecord`] at issuance, read
//! back into one at validation.
//!
//! | claim | from the record |
//! |---|---|
//! | `iss` | the issuer identifier |
//! | `sub` | the resource owner; the client id for a token no user granted (client credentials) |
//! | `aud` | the token's resources (RFC 8707): one string, or an array of several |
//! | `exp`, `iat` | expiry and issue time |
//! | `jti` | a fresh random value of the server's token generator |
//! | `client_id` | the client |
//! | `scope` | the granted scope (absent when empty) |
//! | `gid` | (private) the grant, in 32 hex digits, on tokens a user granted: its revocation (a replayed code, a reused refresh token) reaches the token |
//!
//! A token without `gid` is a client's own (no user): read back, it has no subject, so a
//! client whose id looks like a user name never passes for that user (RFC 9068 §5).

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::format::Rejection;
use crate::scope::Scope;
use crate::storage::{GrantId, TokenRecord};
use crate::token::TokenDigest;

/// The private claim naming the grant.
pub(crate) const GRANT_CLAIM: &str = "gid";

/// The claims of the token standing for `record`, issued by `issuer` with `jti`.
pub(crate) fn claims_of(record: &TokenRecord, issuer: &str, jti: &str) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("iss".into(), issuer.into());
    let sub = record.subject.as_deref().unwrap_or(&record.client_id);
    c.insert("sub".into(), sub.into());
    let aud: Value = match record.audience.as_slice() {
        [] => issuer.into(),
        [one] => (**one).into(),
        many => many.iter().map(|a| Value::from(&**a)).collect(),
    };
    c.insert("aud".into(), aud);
    c.insert("exp".into(), record.expires_at.into());
    c.insert("iat".into(), record.issued_at.into());
    c.insert("jti".into(), jti.into());
    c.insert("client_id".into(), (*record.client_id).into());
    if !record.scope.is_empty() {
        c.insert("scope".into(), record.scope.to_string().into());
    }
    if record.subject.is_some() {
        c.insert(
            GRANT_CLAIM.into(),
            format!("{:032x}", record.grant_id.as_u128()).into(),
        );
    }
    c
}

/// The grant a token without `gid` is filed under: derived from its `jti`, so revoking
/// "its grant" (`revoke_grant_on_access_token_revocation`) touches nothing else.
fn own_grant(jti: &str) -> GrantId {
    let d = TokenDigest::of(jti);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_bytes()[..16]);
    GrantId::from_u128(u128::from_be_bytes(b))
}

/// The grant a token's claims name, if any; `Err` when `gid` is there but malformed.
pub(crate) fn grant_of(claims: &Map<String, Value>) -> Result<Option<GrantId>, Rejection> {
    match claims.get(GRANT_CLAIM) {
        None => Ok(None),
        Some(Value::String(h)) if h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u128::from_str_radix(h, 16)
                .map(|v| Some(GrantId::from_u128(v)))
                .map_err(|_| Rejection::Malformed)
        }
        Some(_) => Err(Rejection::Malformed),
    }
}

fn string<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(Rejection::Malformed),
    }
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<i64, Rejection> {
    claims
        .get(name)
        .and_then(Value::as_i64)
        .ok_or(Rejection::Malformed)
}

/// The record a verified token's claims stand for (signature, `iss`, `typ` and times
/// already checked), its `jti` and its grant claim. A claim of the wrong type or a missing
/// RFC 9068 §2.2 claim is [`Rejection::Malformed`].
pub(crate) fn record_of(
    claims: &Map<String, Value>,
) -> Result<(TokenRecord, String, Option<GrantId>), Rejection> {
    let client_id = string(claims, "client_id")?;
    let sub = string(claims, "sub")?;
    let jti = string(claims, "jti")?;
    let exp = number(claims, "exp")?;
    let iat = number(claims, "iat")?;
    let scope = match claims.get("scope") {
        None => Scope::empty(),
        Some(Value::String(s)) => Scope::parse(s).map_err(|_| Rejection::Malformed)?,
        Some(_) => return Err(Rejection::Malformed),
    };
    let audience: Vec<Arc<str>> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str().into()],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|a| a.as_str().map(Arc::from).ok_or(Rejection::Malformed))
            .collect::<Result<_, _>>()?,
        _ => return Err(Rejection::Malformed),
    };
    let grant = grant_of(claims)?;
    let mut record = TokenRecord::new(
        client_id,
        scope,
        grant.unwrap_or_else(|| own_grant(jti)),
        iat,
        exp,
    );
    record.audience = audience;
    // A user's token carries its grant; a client's own names the client as `sub`.
    record.subject = grant.map(|_| Arc::from(sub));
    Ok((record, jti.to_owned(), grant))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(subject: Option<&str>, audience: &[&str]) -> TokenRecord {
        let mut r = TokenRecord::new(
            "app",
            Scope::parse("read write").unwrap(),
            GrantId::from_u128(0xabc),
            1_000,
            4_600,
        );
        r.subject = subject.map(Arc::from);
        r.audience = audience.iter().map(|a| Arc::from(*a)).collect();
        r
    }

    #[test]
    fn rfc9068_section_2_2_claims_of_a_user_token() {
        let c = claims_of(
            &record(Some("alice"), &["https://api.example"]),
            "https://as.example",
            "j1",
        );
        assert_eq!(c["iss"], "https://as.example");
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["aud"], "https://api.example");
        assert_eq!(c["exp"], 4_600);
        assert_eq!(c["iat"], 1_000);
        assert_eq!(c["jti"], "j1");
        assert_eq!(c["client_id"], "app");
        assert_eq!(c["scope"], "read write");
        assert_eq!(c[GRANT_CLAIM], format!("{:032x}", 0xabc));
    }

    #[test]
    fn rfc9068_section_2_2_a_client_credentials_token_names_the_client_as_sub() {
        let c = claims_of(
            &record(None, &["https://a", "https://b"]),
            "https://as",
            "j",
        );
        assert_eq!(c["sub"], "app");
        assert_eq!(c["aud"], serde_json::json!(["https://a", "https://b"]));
        assert!(!c.contains_key(GRANT_CLAIM));
    }

    #[test]
    fn claims_read_back_into_the_same_record() {
        let r = record(Some("alice"), &["https://api.example"]);
        let (back, jti, grant) = record_of(&claims_of(&r, "https://as", "j1")).unwrap();
        assert_eq!(back, r);
        assert_eq!(jti, "j1");
        assert_eq!(grant, Some(r.grant_id));
    }

    #[test]
    fn a_client_token_reads_back_without_subject_even_when_its_id_looks_like_a_user() {
        let mut r = record(None, &["https://api"]);
        r.client_id = "alice".into();
        let (back, _, grant) = record_of(&claims_of(&r, "https://as", "j2")).unwrap();
        assert_eq!(back.subject, None);
        assert_eq!(grant, None);
        assert_ne!(back.grant_id, r.grant_id, "filed under a grant of its own");
    }

    #[test]
    fn missing_or_mistyped_claims_are_malformed() {
        let good = claims_of(&record(Some("alice"), &["https://a"]), "https://as", "j");
        for (name, bad) in [
            ("client_id", None),
            ("sub", Some(Value::from(1))),
            ("jti", None),
            ("exp", Some(Value::from("soon"))),
            ("iat", None),
            ("scope", Some(Value::from(3))),
            ("scope", Some(Value::from("bad\"scope"))),
            ("aud", Some(serde_json::json!([]))),
            ("aud", Some(serde_json::json!([1]))),
            ("aud", None),
            (GRANT_CLAIM, Some(Value::from("xyz"))),
            (GRANT_CLAIM, Some(Value::from(12))),
        ] {
            let mut c = good.clone();
            match bad {
                Some(v) => c.insert(name.into(), v),
                None => c.remove(name),
            };
            assert_eq!(record_of(&c).unwrap_err(), Rejection::Malformed, "{name}");
        }
    }
}
