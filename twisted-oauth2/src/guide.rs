//! The user guide: the repository's README and the chapters of its `docs/` folder, rendered
//! here so that every Rust example in them is compiled (and, unless marked `no_run`, run) by
//! `cargo test -p twisted-oauth2 --doc`. Shell, TOML and text blocks are marked with their
//! language and skipped. Examples that need a cargo feature (`sqlite`, `testkit`,
//! `test-client`) compile when it is on: `.ci/run` runs the doctests with every feature.
//!
//! Links between chapters point to the Markdown files in `docs/`; read the guide there (or on
//! the repository's web page) to follow them. The API reference is the rest of this
//! documentation, starting at the [crate root](crate).
//!
//! | module | chapter |
//! |---|---|
//! | [`readme`] | the repository's README: the demo, the curl walk-through, configuration |
//! | [`index`] | the table of contents of `docs/` |
//! | [`getting_started`] | the demo, curl and browser flows, a fresh app |
//! | [`configuration`] | every setting, overrides, configuration in code, cargo features |
//! | [`consent`] | the consent page: [`OnAuthenticate`](crate::rocket::OnAuthenticate) and [`PendingRequests`](crate::rocket::PendingRequests) |
//! | [`protecting_routes`] | [`oauth`](macro@crate::oauth), [`Authorized`](crate::rocket::Authorized), [`AuthResult`](crate::rocket::AuthResult), [`TokenInfo`](crate::TokenInfo) |
//! | [`storage`] | the storage backends and the store test kit |
//! | [`validation_cache`] | the validation cache: bounds, revocation across instances, what happens when the channel drops |
//! | [`jwt`] | JWT access tokens and signing keys (feature `jwt`): keys, rotation, JWKS, the RFC 9068 claims, validation, revocation (denylist or stateless), introspection and refresh |
//! | [`security`] | the production checklist |
//! | [`registration`] | dynamic client registration (RFC 7591, RFC 7592): [`endpoint::register`](crate::endpoint::register) |
//! | [`device_flow`] | the device authorization grant (RFC 8628): [`device`](crate::device) |
//! | [`rate_limits`] | brute-force limits: [`limits`](crate::limits) |
//! | [`mcp`] | protecting an MCP server: resource indicators (RFC 8707), registration, client ID metadata documents ([`client_metadata`](crate::client_metadata)) |
//! | [`audit`] | audit events: [`AuditSink`](crate::audit::AuditSink), [`AuditEvent`](crate::audit::AuditEvent) |
//! | [`migration_from_txoauth2`] | txoauth2's API mapped to this crate |
//! | `testing` (feature `test-client`) | testing your app with `testing::TestClient` |
//! | [`architecture`] | layers, extension seams, adding a grant, an endpoint, a token format or a store, decision log |
//! | [`rfc_coverage`] | the RFC sections implemented and the tests checking them |
//! | [`benchmarks`] | how the benchmarks run, and their figures |

// The chapters are Markdown written for GitHub: lists continue without indentation.
#![allow(clippy::doc_lazy_continuation, clippy::doc_overindented_list_items)]

#[doc = include_str!("../../README.md")]
pub mod readme {}

#[doc = include_str!("../../docs/README.md")]
pub mod index {}

#[doc = include_str!("../../docs/getting-started.md")]
pub mod getting_started {}

#[doc = include_str!("../../docs/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../../docs/consent.md")]
pub mod consent {}

#[doc = include_str!("../../docs/protecting-routes.md")]
pub mod protecting_routes {}

#[doc = include_str!("../../docs/storage.md")]
pub mod storage {}

#[doc = include_str!("../../docs/security.md")]
pub mod security {}

#[doc = include_str!("../../docs/validation-cache.md")]
pub mod validation_cache {}

#[doc = include_str!("../../docs/migration-from-txoauth2.md")]
pub mod migration_from_txoauth2 {}

#[doc = include_str!("../../docs/architecture.md")]
pub mod architecture {}

#[doc = include_str!("../../docs/rfc-coverage.md")]
pub mod rfc_coverage {}

#[doc = include_str!("../../docs/benchmarks.md")]
pub mod benchmarks {}

#[doc = include_str!("../../docs/audit.md")]
pub mod audit {}

#[doc = include_str!("../../docs/registration.md")]
pub mod registration {}

#[doc = include_str!("../../docs/mcp.md")]
pub mod mcp {}

#[doc = include_str!("../../docs/device-flow.md")]
pub mod device_flow {}

#[doc = include_str!("../../docs/rate-limits.md")]
pub mod rate_limits {}

#[doc = include_str!("../../docs/jwt.md")]
pub mod jwt {}

#[cfg(feature = "resource-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "resource-server")))]
#[doc = include_str!("../../docs/resource-server.md")]
pub mod resource_server {}

#[cfg(feature = "test-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-client")))]
#[doc = include_str!("../../docs/testing.md")]
pub mod testing {}
