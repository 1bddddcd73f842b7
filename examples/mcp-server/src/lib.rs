//! A small, complete MCP server protected by twisted-oauth2, to copy: the library is both
//! its authorization server and the guard of `POST /mcp`.
//!
//! - Sign-in and consent are the library's own pages ([`OAuth2::builtin_login`]): the app
//!   supplies only the password check ([`Users`], argon2id hashes from `Rocket.toml`).
//! - MCP clients arrive unregistered: dynamic client registration (RFC 7591) and client ID
//!   metadata documents are on (`Rocket.toml`).
//! - Codes, tokens and registered clients are kept in SQLite (`storage`).
//! - `/mcp` ([`mcp`]) is a resource of its own (`route_resources`), its `Origin` is checked,
//!   and it answers both MCP eras with two tools, one of them needing a step-up scope.

use std::collections::BTreeMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use argon2::Argon2;
use rocket::figment::Figment;
use rocket::{routes, Build, Rocket};
use twisted_oauth2::error::StorageError;
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::storage::PasswordVerifier;

pub mod mcp;

/// The users who may sign in: user name → argon2id hash (a PHC string), from the `users`
/// table of the configuration. Make a hash with `mcp-server hash-password`.
pub struct Users {
    hashes: Arc<BTreeMap<String, String>>,
}

impl Users {
    /// The `users` table of `figment` (empty when absent).
    pub fn from_figment(figment: &Figment) -> Result<Self, Box<rocket::figment::Error>> {
        let hashes = if figment.contains("users") {
            figment.extract_inner("users").map_err(Box::new)?
        } else {
            BTreeMap::new()
        };
        Ok(Users {
            hashes: Arc::new(hashes),
        })
    }
}

/// Checked with a hash nobody's password matches, so an unknown user costs what a known one
/// does (the user names stay unguessable by timing).
const NOBODYS_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$5/JM4bMefTAhXhRuznaUow$yZGH8FHYf1EboZwJNAFJZ+ZC2frHUHu+z6GIZjNV/Ck";

#[rocket::async_trait]
impl PasswordVerifier for Users {
    async fn verify(&self, user: &str, password: &str) -> Result<Option<String>, StorageError> {
        let hashes = self.hashes.clone();
        let (user, password) = (user.to_owned(), password.to_owned());
        // argon2 takes tens of milliseconds on purpose: off the async workers.
        rocket::tokio::task::spawn_blocking(move || {
            let known = hashes.get(&user);
            let hash = known.map_or(NOBODYS_HASH, String::as_str);
            let ok = PasswordHash::new(hash).is_ok_and(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            });
            (ok && known.is_some()).then_some(user)
        })
        .await
        .map_err(StorageError::other)
    }
}

/// The app on `figment`: the fairing with the built-in sign-in and consent, `/mcp` opened to
/// the browser clients of `allowed_origins`, and the MCP routes.
pub fn rocket(figment: Figment) -> Rocket<Build> {
    let users = match Users::from_figment(&figment) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("mcp-server: the `users` table is invalid: {e}");
            Users {
                hashes: Arc::default(),
            }
        }
    };
    rocket::custom(figment)
        .attach(
            OAuth2::fairing()
                .builtin_login(users)
                // Browser clients (MCP Inspector) may call /mcp cross-origin; its Origin is checked.
                .cors_route("/mcp", "POST, GET, DELETE, OPTIONS"),
        )
        .manage(mcp::Stats::default())
        .mount("/", routes![mcp::mcp, mcp::mcp_get, mcp::mcp_delete])
}
