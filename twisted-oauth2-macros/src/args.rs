//! Parsing of the attribute arguments: `scope = "..."`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Lit, LitStr, Token};

const MISSING_SCOPE: &str = "`#[oauth]` needs the required scope: `#[oauth(scope = \"...\")]`\n\
     help: list the scope tokens the access token must carry, separated by spaces, \
     e.g. `#[oauth(scope = \"read write\")]`";
const DUPLICATE_SCOPE: &str = "duplicate `scope` argument\n\
     help: list every scope token in one space-separated string, e.g. `scope = \"read write\"`";
const EXPECTED_STRING: &str = "`scope` must be a string literal, e.g. `scope = \"read write\"`";
const EXPECTED_KEY_VALUE: &str = "expected `scope = \"...\"`";

/// Parses the arguments of `#[oauth(...)]` and returns the (not yet validated) scope literal.
pub(crate) fn parse(args: TokenStream) -> syn::Result<LitStr> {
    let mut scope: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("scope") {
            if scope.is_some() {
                return Err(meta.error(DUPLICATE_SCOPE));
            }
            scope = Some(scope_value(&meta)?);
            Ok(())
        } else {
            let key = meta
                .path
                .get_ident()
                .map_or_else(|| "path".to_owned(), |ident| format!("`{ident}`"));
            Err(meta.error(format_args!(
                "unknown `#[oauth]` argument {key}; the only argument is `scope = \"...\"`"
            )))
        }
    });
    parser.parse2(args)?;
    scope.ok_or_else(|| syn::Error::new(Span::call_site(), MISSING_SCOPE))
}

/// Parses the `= "..."` part after `scope`.
fn scope_value(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(EXPECTED_KEY_VALUE));
    }
    let value = meta.value()?;
    if value.is_empty() {
        return Err(value.error(EXPECTED_STRING));
    }
    // `Lit` parsing sees through the invisible group around a `macro_rules!` `$scope:literal`.
    if value.peek(Lit) {
        return match value.parse()? {
            Lit::Str(lit) if lit.suffix().is_empty() => Ok(lit),
            other => Err(syn::Error::new(other.span(), EXPECTED_STRING)),
        };
    }
    let other: TokenTree = value.parse()?;
    Err(syn::Error::new(other.span(), EXPECTED_STRING))
}
