//! # twisted-oauth2
//!
//! An OAuth 2.1 authorization server and bearer-token resource protection for Rocket 0.5.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
pub mod clock;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod form;
pub mod grant;
pub mod pkce;
pub mod scope;
pub mod server;
pub mod storage;
pub mod token;

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
