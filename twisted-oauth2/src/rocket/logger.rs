//! [`RedactingLogger`]: a [`log::Log`] that prints like Rocket's own logger but masks
//! credentials first, and [`redact`], the masking itself.
//!
//! What Rocket 0.5.2 prints, by level (`log_level` in Rocket's config):
//!
//! - `critical`: errors and warnings, and the launch banner. Among the warnings: a failing
//!   form data guard prints its errors with `{:?}`, which includes each offending field's
//!   name and **value** (`Error { name: Some("password"), value: Some("..."), .. }`).
//! - `normal`: also every request line with its full URI **including the query**
//!   (`GET /consent?request_id=...:`, `GET /client?code=...&state=...:`), the matched route
//!   and the outcome.
//! - `debug`: also hyper's whole request and response with **all headers** (`Authorization`,
//!   `Cookie`, `Set-Cookie`, `Location` with `code=`), every url-encoded form field as
//!   `url-encoded field: ("password", "...")`, and the configuration trace.
//!
//! Rocket's `log::init` keeps a logger that is already installed, so installing this one
//! before Rocket ignites makes Rocket (and everything else using the `log` crate) print
//! through it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use percent_encoding::percent_decode_str;
use rocket::config::LogLevel;
use rocket::figment::Figment;

/// Set once a [`RedactingLogger`] became the global logger.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// What replaces a masked value.
const MASK: &str = "<redacted>";

/// Form and query fields whose values are masked (compared ASCII case-insensitively, after
/// percent-decoding the name).
const SECRET_FIELDS: &[&str] = &[
    "password",
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "access_token",
    "id_token",
    "token",
    "assertion",
    "client_assertion",
    "subject_token",
    "actor_token",
    "device_code",
    "csrf_token",
    "request_id",
];

/// Auth-params that may follow `Bearer ` in a `WWW-Authenticate` challenge (not tokens).
const BEARER_PARAMS: &[&str] = &[
    "realm",
    "scope",
    "error",
    "error_description",
    "error_uri",
    "resource_metadata",
];

/// A [`log::Log`] implementation that formats records like Rocket 0.5's logger and masks
/// secrets in every message with [`redact`]: the values of the `Authorization`,
/// `Proxy-Authorization`, `Cookie` and `Set-Cookie` headers (the auth scheme and cookie
/// names stay), tokens after `Bearer `, and the values of the query, fragment and form
/// fields `password`, `client_secret`, `code`, `code_verifier`, `refresh_token`,
/// `access_token`, `id_token`, `token`, `assertion`, `client_assertion`, `subject_token`,
/// `actor_token`, `device_code`, `csrf_token` and `request_id` (so a `Location` header
/// carrying `code=` is masked too; `state` is left alone).
///
/// Install it before Rocket ignites; Rocket then keeps it instead of its own:
///
/// ```no_run
/// # use rocket::launch;
/// #[launch]
/// fn rocket() -> _ {
///     let _ = twisted_oauth2::rocket::RedactingLogger::install();
///     rocket::build().attach(twisted_oauth2::rocket::OAuth2::fairing())
/// }
/// ```
///
/// Records go to standard output, each written whole; write errors are ignored (a logger
/// never panics). Colors are not applied by this logger (values Rocket paints itself keep
/// their colors when Rocket's `cli_colors` allows).
#[derive(Debug, Clone)]
pub struct RedactingLogger {
    level: log::LevelFilter,
}

impl RedactingLogger {
    /// A logger showing what Rocket's logger would at `level`.
    pub fn new(level: LogLevel) -> Self {
        RedactingLogger {
            level: level.into(),
        }
    }

    /// A logger at the `log_level` of this figment (for an app that builds Rocket with
    /// [`rocket::custom`]); Rocket's default level for the figment's profile if unset or
    /// invalid.
    pub fn from_figment(figment: &Figment) -> Self {
        let level = figment
            .extract_inner::<LogLevel>("log_level")
            .unwrap_or_else(|_| rocket::Config::default().log_level);
        RedactingLogger::new(level)
    }

    /// Installs a logger at the level of Rocket's default figment
    /// ([`rocket::Config::figment`]: `Rocket.toml`, `ROCKET_LOG_LEVEL`, the profile's
    /// default) as the global logger. Call it before [`rocket::build`] ignites.
    ///
    /// Fails if a logger is already installed (then that logger stays).
    pub fn install() -> Result<(), log::SetLoggerError> {
        RedactingLogger::from_figment(&rocket::Config::figment()).init()
    }

    /// Makes this logger the global logger and sets the `log` crate's maximum level
    /// (Rocket does not set it when its own logger is not the one installed).
    ///
    /// Fails if a logger is already installed (then that logger stays).
    pub fn init(self) -> Result<(), log::SetLoggerError> {
        let level = self.level;
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        INSTALLED.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether a [`RedactingLogger`] is the global logger of this process.
    pub fn is_installed() -> bool {
        INSTALLED.load(Ordering::Acquire)
    }
}

/// Rocket's `launch_info!`/`launch_meta!` records.
fn is_launch_record(metadata: &log::Metadata<'_>) -> bool {
    metadata.target().contains("rocket::launch")
}

impl log::Log for RedactingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        match self.level.to_level() {
            Some(max) => metadata.level() <= max || is_launch_record(metadata),
            None => false,
        }
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // As Rocket: hyper, rustls and r2d2 only at debug.
        let from = |path: &str| record.module_path().is_some_and(|m| m.starts_with(path));
        if self.level < log::LevelFilter::Trace && (from("hyper") || from("rustls") || from("r2d2"))
        {
            return;
        }
        let formatted;
        let message: &str = match record.args().as_str() {
            Some(s) => s,
            None => {
                formatted = record.args().to_string();
                &formatted
            }
        };
        let message = redact(message);
        let out = format_record(record, &message);
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    fn flush(&self) {
        let _ = std::io::stdout().lock().flush();
    }
}

/// Rocket's layout: `   >> ` for targets ending in `_`, `Error: `/`Warning: ` prefixes,
/// debug records under their source location.
fn format_record(record: &log::Record<'_>, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 24);
    let indented = record.target().ends_with('_');
    if indented {
        out.push_str("   >> ");
    }
    let level = if is_launch_record(record.metadata()) {
        log::Level::Info
    } else {
        record.level()
    };
    match level {
        log::Level::Error if !indented => {
            let _ = writeln!(out, "Error: {message}");
        }
        log::Level::Warn if !indented => {
            let _ = writeln!(out, "Warning: {message}");
        }
        log::Level::Debug => {
            out.push_str("\n--> ");
            if let Some(file) = record.file() {
                out.push_str(file);
            }
            if let Some(line) = record.line() {
                let _ = writeln!(out, ":{line}");
            }
            let _ = writeln!(out, "\t{message}");
        }
        _ => {
            let _ = writeln!(out, "{message}");
        }
    }
    out
}

/// Masks the secrets [`RedactingLogger`] masks in one formatted log message; a message with
/// nothing to mask comes back borrowed, unchanged.
///
/// ```
/// use twisted_oauth2::rocket::redact;
///
/// assert_eq!(
///     redact(r#""authorization": "Basic ZGVtbzpzZWNyZXQ=","#),
///     r#""authorization": "Basic <redacted>","#
/// );
/// assert_eq!(
///     redact("GET /client?code=abc&state=xyz:"),
///     "GET /client?code=<redacted>&state=xyz:"
/// );
/// assert_eq!(redact("Matched: GET /clock"), "Matched: GET /clock");
/// ```
pub fn redact(message: &str) -> Cow<'_, str> {
    let mut spans = Vec::new();
    header_values(message, &mut spans);
    bearer_tokens(message, &mut spans);
    field_pairs(message, &mut spans);
    debug_pairs(message, &mut spans);
    json_members(message, &mut spans);
    if spans.is_empty() {
        return Cow::Borrowed(message);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(message.len());
    let mut at = 0;
    for (start, end) in spans {
        if end <= at {
            continue;
        }
        let start = start.max(at);
        out.push_str(&message[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&message[at..]);
    Cow::Owned(out)
}

/// Whether a (possibly percent-encoded) field name is one of [`SECRET_FIELDS`].
fn is_secret_field(name: &str) -> bool {
    if name.is_empty() || name.len() > 64 {
        return false;
    }
    let decoded = percent_decode_str(name).decode_utf8_lossy();
    SECRET_FIELDS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(decoded.trim()))
}

/// Case-insensitive search for an ASCII `needle` in `hay` from `from`.
fn find_ascii_ci(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len())
        .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// The index of the closing `"` of a Debug/JSON string whose content starts at `from`
/// (skipping `\`-escapes), or the end.
fn closing_quote(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    b.len()
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `Authorization`/`Proxy-Authorization` (scheme kept) and `Cookie`/`Set-Cookie` (cookie
/// names and attributes kept) header values, as hyper's Debug (`"cookie": "a=b"`) or as
/// `Name: value` lines.
fn header_values(s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    for name in ["authorization", "cookie"] {
        let mut from = 0;
        while let Some(i) = find_ascii_ci(b, name.as_bytes(), from) {
            from = i + name.len();
            if i > 0 && is_word(b[i - 1]) {
                continue;
            }
            let mut j = from;
            if b.get(j) == Some(&b'"') {
                j += 1;
            }
            if b.get(j) != Some(&b':') {
                continue;
            }
            j += 1;
            while b.get(j) == Some(&b' ') {
                j += 1;
            }
            let (start, end) = if b.get(j) == Some(&b'"') {
                (j + 1, closing_quote(b, j + 1))
            } else {
                let end = b[j..]
                    .iter()
                    .position(|&c| matches!(c, b'\n' | b'\r' | 0x1b))
                    .map_or(b.len(), |p| j + p);
                (j, end)
            };
            if start >= end {
                continue;
            }
            let value = &s[start..end];
            if name == "authorization" {
                // Keep the scheme (`Basic`, `Bearer`): mask what follows it.
                match value.find(' ') {
                    Some(sp) => {
                        let rest = start + sp + 1;
                        let rest = rest + s[rest..end].len() - s[rest..end].trim_start().len();
                        if rest < end {
                            out.push((rest, end));
                        }
                    }
                    None => out.push((start, end)),
                }
            } else {
                let set_cookie = i >= 4 && b[i - 4..i].eq_ignore_ascii_case(b"set-");
                let mut seg_start = start;
                for (k, seg) in value.split(';').enumerate() {
                    if !set_cookie || k == 0 {
                        if let Some(eq) = seg.find('=') {
                            let v = seg_start + eq + 1;
                            let e = seg_start + seg.len();
                            if v < e {
                                out.push((v, e));
                            }
                        } else if !seg.trim().is_empty() {
                            out.push((seg_start, seg_start + seg.len()));
                        }
                    }
                    seg_start += seg.len() + 1;
                }
            }
            from = end;
        }
    }
}

/// `Bearer <token>` anywhere (`WWW-Authenticate` auth-params such as `realm=` are kept).
fn bearer_tokens(s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find("Bearer ").map(|p| from + p) {
        from = i + 7;
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut j = from;
        while b.get(j) == Some(&b' ') {
            j += 1;
        }
        let start = j;
        while j < b.len()
            && (b[j].is_ascii_alphanumeric()
                || matches!(b[j], b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
        {
            j += 1;
        }
        let word = &s[start..j];
        if word.is_empty() || word == "token" || word == "tokens" {
            continue;
        }
        if b.get(j) == Some(&b'=') && BEARER_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(word)) {
            continue;
        }
        while b.get(j) == Some(&b'=') {
            j += 1;
        }
        out.push((start, j));
        from = j;
    }
}

/// Bytes that end a field name looking left from its `=`.
fn ends_name(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'?' | b'&'
                | b'#'
                | b';'
                | b'"'
                | b'\''
                | b'<'
                | b'>'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b','
                | b'='
                | b'/'
                | b':'
                | b'\\'
                | 0x1b
        )
}

/// Bytes that end a field value.
fn ends_value(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'&' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\' | 0x1b)
}

/// `%3F`, `%26`, `%23` or `%20` at `i` (a delimiter inside a percent-encoded URL).
fn encoded_delimiter(b: &[u8], i: usize) -> bool {
    b.len() >= i + 3
        && b[i] == b'%'
        && matches!(
            (b[i + 1], b[i + 2].to_ascii_uppercase()),
            (b'3', b'F') | (b'2', b'6') | (b'2', b'3') | (b'2', b'0')
        )
}

/// `name=value` (queries, fragments, form bodies) and `name%3Dvalue` (one level of
/// percent-encoding, as in a `next=` URL) with a secret name.
fn field_pairs(s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let eq_len = if b[i] == b'=' {
            1
        } else if b[i] == b'%'
            && b.len() >= i + 3
            && b[i + 1] == b'3'
            && b[i + 2].eq_ignore_ascii_case(&b'd')
        {
            3
        } else {
            i += 1;
            continue;
        };
        let encoded = eq_len == 3;
        let mut name_start = i;
        while name_start > 0 && !ends_name(b[name_start - 1]) {
            name_start -= 1;
        }
        // Inside a percent-encoded URL the name starts after the last encoded delimiter.
        if let Some(k) = (name_start..i.saturating_sub(2))
            .rev()
            .find(|&k| encoded_delimiter(b, k))
        {
            name_start = k + 3;
        }
        let value_start = i + eq_len;
        let mut end = value_start;
        while end < b.len() && !ends_value(b[end]) && !(encoded && encoded_delimiter(b, end)) {
            end += 1;
        }
        // Rocket ends a request line with `:`.
        if end == b.len() && end > value_start + 1 && b[end - 1] == b':' {
            end -= 1;
        }
        if end > value_start && is_secret_field(&s[name_start..i]) {
            out.push((value_start, end));
        }
        i = value_start;
    }
}

/// Rocket's Debug output of form fields: `("name", "value")` (the url-encoded field trace)
/// and `name: Some("name"), value: Some("value")` (form errors).
fn debug_pairs(s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    for (open, between) in [("(\"", "\", \""), ("name: Some(\"", "\"), value: Some(\"")] {
        let mut from = 0;
        while let Some(i) = s[from..].find(open).map(|p| from + p) {
            let name_start = i + open.len();
            let name_end = closing_quote(b, name_start);
            from = name_start;
            if !s[name_end..].starts_with(between) {
                continue;
            }
            let value_start = name_end + between.len();
            let value_end = closing_quote(b, value_start);
            if value_end > value_start && is_secret_field(&s[name_start..name_end]) {
                out.push((value_start, value_end));
            }
            from = value_end.max(from);
        }
    }
}

/// JSON members `"name": "value"` with a secret name (a token response logged as text).
fn json_members(s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find("\":").map(|p| from + p) {
        from = i + 2;
        let Some(open) = s[..i].rfind('"') else {
            continue;
        };
        if !is_secret_field(&s[open + 1..i]) {
            continue;
        }
        let mut j = from;
        while b.get(j) == Some(&b' ') {
            j += 1;
        }
        if b.get(j) != Some(&b'"') {
            continue;
        }
        let end = closing_quote(b, j + 1);
        if end > j + 1 {
            out.push((j + 1, end));
        }
        from = end;
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn hyper_request_debug() {
        let m = "received request: Request {\n    method: POST,\n    uri: /oauth2/token,\n    headers: {\n        \"host\": \"127.0.0.1:8123\",\n        \"authorization\": \"Basic ZGVtby1zdmM6c2VjcmV0\",\n        \"proxy-authorization\": \"Bearer abc.def\",\n        \"cookie\": \"demo_session=s3cr3t; twisted_oauth2_ua=b1nd\",\n    },\n}";
        let r = redact(m);
        assert!(!r.contains("ZGVtby1zdmM6c2VjcmV0"), "{r}");
        assert!(
            !r.contains("abc.def") && !r.contains("s3cr3t") && !r.contains("b1nd"),
            "{r}"
        );
        assert!(r.contains("\"authorization\": \"Basic <redacted>\""), "{r}");
        assert!(
            r.contains("\"proxy-authorization\": \"Bearer <redacted>\""),
            "{r}"
        );
        assert!(
            r.contains("demo_session=<redacted>; twisted_oauth2_ua=<redacted>"),
            "{r}"
        );
        assert!(r.contains("\"host\": \"127.0.0.1:8123\""), "{r}");
    }

    #[test]
    fn hyper_response_debug() {
        let m = "sending response: Response {\n    status: 302,\n    headers: {\n        \"location\": \"http://127.0.0.1:9000/callback?code=C0DE&state=xyz&iss=http%3A%2F%2F127.0.0.1\",\n        \"set-cookie\": \"demo_session=s3cr3t; HttpOnly; SameSite=Lax; Path=/\",\n        \"www-authenticate\": \"Bearer realm=\\\"twisted\\\", error=\\\"invalid_token\\\"\",\n    },\n}";
        let r = redact(m);
        assert!(!r.contains("C0DE") && !r.contains("s3cr3t"), "{r}");
        assert!(r.contains("?code=<redacted>&state=xyz&iss="), "{r}");
        assert!(
            r.contains("demo_session=<redacted>; HttpOnly; SameSite=Lax; Path=/"),
            "{r}"
        );
        assert!(r.contains("Bearer realm=\\\"twisted\\\""), "{r}");
    }

    #[test]
    fn request_lines_and_fragments() {
        assert_eq!(
            redact("GET /consent?request_id=R1D:"),
            "GET /consent?request_id=<redacted>:"
        );
        assert_eq!(
            redact("GET \x1b[34m/client?state=s&code=C0DE\x1b[0m:"),
            "GET \x1b[34m/client?state=s&code=<redacted>\x1b[0m:"
        );
        assert_eq!(
            redact("http://c/cb#access_token=AT&token_type=Bearer&state=s"),
            "http://c/cb#access_token=<redacted>&token_type=Bearer&state=s"
        );
        assert_eq!(
            redact("GET /login?next=%2Fconsent%3Frequest_id%3DR1D%26x%3Dy:"),
            "GET /login?next=%2Fconsent%3Frequest_id%3D<redacted>%26x%3Dy:"
        );
        // Names are compared percent-decoded; other fields stay.
        assert_eq!(
            redact("a=1&c%6Fde=C0DE&authorization_code=x"),
            "a=1&c%6Fde=<redacted>&authorization_code=x"
        );
        assert_eq!(
            redact("grant_type=refresh_token&refresh_token=RT&client_secret=CS&code_verifier=V"),
            "grant_type=refresh_token&refresh_token=<redacted>&client_secret=<redacted>&code_verifier=<redacted>"
        );
    }

    #[test]
    fn form_traces_and_errors() {
        assert_eq!(
            redact("url-encoded field: (\"password\", \"wonder%20land\")"),
            "url-encoded field: (\"password\", \"<redacted>\")"
        );
        assert_eq!(
            redact("url-encoded field: (\"username\", \"alice\")"),
            "url-encoded field: (\"username\", \"alice\")"
        );
        let m = "Data guard `Form < LoginForm >` failed: Errors([Error { name: Some(\"password\"), value: Some(\"hunter2\"), kind: Validation(\"x\"), entity: Value }]).";
        let r = redact(m);
        assert!(
            !r.contains("hunter2") && r.contains("value: Some(\"<redacted>\")"),
            "{r}"
        );
        let r = redact(r#"{"access_token":"AT","token_type":"Bearer","refresh_token": "RT"}"#);
        assert_eq!(
            r,
            r#"{"access_token":"<redacted>","token_type":"Bearer","refresh_token": "<redacted>"}"#
        );
    }

    #[test]
    fn bearer_and_plain_headers() {
        assert_eq!(redact("got Bearer abc-123_x.y=="), "got Bearer <redacted>");
        assert_eq!(
            redact("Authorization: Bearer abc\nnext"),
            "Authorization: Bearer <redacted>\nnext"
        );
        assert_eq!(
            redact("Set-Cookie: s=v; Path=/"),
            "Set-Cookie: s=<redacted>; Path=/"
        );
        assert_eq!(
            redact("introspection by a bearer token of client `x`"),
            "introspection by a bearer token of client `x`"
        );
    }

    #[test]
    fn untouched_messages_are_borrowed() {
        for m in [
            "Matched: (login) POST /login",
            "X-Frame-Options: SAMEORIGIN",
            "limits: bytes = 8KiB, form = 32KiB",
            "GET /oauth2/authorize?response_type=code&client_id=demo-app&state=xyz:",
            "url-encoded field: (\"next\", \"/\")",
            "",
            "=",
            "code=",
        ] {
            assert!(matches!(redact(m), std::borrow::Cow::Borrowed(_)), "{m}");
        }
    }
}
