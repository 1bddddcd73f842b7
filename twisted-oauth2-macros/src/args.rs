//! Parsing of the attribute arguments: `scope = "..."` and the optional `crate = "..."`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Lit, LitStr, Path, Token};

const MISSING_SCOPE: &str = "`#[oauth]` needs the required scope: `#[oauth(scope = \"...\")]`\n\
     help: list the scope tokens the access token must carry, separated by spaces, \
     e.g. `#[oauth(scope = \"read write\")]`";
const DUPLICATE_SCOPE: &str = "duplicate `scope` argument\n\
     help: list every scope token in one space-separated string, e.g. `scope = \"read write\"`";
const EXPECTED_STRING: &str = "`scope` must be a string literal, e.g. `scope = \"read write\"`";
const EXPECTED_KEY_VALUE: &str = "expected `scope = \"...\"`";
const DUPLICATE_CRATE: &str = "duplicate `crate` argument";
const EXPECTED_CRATE_PATH: &str = "`crate` must be a string literal holding the path of the \
     `twisted_oauth2` crate, e.g. `crate = \"my_oauth\"` or `crate = \"crate::reexported\"`";

/// The arguments of `#[oauth(...)]`.
pub(crate) struct Args {
    /// The scope literal, not yet validated.
    pub(crate) scope: LitStr,
    /// The path of the runtime crate: `::twisted_oauth2` unless `crate = "..."` says otherwise
    /// (a renamed dependency or a re-export).
    pub(crate) krate: Path,
}

/// Parses the arguments of `#[oauth(...)]`.
pub(crate) fn parse(args: TokenStream) -> syn::Result<Args> {
    if let Some(positional) = positional_string(&args) {
        return Err(positional);
    }
    let mut scope: Option<LitStr> = None;
    let mut krate: Option<Path> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("scope") {
            if scope.is_some() {
                return Err(meta.error(DUPLICATE_SCOPE));
            }
            scope = Some(scope_value(&meta)?);
            Ok(())
        } else if meta.path.is_ident("crate") {
            if krate.is_some() {
                return Err(meta.error(DUPLICATE_CRATE));
            }
            krate = Some(crate_value(&meta)?);
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
    let scope = scope.ok_or_else(|| syn::Error::new(Span::call_site(), MISSING_SCOPE))?;
    let krate = krate.unwrap_or_else(|| syn::parse_quote!(::twisted_oauth2));
    Ok(Args { scope, krate })
}

/// The error for a scope written without its key, `#[oauth("read")]`, suggesting the keyed
/// form with the same string.
fn positional_string(args: &TokenStream) -> Option<syn::Error> {
    let first = args.clone().into_iter().next()?;
    let lit = match syn::parse2::<Lit>(first.into()).ok()? {
        Lit::Str(lit) => lit,
        _ => return None,
    };
    Some(syn::Error::new(
        lit.span(),
        format!(
            "`#[oauth]` takes the scope as a named argument, not a bare string\n\
             help: write `#[oauth(scope = {})]`",
            lit.token()
        ),
    ))
}

/// Parses the `= "..."` part after `crate` into the runtime crate's path.
fn crate_value(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let error = |span| syn::Error::new(span, EXPECTED_CRATE_PATH);
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(EXPECTED_CRATE_PATH));
    }
    let value = meta.value()?;
    if value.is_empty() {
        return Err(value.error(EXPECTED_CRATE_PATH));
    }
    if value.peek(Lit) {
        return match value.parse()? {
            Lit::Str(lit) if lit.suffix().is_empty() => {
                lit.parse::<Path>().map_err(|_| error(lit.span()))
            }
            other => Err(error(other.span())),
        };
    }
    let other: TokenTree = value.parse()?;
    Err(error(other.span()))
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
