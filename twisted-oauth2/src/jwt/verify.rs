//! Verifying a JWT access token (RFC 9068, RFC 8725) against a [`KeySet`].

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::keyset::{KeySet, SUPPORTED_ALGORITHMS};
use crate::format::Rejection;

/// The longest token [`verify_access_token`] reads; a longer one is refused before any
/// parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a token must satisfy. Built with [`Expectations::new`] and the `with_` setters.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Expectations<'a> {
    /// The `iss` the token must carry, compared exactly (RFC 9068 §4).
    pub issuer: &'a str,
    /// The token's `aud` must name one of these; empty: the audience is not checked.
    pub audiences: &'a [&'a str],
    /// The algorithms accepted (a key bound to another one cannot verify a token).
    pub algorithms: &'a [Algorithm],
    /// Clock skew allowed on `exp` and `nbf`, seconds (negative counts as 0).
    pub leeway: i64,
    /// The current time, Unix seconds.
    pub now: i64,
    /// Whether the header's `typ` must be `at+jwt` or `application/at+jwt` (RFC 9068 §4).
    pub require_typ: bool,
}

impl<'a> Expectations<'a> {
    /// Tokens from `issuer` at time `now`: every [`SUPPORTED_ALGORITHMS`] entry, no
    /// audience check, no leeway, `typ` required.
    pub fn new(issuer: &'a str, now: i64) -> Self {
        Expectations {
            issuer,
            audiences: &[],
            algorithms: SUPPORTED_ALGORITHMS,
            leeway: 0,
            now,
            require_typ: true,
        }
    }

    /// Sets the audiences, one of which the token must name.
    pub fn with_audiences(mut self, audiences: &'a [&'a str]) -> Self {
        self.audiences = audiences;
        self
    }

    /// Sets the accepted algorithms.
    pub fn with_algorithms(mut self, algorithms: &'a [Algorithm]) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Sets the leeway, seconds.
    pub fn with_leeway(mut self, leeway: i64) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets whether `typ` must be `at+jwt`.
    pub fn with_require_typ(mut self, require_typ: bool) -> Self {
        self.require_typ = require_typ;
        self
    }
}

/// A token that passed [`verify_access_token`]: its key and its claims.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedJwt {
    /// The `kid` of the key that verified it (empty when the key has none).
    pub kid: String,
    /// Every claim of the payload.
    pub claims: Map<String, Value>,
    /// `iss`.
    pub iss: String,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`, as a list (a single string becomes one entry).
    pub aud: Vec<String>,
    /// `exp`, Unix seconds.
    pub exp: i64,
    /// `iat`, Unix seconds.
    pub iat: Option<i64>,
    /// `jti`.
    pub jti: Option<String>,
    /// `client_id` (RFC 9068 §2.2), else `azp` (OpenID Connect, as Keycloak, Auth0 and
    /// Entra ID v2 name the client).
    pub client_id: Option<String>,
    /// `scope` (RFC 9068 §2.2.3), else `scp` as a string or a list joined with spaces (as
    /// Entra ID and Okta name the scopes).
    pub scope: Option<String>,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtRejection {
    /// Not the shape of a JWS compact serialization: another format may know it. Decided
    /// without I/O or signature work.
    NotAJwt,
    /// Over [`MAX_TOKEN_LEN`], or a JWT whose header or payload cannot be decoded (this
    /// includes `alg: none` and unknown algorithms, which are not algorithms at all here),
    /// or a claim of the wrong JSON type.
    Malformed,
    /// The header carries a member that would let the token choose its own key or
    /// processing rules (`jwk`, `jku`, `x5u`, `x5c`, `crit`).
    ForbiddenHeader(&'static str),
    /// No key in the set has the token's `kid`.
    UnknownKey,
    /// The signature does not verify with the key.
    BadSignature,
    /// The header's `alg` is symmetric, not the algorithm the key is bound to, or not an
    /// accepted one.
    WrongAlgorithm,
    /// `typ` is not `at+jwt` (RFC 9068 §4).
    WrongType,
    /// `iss` is not the expected issuer.
    WrongIssuer,
    /// `aud` names none of the expected audiences.
    WrongAudience,
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// A required claim is absent.
    MissingClaim(&'static str),
}

impl JwtRejection {
    /// A short name, such as `unknown_key`.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtRejection::NotAJwt => "not_a_jwt",
            JwtRejection::Malformed => "malformed",
            JwtRejection::ForbiddenHeader(_) => "forbidden_header",
            JwtRejection::UnknownKey => "unknown_key",
            JwtRejection::BadSignature => "bad_signature",
            JwtRejection::WrongAlgorithm => "wrong_algorithm",
            JwtRejection::WrongType => "wrong_type",
            JwtRejection::WrongIssuer => "wrong_issuer",
            JwtRejection::WrongAudience => "wrong_audience",
            JwtRejection::Expired => "expired",
            JwtRejection::NotYetValid => "not_yet_valid",
            JwtRejection::MissingClaim(_) => "missing_claim",
        }
    }
}

impl std::fmt::Display for JwtRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtRejection::ForbiddenHeader(m) => write!(f, "forbidden_header ({m})"),
            JwtRejection::MissingClaim(c) => write!(f, "missing_claim ({c})"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl std::error::Error for JwtRejection {}

impl From<JwtRejection> for Rejection {
    fn from(r: JwtRejection) -> Rejection {
        match r {
            JwtRejection::NotAJwt => Rejection::Unknown,
            JwtRejection::Malformed
            | JwtRejection::ForbiddenHeader(_)
            | JwtRejection::MissingClaim(_) => Rejection::Malformed,
            JwtRejection::UnknownKey
            | JwtRejection::BadSignature
            | JwtRejection::WrongAlgorithm => Rejection::BadSignature,
            JwtRejection::WrongType => Rejection::WrongType,
            JwtRejection::WrongIssuer | JwtRejection::WrongAudience => Rejection::WrongAudience,
            JwtRejection::Expired | JwtRejection::NotYetValid => Rejection::Expired,
        }
    }
}

/// Whether `token` has the shape of a JWS compact serialization: three base64url segments,
/// the first two non-empty. Linear in the length, no allocation.
fn looks_like_jws(token: &str) -> bool {
    let mut segments = 0;
    for (i, segment) in token.split('.').enumerate() {
        if i > 2 || (i < 2 && segment.is_empty()) {
            return false;
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        segments += 1;
    }
    segments == 3
}

fn is_at_jwt(typ: &str) -> bool {
    // RFC 7515 §4.1.9: media type names compare case-insensitively, the
    // `application/` prefix may be left out.
    let typ = typ.to_ascii_lowercase();
    typ == "at+jwt" || typ == "application/at+jwt"
}

/// Verifies a JWT access token: its form, its header, its signature with a key of `keys`,
/// then its claims against `expect`.
///
/// The algorithm is the key's (see [`KeySet`]), never the header's: a header `alg` that
/// differs, is symmetric (`HS*`) or is `none` is refused, as is a header carrying `jwk`,
/// `jku`, `x5u`, `x5c` or `crit` (RFC 8725 §3.1, §3.10). A token over [`MAX_TOKEN_LEN`] is
/// refused before parsing; a value that is not JWT-shaped is [`JwtRejection::NotAJwt`]
/// without any decoding. `iss` and `exp` are required, `aud` when `expect.audiences` is
/// not empty; `nbf` is checked when present.
pub fn verify_access_token(
    token: &str,
    keys: &KeySet,
    expect: &Expectations<'_>,
) -> Result<VerifiedJwt, JwtRejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtRejection::Malformed);
    }
    if !looks_like_jws(token) {
        return Err(JwtRejection::NotAJwt);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtRejection::Malformed)?;
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(JwtRejection::WrongAlgorithm);
    }
    let forbidden = [
        ("jwk", header.jwk.is_some()),
        ("jku", header.jku.is_some()),
        ("x5u", header.x5u.is_some()),
        ("x5c", header.x5c.is_some()),
        ("crit", header.crit.is_some()),
    ];
    if let Some((member, _)) = forbidden.iter().find(|(_, present)| *present) {
        return Err(JwtRejection::ForbiddenHeader(member));
    }
    if expect.require_typ && !header.typ.as_deref().is_some_and(is_at_jwt) {
        return Err(JwtRejection::WrongType);
    }
    let key = match keys.find(header.kid.as_deref(), header.alg) {
        Ok(key) => key,
        Err(false) => return Err(JwtRejection::UnknownKey),
        Err(true) => return Err(JwtRejection::WrongAlgorithm),
    };
    if !expect.algorithms.contains(&key.alg) {
        return Err(JwtRejection::WrongAlgorithm);
    }

    // Signature only: the claims are checked below, each with its own reason.
    let mut validation = Validation::new(key.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| {
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtRejection::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => JwtRejection::WrongAlgorithm,
                _ => JwtRejection::Malformed,
            }
        })?;
    check_claims(key.kid.clone(), data.claims, expect)
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, JwtRejection> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtRejection::Malformed),
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number of seconds, possibly fractional.
fn date_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JwtRejection> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.floor() as i64))
            .map(Some)
            .ok_or(JwtRejection::Malformed),
        Some(_) => Err(JwtRejection::Malformed),
    }
}

fn check_claims(
    kid: String,
    claims: Map<String, Value>,
    expect: &Expectations<'_>,
) -> Result<VerifiedJwt, JwtRejection> {
    let leeway = expect.leeway.max(0);
    let iss = string_claim(&claims, "iss")?.ok_or(JwtRejection::MissingClaim("iss"))?;
    if iss != expect.issuer {
        return Err(JwtRejection::WrongIssuer);
    }
    let exp = date_claim(&claims, "exp")?.ok_or(JwtRejection::MissingClaim("exp"))?;
    // RFC 7519 §4.1.4: the current time must be before `exp`.
    if expect.now >= exp.saturating_add(leeway) {
        return Err(JwtRejection::Expired);
    }
    if let Some(nbf) = date_claim(&claims, "nbf")? {
        if expect.now.saturating_add(leeway) < nbf {
            return Err(JwtRejection::NotYetValid);
        }
    }
    let aud = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(JwtRejection::Malformed))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(JwtRejection::Malformed),
    };
    if !expect.audiences.is_empty() {
        if aud.is_empty() {
            return Err(JwtRejection::MissingClaim("aud"));
        }
        if !aud.iter().any(|a| expect.audiences.contains(&a.as_str())) {
            return Err(JwtRejection::WrongAudience);
        }
    }
    let scope = match string_claim(&claims, "scope")? {
        Some(scope) => Some(scope),
        None => match claims.get("scp") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().ok_or(JwtRejection::Malformed))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(" "),
            ),
            Some(_) => return Err(JwtRejection::Malformed),
        },
    };
    let client_id = match string_claim(&claims, "client_id")? {
        Some(id) => Some(id),
        None => string_claim(&claims, "azp")?,
    };
    Ok(VerifiedJwt {
        kid,
        sub: string_claim(&claims, "sub")?,
        iat: date_claim(&claims, "iat")?,
        jti: string_claim(&claims, "jti")?,
        client_id,
        scope,
        iss,
        aud,
        exp,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ED_A: &[u8] = include_bytes!("testdata/ed25519-a.pem");
    const ED_B: &[u8] = include_bytes!("testdata/ed25519-b.pem");
    const P256: &[u8] = include_bytes!("testdata/p256.pem");
    const RSA: &[u8] = include_bytes!("testdata/rsa2048.pem");
    const RSA_PUB: &[u8] = include_bytes!("testdata/rsa2048.pub.pem");

    const ISS: &str = "https://issuer.example";
    const NOW: i64 = 1_800_000_000;

    fn ed(pem: &[u8]) -> EncodingKey {
        EncodingKey::from_ed_pem(pem).unwrap()
    }

    fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk
    }

    /// The set: `ed-a` (EdDSA), `p256` (ES256), `rsa` (RS256).
    fn keys() -> KeySet {
        KeySet::from_jwk_set(JwkSet {
            keys: vec![
                public_jwk(&ed(ED_A), Algorithm::EdDSA, "ed-a"),
                public_jwk(
                    &EncodingKey::from_ec_pem(P256).unwrap(),
                    Algorithm::ES256,
                    "p256",
                ),
                public_jwk(
                    &EncodingKey::from_rsa_pem(RSA).unwrap(),
                    Algorithm::RS256,
                    "rsa",
                ),
            ],
        })
        .unwrap()
    }

    fn claims() -> Value {
        json!({
            "iss": ISS, "sub": "alice", "aud": ["https://api.example"], "exp": NOW + 300,
            "iat": NOW, "jti": "j-1", "client_id": "cli", "scope": "read write",
        })
    }

    fn header(alg: Algorithm, kid: &str) -> Header {
        let mut h = Header::new(alg);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.into());
        h
    }

    fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
        jsonwebtoken::encode(header, claims, key).unwrap()
    }

    fn ed_token(claims: &Value) -> String {
        sign(&header(Algorithm::EdDSA, "ed-a"), claims, &ed(ED_A))
    }

    fn expect() -> Expectations<'static> {
        Expectations::new(ISS, NOW).with_audiences(&["https://api.example"])
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    /// A token with a hand-made header over a real EdDSA signature of that input.
    fn with_raw_header(h: Value) -> String {
        let input = format!("{}.{}", b64(&h), b64(&claims()));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &ed(ED_A), Algorithm::EdDSA).unwrap();
        format!("{input}.{sig}")
    }

    #[test]
    fn accepts_each_supported_key_type() {
        let ks = keys();
        let got = verify_access_token(&ed_token(&claims()), &ks, &expect()).unwrap();
        assert_eq!(got.kid, "ed-a");
        assert_eq!(got.sub.as_deref(), Some("alice"));
        assert_eq!(got.client_id.as_deref(), Some("cli"));
        assert_eq!(got.scope.as_deref(), Some("read write"));
        assert_eq!(got.jti.as_deref(), Some("j-1"));
        assert_eq!((got.exp, got.iat), (NOW + 300, Some(NOW)));
        let es = sign(
            &header(Algorithm::ES256, "p256"),
            &claims(),
            &EncodingKey::from_ec_pem(P256).unwrap(),
        );
        assert_eq!(
            verify_access_token(&es, &ks, &expect()).unwrap().kid,
            "p256"
        );
        let rs = sign(
            &header(Algorithm::RS256, "rsa"),
            &claims(),
            &EncodingKey::from_rsa_pem(RSA).unwrap(),
        );
        assert_eq!(verify_access_token(&rs, &ks, &expect()).unwrap().kid, "rsa");
    }

    #[test]
    fn rfc8725_alg_none_is_refused() {
        let h = json!({"alg": "none", "typ": "at+jwt", "kid": "ed-a"});
        let token = format!("{}.{}.", b64(&h), b64(&claims()));
        assert_eq!(
            verify_access_token(&token, &keys(), &expect()),
            Err(JwtRejection::Malformed)
        );
        let h = json!({"alg": "None", "typ": "at+jwt", "kid": "ed-a"});
        let token = format!("{}.{}.", b64(&h), b64(&claims()));
        assert!(verify_access_token(&token, &keys(), &expect()).is_err());
    }

    #[test]
    fn rfc8725_hs256_keyed_with_the_public_key_is_refused() {
        // The classic confusion: an HMAC "signed" with the RSA public key as the secret.
        let forged = sign(
            &header(Algorithm::HS256, "rsa"),
            &claims(),
            &EncodingKey::from_secret(RSA_PUB).unwrap(),
        );
        assert_eq!(
            verify_access_token(&forged, &keys(), &expect()),
            Err(JwtRejection::WrongAlgorithm)
        );
        // Even when the caller lists HS256 among the accepted algorithms.
        let lax = expect().with_algorithms(&[Algorithm::HS256, Algorithm::RS256]);
        assert_eq!(
            verify_access_token(&forged, &keys(), &lax),
            Err(JwtRejection::WrongAlgorithm)
        );
    }

    #[test]
    fn rfc8725_header_jwk_jku_x5u_x5c_crit_are_refused() {
        let jwk = serde_json::to_value(public_jwk(&ed(ED_A), Algorithm::EdDSA, "ed-a")).unwrap();
        for (member, value) in [
            ("jwk", jwk),
            ("jku", json!("https://attacker.example/jwks")),
            ("x5u", json!("https://attacker.example/cert")),
            ("x5c", json!(["MIIB"])),
            ("crit", json!(["exp"])),
        ] {
            let mut h = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-a"});
            h[member] = value;
            assert_eq!(
                verify_access_token(&with_raw_header(h), &keys(), &expect()),
                Err(JwtRejection::ForbiddenHeader(member)),
                "{member}"
            );
        }
        // The same construction without the member verifies: the test can fail.
        let plain = with_raw_header(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-a"}));
        assert!(verify_access_token(&plain, &keys(), &expect()).is_ok());
    }

    #[test]
    fn the_algorithm_comes_from_the_key_not_the_header() {
        // Signed with P-256 but naming the Ed25519 key: the key's alg wins.
        let token = sign(
            &header(Algorithm::ES256, "ed-a"),
            &claims(),
            &EncodingKey::from_ec_pem(P256).unwrap(),
        );
        assert_eq!(
            verify_access_token(&token, &keys(), &expect()),
            Err(JwtRejection::WrongAlgorithm)
        );
        // PS256 with the RS256-bound RSA key.
        let token = sign(
            &header(Algorithm::PS256, "rsa"),
            &claims(),
            &EncodingKey::from_rsa_pem(RSA).unwrap(),
        );
        assert_eq!(
            verify_access_token(&token, &keys(), &expect()),
            Err(JwtRejection::WrongAlgorithm)
        );
        // A key whose alg the caller does not accept.
        let only_es = expect().with_algorithms(&[Algorithm::ES256]);
        assert_eq!(
            verify_access_token(&ed_token(&claims()), &keys(), &only_es),
            Err(JwtRejection::WrongAlgorithm)
        );
    }

    #[test]
    fn unknown_kid_is_unknown_key_and_a_foreign_signature_is_bad_signature() {
        let other = sign(&header(Algorithm::EdDSA, "ed-b"), &claims(), &ed(ED_B));
        assert_eq!(
            verify_access_token(&other, &keys(), &expect()),
            Err(JwtRejection::UnknownKey)
        );
        let forged = sign(&header(Algorithm::EdDSA, "ed-a"), &claims(), &ed(ED_B));
        assert_eq!(
            verify_access_token(&forged, &keys(), &expect()),
            Err(JwtRejection::BadSignature)
        );
        // A payload changed after signing.
        let token = ed_token(&claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut c = claims();
        c["scope"] = json!("admin");
        let tampered_payload = b64(&c);
        parts[1] = &tampered_payload;
        assert_eq!(
            verify_access_token(&parts.join("."), &keys(), &expect()),
            Err(JwtRejection::BadSignature)
        );
    }

    #[test]
    fn rfc9068_section_4_typ_must_be_at_jwt() {
        let mut h = header(Algorithm::EdDSA, "ed-a");
        for typ in [Some("JWT"), None, Some("at+jwt2")] {
            h.typ = typ.map(str::to_owned);
            let token = sign(&h, &claims(), &ed(ED_A));
            assert_eq!(
                verify_access_token(&token, &keys(), &expect()),
                Err(JwtRejection::WrongType)
            );
            assert!(
                verify_access_token(&token, &keys(), &expect().with_require_typ(false)).is_ok()
            );
        }
        for typ in ["application/at+jwt", "AT+JWT"] {
            h.typ = Some(typ.into());
            let token = sign(&h, &claims(), &ed(ED_A));
            assert!(
                verify_access_token(&token, &keys(), &expect()).is_ok(),
                "{typ}"
            );
        }
    }

    #[test]
    fn iss_must_match_exactly() {
        for iss in ["https://issuer.example/", "https://evil.example"] {
            let mut c = claims();
            c["iss"] = json!(iss);
            assert_eq!(
                verify_access_token(&ed_token(&c), &keys(), &expect()),
                Err(JwtRejection::WrongIssuer)
            );
        }
        let mut c = claims();
        c.as_object_mut().unwrap().remove("iss");
        assert_eq!(
            verify_access_token(&ed_token(&c), &keys(), &expect()),
            Err(JwtRejection::MissingClaim("iss"))
        );
    }

    #[test]
    fn aud_must_name_an_expected_audience() {
        let mut c = claims();
        c["aud"] = json!("https://other.example");
        assert_eq!(
            verify_access_token(&ed_token(&c), &keys(), &expect()),
            Err(JwtRejection::WrongAudience)
        );
        c["aud"] = json!(["https://other.example", "https://api.example"]);
        assert!(verify_access_token(&ed_token(&c), &keys(), &expect()).is_ok());
        c["aud"] = json!("https://api.example");
        assert_eq!(
            verify_access_token(&ed_token(&c), &keys(), &expect())
                .unwrap()
                .aud,
            vec!["https://api.example".to_owned()]
        );
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            verify_access_token(&ed_token(&c), &keys(), &expect()),
            Err(JwtRejection::MissingClaim("aud"))
        );
        // Empty audiences: not checked.
        assert!(verify_access_token(&ed_token(&c), &keys(), &Expectations::new(ISS, NOW)).is_ok());
        c["aud"] = json!([1]);
        assert_eq!(
            verify_access_token(&ed_token(&c), &keys(), &expect()),
            Err(JwtRejection::Malformed)
        );
    }

    #[test]
    fn exp_and_nbf_with_leeway() {
        let mut c = claims();
        c["exp"] = json!(NOW);
        let token = ed_token(&c);
        assert_eq!(
            verify_access_token(&token, &keys(), &expect()),
            Err(JwtRejection::Expired)
        );
        assert!(verify_access_token(&token, &keys(), &expect().with_leeway(1)).is_ok());
        assert_eq!(
            verify_access_token(&token, &keys(), &expect().with_leeway(-5)),
            Err(JwtRejection::Expired)
        );
        c["exp"] = json!(NOW as f64 + 0.5);
        assert!(verify_access_token(&ed_token(&c), &keys(), &expect()).is_err());
        c["exp"] = json!(NOW + 300);
        c["nbf"] = json!(NOW + 30);
        let token = ed_token(&c);
        assert_eq!(
            verify_access_token(&token, &keys(), &expect()),
            Err(JwtRejection::NotYetValid)
        );
        assert_eq!(
            verify_access_token(&token, &keys(), &expect().with_leeway(29)),
            Err(JwtRejection::NotYetValid)
        );
        assert!(verify_access_token(&token, &keys(), &expect().with_leeway(30)).is_ok());
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            verify_access_token(&ed_token(&c), &keys(), &expect()),
            Err(JwtRejection::MissingClaim("exp"))
        );
        c["exp"] = json!("tomorrow");
        assert_eq!(
            verify_access_token(&ed_token(&c), &keys(), &expect()),
            Err(JwtRejection::Malformed)
        );
    }

    #[test]
    fn a_token_over_8_kib_is_refused_before_parsing() {
        let mut c = claims();
        c["pad"] = json!("x".repeat(MAX_TOKEN_LEN));
        let token = ed_token(&c);
        assert!(token.len() > MAX_TOKEN_LEN);
        assert_eq!(
            verify_access_token(&token, &keys(), &expect()),
            Err(JwtRejection::Malformed)
        );
        // Over the limit without even the shape of a JWT: refused by length first.
        let junk = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            verify_access_token(&junk, &keys(), &expect()),
            Err(JwtRejection::Malformed)
        );
    }

    #[test]
    fn not_a_jwt_is_decided_by_shape_alone() {
        // With an empty key set a JWT-shaped value gets as far as the key lookup; these
        // values stop before decoding anything.
        let empty = KeySet::empty();
        for value in [
            "",
            "opaque-token-value_43chars-aaaaaaaaaaaaaaaa",
            "a.b",
            "a.b.c.d",
            ".b.c",
            "a..c",
            "a.b+c.d",
            "a.b.c=",
            "a b.c.d",
        ] {
            assert_eq!(
                verify_access_token(value, &empty, &expect()),
                Err(JwtRejection::NotAJwt),
                "{value:?}"
            );
        }
        // Three segments of garbage: JWT-shaped, so a JWT answer (not NotAJwt).
        assert_eq!(
            verify_access_token("a.b.c", &empty, &expect()),
            Err(JwtRejection::Malformed)
        );
        assert_eq!(
            verify_access_token(&ed_token(&claims()), &empty, &expect()),
            Err(JwtRejection::UnknownKey)
        );
    }

    #[test]
    fn scope_from_scp_and_client_id_from_azp() {
        let mut c = claims();
        let o = c.as_object_mut().unwrap();
        o.remove("scope");
        o.remove("client_id");
        o.insert("scp".into(), json!(["a", "b"]));
        o.insert("azp".into(), json!("spa"));
        let got = verify_access_token(&ed_token(&c), &keys(), &expect()).unwrap();
        assert_eq!(got.scope.as_deref(), Some("a b"));
        assert_eq!(got.client_id.as_deref(), Some("spa"));
    }

    #[test]
    fn rejections_map_onto_format_rejections() {
        assert_eq!(Rejection::from(JwtRejection::NotAJwt), Rejection::Unknown);
        assert_eq!(
            Rejection::from(JwtRejection::UnknownKey),
            Rejection::BadSignature
        );
        assert_eq!(
            Rejection::from(JwtRejection::NotYetValid),
            Rejection::Expired
        );
        assert_eq!(
            Rejection::from(JwtRejection::WrongIssuer),
            Rejection::WrongAudience
        );
        assert_eq!(
            Rejection::from(JwtRejection::WrongType),
            Rejection::WrongType
        );
        assert_eq!(
            Rejection::from(JwtRejection::MissingClaim("exp")),
            Rejection::Malformed
        );
    }
}
