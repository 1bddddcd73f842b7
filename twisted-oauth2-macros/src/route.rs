//! Where `#[oauth]` sits relative to the Rocket route attribute.
//!
//! `#[oauth]` must expand before the route attribute so that Rocket generates its guard code for
//! the signature with the inserted guard. Outer attribute macros expand first, so when `#[oauth]`
//! is written above, the route attribute is still among the item's attributes.
//!
//! Written below, the route attribute has already expanded and re-emitted the function without
//! itself, so `#[oauth]` sees no route attribute, as if there were none. The two cases differ in
//! one trace: Rocket re-emits the function through `syn`, which rebuilds every delimited group
//! with a single span, so the body's opening-brace span then covers the whole `{ ... }` instead
//! of just `{`. That is observable on stable through `Span::source_text`.

use proc_macro2::Span;
use syn::{Attribute, ItemFn};

/// Last path segments of Rocket's route attributes (`get`, `rocket::get`, ...).
const ROUTE_ATTRIBUTES: [&str; 8] = [
    "route", "get", "put", "post", "delete", "head", "patch", "options",
];

const BELOW_ROUTE: &str =
    "`#[oauth]` must be written above the Rocket route attribute, not below it\n\
     help: the route attribute above `#[oauth]` has already generated the route, without the token \
     guard; move `#[oauth(...)]` above `#[get(...)]`, `#[post(...)]`, ...";
const NO_ROUTE: &str = "`#[oauth]` must be written above the Rocket route attribute \
     (`#[get]`, `#[post]`, ...); no route attribute follows it\n\
     help: write `#[oauth(...)]` directly above the route attribute, \
     e.g. `#[oauth(scope = \"read\")] #[get(\"/path\")] fn handler() { ... }`";
const DUPLICATE_OAUTH: &str = "duplicate `#[oauth]` attribute\n\
     help: list every required scope token in one attribute, e.g. `#[oauth(scope = \"read write\")]`";
const METHOD: &str =
    "`#[oauth]` can only be used on free functions: Rocket route handlers take no `self`";

/// Checks that a route attribute follows `#[oauth]` on `func`, and nothing else is in the way.
pub(crate) fn check(func: &ItemFn) -> syn::Result<()> {
    if let Some(other) = func
        .attrs
        .iter()
        .find(|attr| last_segment_in(attr, &["oauth"]))
    {
        return Err(syn::Error::new_spanned(other, DUPLICATE_OAUTH));
    }
    if let Some(receiver) = func.sig.receiver() {
        return Err(syn::Error::new_spanned(receiver, METHOD));
    }
    if func.attrs.iter().any(is_route_attribute) {
        return Ok(());
    }
    let opening_brace = func.block.brace_token.span.open().source_text();
    let message = if covers_whole_block(opening_brace.as_deref()) {
        BELOW_ROUTE
    } else {
        NO_ROUTE
    };
    Err(syn::Error::new(Span::call_site(), message))
}

/// Whether `attr` is a Rocket route attribute, judged by its last path segment.
pub(crate) fn is_route_attribute(attr: &Attribute) -> bool {
    last_segment_in(attr, &ROUTE_ATTRIBUTES)
}

fn last_segment_in(attr: &Attribute, names: &[&str]) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| names.iter().any(|name| segment.ident == name))
}

/// Whether the source text of a body's opening-brace span is the whole block, the trace of a
/// function re-emitted by another attribute macro (see the module docs). Source text is only
/// available inside the compiler; `None` means unknown and counts as "not re-emitted".
fn covers_whole_block(opening_brace: Option<&str>) -> bool {
    opening_brace.is_some_and(|text| text.len() > 1 && text.starts_with('{') && text.ends_with('}'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn detects_route_attributes_by_last_path_segment() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[get("/")]),
            parse_quote!(#[rocket::post("/", data = "<d>")]),
            parse_quote!(#[::rocket::route(GET, uri = "/")]),
            parse_quote!(#[options("/")]),
        ];
        assert!(attrs.iter().all(is_route_attribute));
        let others: Vec<Attribute> = vec![
            parse_quote!(#[catch(404)]),
            parse_quote!(#[get::other]),
            parse_quote!(#[doc = "get"]),
        ];
        assert!(!others.iter().any(is_route_attribute));
    }

    #[test]
    fn opening_brace_covering_the_block_means_re_emitted() {
        assert!(covers_whole_block(Some("{ body() }")));
        assert!(covers_whole_block(Some("{}")));
        assert!(!covers_whole_block(Some("{")));
        assert!(!covers_whole_block(Some("make_route!()")));
        assert!(!covers_whole_block(None));
    }
}
