//! The user guide: the chapters of the repository's `docs/` folder, rendered here so that
//! every Rust example in them is compiled (and, unless marked `no_run`, run) by
//! `cargo test -p twisted-oauth2 --doc`.
//!
//! Links between chapters point to the Markdown files in `docs/`; read the guide there (or on
//! the repository's web page) to follow them. The API reference is the rest of this
//! documentation, starting at the [crate root](crate).
//!
//! | module | chapter |
//! |---|---|
//! | [`getting_started`] | the demo, curl and browser flows, a fresh app |
//! | [`configuration`] | every setting, overrides, configuration in code, cargo features |
//! | [`consent`] | the consent page: [`OnAuthenticate`](crate::rocket::OnAuthenticate) and [`PendingRequests`](crate::rocket::PendingRequests) |
//! | [`protecting_routes`] | [`oauth`](macro@crate::oauth), [`Authorized`](crate::rocket::Authorized), [`AuthResult`](crate::rocket::AuthResult), [`TokenInfo`](crate::TokenInfo) |
//! | `docs/security.md` | the production checklist |
//! | [`migration_from_txoauth2`] | txoauth2's API mapped to this crate |
//! | `testing` (feature `test-client`) | testing your app with [`TestClient`](crate::testing::TestClient) |
//! | `docs/architecture.md` | layers, storage and error design, decision log |

#[doc = include_str!("../../docs/getting-started.md")]
pub mod getting_started {}

#[doc = include_str!("../../docs/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../../docs/consent.md")]
pub mod consent {}

#[doc = include_str!("../../docs/protecting-routes.md")]
pub mod protecting_routes {}

#[doc = include_str!("../../docs/migration-from-txoauth2.md")]
pub mod migration_from_txoauth2 {}

#[cfg(feature = "test-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-client")))]
#[doc = include_str!("../../docs/testing.md")]
pub mod testing {}
