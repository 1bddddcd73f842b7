//! # twisted-oauth2
//!
//! An OAuth 2.1 authorization server and bearer-token resource protection for Rocket 0.5,
//! modelled on the Python library txoauth2 (TwistedOAuth2).
//!
//! - **Authorization server**: the authorization endpoint, with the consent page left to the
//!   application through a hook; the token endpoint (authorization code with PKCE, refresh
//!   tokens with rotation and reuse detection, client credentials, extension grants);
//!   revocation (RFC 7009), introspection (RFC 7662) and the discovery documents (RFC 8414,
//!   RFC 9728).
//! - **Resource protection**: `#[oauth(scope = "...")]` on a Rocket route, or the request
//!   guards behind it, answering as RFC 6750 specifies.
//!
//! The [`guide`] holds the user guide (also in the repository's `docs/` folder).
//!
//! ## Quick start
//!
//! `Rocket.toml`: the server's settings and its clients (see [`guide::configuration`]):
//!
//! ```toml
//! [default.oauth2]
//! issuer = "http://127.0.0.1:8000"
//! allow_insecure_request_debug = true   # development only: accept plain HTTP
//!
//! [[default.oauth2.clients]]
//! id = "my-cli"                         # no secret: a public client, PKCE required
//! redirect_uris = ["http://127.0.0.1:9000/callback"]
//! grant_types = ["authorization_code", "refresh_token"]
//! scopes = ["VIEW_CLOCK"]
//! ```
//!
//! `main.rs`: the [`OAuth2`](crate::rocket::OAuth2) fairing, a consent hook
//! ([`OnAuthenticate`](crate::rocket::OnAuthenticate)), the decision route
//! ([`PendingRequests`](crate::rocket::PendingRequests)) and a protected route
//! ([`oauth`]):
//!
//! ```no_run
//! use rocket::form::Form;
//! use rocket::request::Request;
//! use rocket::response::content::RawHtml;
//! use rocket::{get, launch, post, routes};
//! use twisted_oauth2::endpoint::authorize::PendingAuthorization;
//! use twisted_oauth2::rocket::{
//!     AuthorizeReply, Consent, DecisionForm, OAuth2, OnAuthenticate, PendingRequests,
//! };
//! use twisted_oauth2::{oauth, OAuthError};
//!
//! struct AskTheUser;
//!
//! #[rocket::async_trait]
//! impl OnAuthenticate for AskTheUser {
//!     async fn on_authenticate(
//!         &self,
//!         _req: &Request<'_>,
//!         p: PendingAuthorization,
//!     ) -> Result<Consent, OAuthError> {
//!         // A real app checks its login session first (see the consent chapter).
//!         Ok(Consent::new(RawHtml(format!(
//!             r#"<form method="post" action="/consent">
//!                  <input type="hidden" name="request_id" value="{}">
//!                  <input type="hidden" name="csrf_token" value="{}">
//!                  <button name="decision" value="allow">Allow</button>
//!                  <button name="decision" value="deny">Deny</button>
//!                </form>"#,
//!             p.request_id, p.csrf_token
//!         ))))
//!     }
//! }
//!
//! #[post("/consent", data = "<form>")]
//! async fn decide(form: Form<DecisionForm>, pending: PendingRequests<'_>) -> AuthorizeReply {
//!     pending.decide(&form, "alice").await // the logged-in user becomes the token's `sub`
//! }
//!
//! #[oauth(scope = "VIEW_CLOCK")]
//! #[get("/clock")]
//! fn clock() -> &'static str {
//!     "12:00"
//! }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(OAuth2::fairing().on_authenticate(AskTheUser))
//!         .mount("/", routes![clock, decide])
//! }
//! ```
//!
//! The fairing mounts `GET|POST /oauth2/authorize`, `POST /oauth2/token`, `/oauth2/revoke`,
//! `/oauth2/introspect` and the `/.well-known/` documents. `GET /clock` now answers `401` with
//! `WWW-Authenticate: Bearer realm="twisted-oauth2", scope="VIEW_CLOCK", …` unless the request
//! carries a valid access token holding `VIEW_CLOCK`.
//!
//! ## Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `rocket` | yes | the Rocket adapter, [`rocket`]: fairing, endpoints, guards, consent types |
//! | `macros` | yes | [`oauth`] (implies `rocket`) |
//! | `password-grant` | no | the resource-owner password grant (RFC 6749 §4.3, legacy) |
//! | `implicit-grant` | no | the implicit grant, `response_type=token` (RFC 6749 §4.2, legacy) |
//! | `sqlite` | no | the SQL store on SQLite (`storage = "sqlite://…"`) |
//! | `postgres` | no | the SQL store on PostgreSQL (`storage = "postgres://…"`) |
//! | `redis` | no | the Redis store (`storage = "redis://…"`) |
//! | `testkit` | no | the behavioural suite every store implementation must pass |
//! | `outbound` | no | `outbound`: the shared outbound HTTPS client, a policy per use (implied by `client-metadata`) |
//! | `resource-server` | no | `remote`: an external issuer's discovery metadata, cached JWKS, RFC 7662 introspection and `RemoteValidator`; the fairing's `[oauth2.resource_server]` mode (implies `jwt`, `outbound`) |
//! | `jwt` | no | `jwt`: JWT access tokens (RFC 9068): the `jwt` format, verifying against a JWK Set, `jsonwebtoken` on aws-lc-rs |
//! | `test-client` | no | `testing::TestClient`: tokens for an app's own tests (implies `rocket`) |
//! | `test-util` | no | test doubles: `clock::FixedClock` (time moves when told) and `token::SequentialTokenGenerator` (predictable values) |
//!
//! Without default features the crate is the protocol core alone, free of Rocket. The storage
//! backends are described in [`storage`] and in the storage chapter in `docs/`.
//!
//! ## Where to look
//!
//! - Rocket adapter: [`OAuth2`](crate::rocket::OAuth2) (the fairing and its builder methods),
//!   [`OnAuthenticate`](crate::rocket::OnAuthenticate), [`Consent`](crate::rocket::Consent),
//!   [`PendingRequests`](crate::rocket::PendingRequests),
//!   [`DecisionForm`](crate::rocket::DecisionForm), [`Authorized`](crate::rocket::Authorized),
//!   [`AuthResult`](crate::rocket::AuthResult), [`required_scope!`](crate::required_scope),
//!   [`OAuth2State`](crate::rocket::OAuth2State).
//! - What a token stands for: [`TokenInfo`]. Scopes: [`Scope`].
//! - Configuration: [`ServerConfig`], [`config::ClientConfig`], [`Client`].
//! - Errors: [`OAuthError`], [`ErrorCode`], [`error::StorageError`], [`error::ConfigError`].
//! - The protocol core, usable without Rocket: [`AuthorizationServer`], the endpoint functions
//!   in [`endpoint`] ([`endpoint::authorize`], [`endpoint::token`], [`endpoint::resource`],
//!   [`endpoint::revoke`], [`endpoint::introspect`], [`endpoint::metadata`]), the grants in
//!   [`grant`], PKCE in [`pkce`].
//! - Storage: the traits in [`storage`] and [`storage::memory::MemoryStore`]; token values and
//!   digests in [`token`]; the clock in [`clock`].
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod client;
pub mod client_metadata;
pub mod clock;
pub mod config;
pub mod context;
pub mod decision;
pub mod device;
pub mod endpoint;
pub mod error;
pub mod form;
pub mod format;
pub mod grant;
pub mod grant_type;
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub mod guide;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwt;
pub mod limits;
pub mod origin;
#[cfg(feature = "outbound")]
#[cfg_attr(docsrs, doc(cfg(feature = "outbound")))]
pub mod outbound;
mod pending_limit;
pub mod pkce;
mod rate_limit;
#[cfg(feature = "resource-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "resource-server")))]
pub mod remote;
pub mod request;
pub mod resource_indicator;
pub mod scope;
pub mod server;
pub mod signing_keys;
pub mod storage;
#[cfg(feature = "test-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-client")))]
pub mod testing;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
pub mod token;
pub mod validation;

#[doc(inline)]
pub use client::{Client, ClientKind};
#[doc(inline)]
pub use config::ServerConfig;
#[doc(inline)]
pub use endpoint::resource::TokenInfo;
#[doc(inline)]
pub use error::{ErrorCode, OAuthError};
#[doc(inline)]
pub use scope::Scope;
#[doc(inline)]
pub use server::AuthorizationServer;

#[cfg(feature = "rocket")]
#[cfg_attr(docsrs, doc(cfg(feature = "rocket")))]
pub mod rocket;

#[cfg(feature = "macros")]
#[doc(inline)]
pub use twisted_oauth2_macros::oauth;

/// Items the `#[oauth]` macro expands to. Not public API.
#[doc(hidden)]
#[cfg(feature = "rocket")]
pub mod __private {
    pub use crate::rocket::{Authorized, RequiredScope};
    pub use ::rocket;
}
