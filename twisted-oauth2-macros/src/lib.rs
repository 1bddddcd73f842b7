//! Procedural macros for `twisted-oauth2`.
//!
//! This crate is an implementation detail. `twisted-oauth2` re-exports [`macro@oauth`] (feature
//! `macros`) and documents it in full. Depend on `twisted-oauth2`, never on this crate directly:
//! the expansion names `::twisted_oauth2::__private` items that only the matching runtime provides.

mod args;
mod expand;
mod route;
mod scope;

use proc_macro::TokenStream;

/// Requires an OAuth 2 bearer token with the given scope on a Rocket route.
///
/// Write it **above** the route attribute, with the scope as one space-separated string
/// (RFC 6749 §3.3). The token must carry every listed scope token:
///
/// ```
/// use rocket::get;
/// use twisted_oauth2::oauth;
///
/// #[oauth(scope = "VIEW_CLOCK profile")]
/// #[get("/clock")]
/// async fn clock() -> String {
///     "12:00".into()
/// }
/// # fn main() {
/// #     let _ = rocket::routes![clock];
/// # }
/// ```
///
/// The attribute adds no behaviour of its own. It inserts one request guard as the handler's
/// first parameter, so the token is checked before any other guard runs or the body is read:
///
/// ```ignore
/// #[get("/clock")]
/// async fn clock(
///     __twisted_oauth2_auth: ::twisted_oauth2::__private::Authorized<__TwistedOAuth2Scope_clock>,
/// ) -> String { /* ... */ }
///
/// #[doc(hidden)]
/// mod __twisted_oauth2_scope_clock {
///     pub struct __TwistedOAuth2Scope_clock;
/// }
/// #[doc(hidden)]
/// use __twisted_oauth2_scope_clock::__TwistedOAuth2Scope_clock;
/// impl ::twisted_oauth2::__private::RequiredScope for __TwistedOAuth2Scope_clock {
///     const SCOPE: &'static str = "VIEW_CLOCK profile";
/// }
/// ```
///
/// The marker type is `pub` in a private module and imported privately, whatever the handler's
/// visibility: it is never part of a crate's public API, and a `pub` handler naming it raises
/// no `private_interfaces` warning.
///
/// `crate = "path"` names the runtime crate when it is not reachable as `::twisted_oauth2` (a
/// renamed dependency, or a re-export): `#[oauth(scope = "read", crate = "my_oauth")]`. The
/// expansion then uses that path.
///
/// The scope string is checked at compile time: it must not be empty, tokens are separated by
/// single spaces, and each token uses only printable ASCII other than space, `"` and `\`.
/// Repeated tokens are dropped.
#[proc_macro_attribute]
pub fn oauth(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand::oauth(args.into(), item.clone()) {
        Ok(expanded) => expanded.into(),
        // Keep the item so that the error is the only one: code naming the handler, such as
        // `routes![handler]`, still resolves.
        Err(error) => {
            let mut tokens = error.into_compile_error();
            tokens.extend(item);
            tokens.into()
        }
    }
}
