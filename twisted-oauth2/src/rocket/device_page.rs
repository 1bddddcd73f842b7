//! The built-in device verification page (RFC 8628 §3.3, §5.4), like the built-in consent:
//! mounted at the path of `[oauth2.device] verification_uri` by
//! [`OAuth2::device_verification`](super::OAuth2::device_verification).
//!
//! - `GET <path>`: a signed-in user ([`SignedIn`]) gets a form to enter the user code;
//!   anyone else is redirected to the login URL with `next=<path>` (and the code).
//! - `GET <path>?user_code=…` (what `verification_uri_complete` opens): the code is
//!   looked up (case- and dash-insensitively) and the user is asked to confirm: the client,
//!   the scope and the code are shown with **Allow** and **Deny** buttons. Opening the link
//!   never approves anything by itself (§5.4).
//! - `POST <path>`: the decision (`user_code`, `csrf_token`, `decision` = `allow` or
//!   `deny`), checked by the [`UserDecision`] of this browser and taken once by the store.
//!
//! Every page carries `Content-Security-Policy: frame-ancestors 'none'`,
//! `X-Frame-Options: DENY` and `Cache-Control: no-store`.

use std::sync::Arc;

use rocket::data::Data;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::request::Request;
use rocket::response::Response;
use rocket::route::{Handler, Outcome, Route};

use super::builtin_consent::{escape_html, SignedIn, STYLESHEET};
use super::decision::UserDecision;
use super::toolkit;
use crate::device;
use crate::server::AuthorizationServer;

/// The decision protection of this page.
const DECISION: UserDecision = UserDecision::new("device");

/// The built-in verification page: who is signed in, and where to sign in.
#[derive(Clone)]
pub(crate) struct DevicePage {
    signed_in: Arc<dyn SignedIn>,
    login_url: Arc<str>,
    path: Arc<str>,
}

impl DevicePage {
    pub(crate) fn new(signed_in: Arc<dyn SignedIn>, login_url: String) -> Self {
        DevicePage {
            signed_in,
            login_url: login_url.into(),
            path: "/device".into(),
        }
    }

    /// The routes at the verification URI's path; `Err` when it is not a local path.
    pub(crate) fn routes(mut self, server: &AuthorizationServer) -> Result<Vec<Route>, String> {
        let uri = crate::endpoint::device_authorization::verification_uri(server);
        let same_origin =
            |u: &url::Url| url::Url::parse(server.issuer()).is_ok_and(|i| i.origin() == u.origin());
        let path = url::Url::parse(&uri)
            .ok()
            .filter(|u| same_origin(u) && u.query().is_none() && u.fragment().is_none())
            .map(|u| u.path().to_owned())
            .filter(|p| p.starts_with('/') && !p.contains(['<', '>']))
            .ok_or_else(|| {
                format!(
                    "the device verification page needs `device.verification_uri` under the \
                     issuer (a path such as `/device`), not `{}`",
                    crate::error::printable(&uri)
                )
            })?;
        self.path = path.clone().into();
        Ok(vec![
            Route::new(Method::Get, &path, self.clone()),
            Route::new(Method::Post, &path, self),
        ])
    }

    fn to_login(&self, user_code: Option<&str>) -> Response<'static> {
        let next = match user_code {
            Some(c) => format!(
                "{}?user_code={}",
                self.path,
                url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
            ),
            None => self.path.to_string(),
        };
        let sep = if self.login_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!(
            "{}{sep}next={}",
            self.login_url,
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        let mut res = Response::build()
            .status(Status::SeeOther)
            .header(Header::new("Location", location))
            .finalize();
        super::response::page_headers(&mut res);
        res
    }

    fn entry(&self, message: Option<&str>) -> String {
        let note = message
            .map(|m| format!("<p class=\"warn\">{}</p>", escape_html(m)))
            .unwrap_or_default();
        format!(
            "<h1>Connect a device</h1>{note}\
             <p>Enter the code shown on your device.</p>\
             <form method=\"get\" action=\"{path}\">\
             <input name=\"user_code\" autocomplete=\"off\" autocapitalize=\"characters\" \
             spellcheck=\"false\" maxlength=\"40\" required autofocus>\
             <button type=\"submit\">Continue</button></form>",
            path = escape_html(&self.path)
        )
    }
}

/// A page answer with the library's page headers.
fn page(status: Status, body: String) -> Response<'static> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Connect a device</title><style>{STYLESHEET}</style></head>\
         <body><main class=\"card\">{body}</main></body></html>"
    );
    let mut res = Response::build()
        .status(status)
        .header(ContentType::HTML)
        .sized_body(html.len(), std::io::Cursor::new(html))
        .finalize();
    super::response::page_headers(&mut res);
    res
}

/// The value of `name` in a form-urlencoded string.
fn field(raw: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(raw)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[rocket::async_trait]
impl Handler for DevicePage {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let Some(server) = toolkit::server(req) else {
            return Outcome::Error(Status::InternalServerError);
        };
        let server = &**server;
        let raw = if req.method() == Method::Post {
            match toolkit::read_body(data, server.config().max_body_size).await {
                Ok(b) => b,
                Err(_) => {
                    return Outcome::Success(page(
                        Status::PayloadTooLarge,
                        self.entry(Some("The form was too large.")),
                    ))
                }
            }
        } else {
            match toolkit::capped_query(req, server) {
                Ok(q) => q.unwrap_or("").as_bytes().to_vec(),
                Err(_) => {
                    return Outcome::Success(page(
                        Status::UriTooLong,
                        self.entry(Some("The address was too long.")),
                    ))
                }
            }
        };
        let typed = field(&raw, "user_code").filter(|c| !c.trim().is_empty());
        let Some(user) = self.signed_in.user(req).await else {
            return Outcome::Success(self.to_login(typed.as_deref()));
        };
        let Some(typed) = typed else {
            return Outcome::Success(page(Status::Ok, self.entry(None)));
        };
        // Guessing codes: unknown codes count per signed-in user and per address.
        let keys = [
            format!("user:{user}"),
            format!(
                "ip:{}",
                crate::rate_limit::limit_key(toolkit::client_ip(req, Some(server)))
            ),
        ];
        let rule = server.config().limits.user_code();
        for key in &keys {
            if let Ok(Some(wait)) = server.counters().refused(&rule, key).await {
                server
                    .context()
                    .audit(crate::audit::AuditEvent::RateLimited {
                        limit: rule.name,
                        key: key.clone(),
                        retry_after: wait,
                    });
                let mut res = page(
                    Status::TooManyRequests,
                    self.entry(Some(
                        "Too many codes were tried. Wait a few minutes and try again.",
                    )),
                );
                res.set_header(Header::new("Retry-After", wait.to_string()));
                return Outcome::Success(res);
            }
        }
        let found = match device::pending(server, &typed).await {
            Ok(f) => f,
            Err(e) => {
                log::warn!("twisted-oauth2: device verification lookup failed: {e}");
                return Outcome::Success(page(
                    Status::ServiceUnavailable,
                    self.entry(Some("Please try again later.")),
                ));
            }
        };
        let Some((code, record)) = found else {
            for key in keys {
                match server.counters().hit(&rule, &key).await {
                    Ok(Some(wait)) => {
                        server
                            .context()
                            .audit(crate::audit::AuditEvent::RateLimited {
                                limit: rule.name,
                                key,
                                retry_after: wait,
                            })
                    }
                    Ok(None) => {}
                    Err(e) => log::warn!("twisted-oauth2: cannot count a user-code attempt: {e}"),
                }
            }
            return Outcome::Success(page(
                Status::BadRequest,
                self.entry(Some(
                    "That code is not valid or has expired. Check the code on your device.",
                )),
            ));
        };
        if req.method() == Method::Get {
            let csrf = match DECISION.issue(req, server) {
                Ok(t) => t,
                Err(_) => {
                    return Outcome::Success(page(
                        Status::ServiceUnavailable,
                        self.entry(Some("Please try again later.")),
                    ))
                }
            };
            let client = match server.client(&record.client_id).await {
                Ok(Some(c)) => c.name().to_owned(),
                _ => record.client_id.to_string(),
            };
            let body = format!(
                "<h1>Connect a device</h1>\
                 <p><strong>{client}</strong> asks to access your account with the scope \
                 <code>{scope}</code>.</p>\
                 <p>Only allow this if your device shows the code <strong>{shown}</strong>.</p>\
                 <form method=\"post\" action=\"{path}\">\
                 <input type=\"hidden\" name=\"user_code\" value=\"{code}\">\
                 <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
                 <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
                 <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
                client = escape_html(&client),
                scope = escape_html(&record.scope.to_string()),
                shown = escape_html(&device::display_user_code(&code)),
                path = escape_html(&self.path),
                code = escape_html(&code),
                csrf = escape_html(&csrf),
            );
            return Outcome::Success(page(Status::Ok, body));
        }
        let csrf = field(&raw, "csrf_token").unwrap_or_default();
        if DECISION.verify(req, server, &csrf).is_err() {
            return Outcome::Success(page(
                Status::Forbidden,
                self.entry(Some("This form has expired. Enter the code again.")),
            ));
        }
        let allow = field(&raw, "decision").as_deref() == Some("allow");
        let decided = if allow {
            device::approve(server, &code, &user, record.scope.clone()).await
        } else {
            device::deny(server, &code).await
        };
        match decided {
            Ok(true) if allow => Outcome::Success(page(
                Status::Ok,
                "<h1>Device connected</h1><p>You can return to your device.</p>".into(),
            )),
            Ok(true) => Outcome::Success(page(
                Status::Ok,
                "<h1>Request denied</h1><p>The device was not connected.</p>".into(),
            )),
            Ok(false) => Outcome::Success(page(
                Status::BadRequest,
                self.entry(Some("That code was already used or has expired.")),
            )),
            Err(e) => {
                log::warn!("twisted-oauth2: device decision failed: {e}");
                Outcome::Success(page(
                    Status::ServiceUnavailable,
                    self.entry(Some("Please try again later.")),
                ))
            }
        }
    }
}
