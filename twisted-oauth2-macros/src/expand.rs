//! The expansion of `#[oauth(scope = "...")]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::{parse_quote, Ident, Item, ItemFn};

use crate::{args, route, scope};

/// Name of the inserted guard parameter. The leading underscore keeps `unused_variables` quiet;
/// its mixed-site span keeps it out of reach of the handler body.
const GUARD_PARAM: &str = "__twisted_oauth2_auth";

const NOT_A_FUNCTION: &str = "`#[oauth]` can only be used on Rocket route handler functions\n\
     help: write it above a route attribute on a `fn`, e.g. \
     `#[oauth(scope = \"read\")] #[get(\"/path\")] fn handler() { ... }`";

/// Expands `#[oauth(<args>)] <item>`.
///
/// Reports every argument and placement error at once rather than the first one only.
pub(crate) fn oauth(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = args::parse(args)
        .and_then(|args| scope::normalise(&args.scope).map(|scope| (scope, args.krate)));
    let func = parse_fn(item).and_then(|func| route::check(&func).map(|()| func));
    let ((scope, krate), mut func) = match (args, func) {
        (Ok(args), Ok(func)) => (args, func),
        (Err(mut first), Err(second)) => {
            first.combine(second);
            return Err(first);
        }
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => return Err(error),
    };

    let fn_name = &func.sig.ident;
    let hygienic = Span::mixed_site().located_at(fn_name.span());
    let marker = format_ident!("__TwistedOAuth2Scope_{}", fn_name, span = hygienic);
    let module = format_ident!("__twisted_oauth2_scope_{}", fn_name, span = hygienic);
    let attribute = Span::call_site();
    let guard = Ident::new(GUARD_PARAM, Span::mixed_site().located_at(attribute));
    let guard_ty = quote_spanned!(attribute=> #krate::__private::Authorized<#marker>);
    func.sig.inputs.insert(0, parse_quote!(#guard: #guard_ty));

    let required_scope = quote_spanned!(attribute=> #krate::__private::RequiredScope);
    // The marker is `pub` inside a private module and imported privately: whatever the
    // handler's visibility, the marker is no more visible than the module it is written in
    // (it never joins a crate's public API), yet it is not "more private" than a `pub`
    // handler whose signature names it (`private_interfaces`).
    Ok(quote! {
        #func

        #[doc(hidden)]
        mod #module {
            #[allow(non_camel_case_types, unreachable_pub)]
            pub struct #marker;
        }
        #[doc(hidden)]
        use #module::#marker;

        impl #required_scope for #marker {
            const SCOPE: &'static str = #scope;
        }
    })
}

/// Parses the annotated item, which must be a function.
fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<Item>(item)? {
        Item::Fn(func) => Ok(func),
        other => Err(syn::Error::new_spanned(item_head(&other), NOT_A_FUNCTION)),
    }
}

/// The tokens naming an item (`struct S`, `impl T`, ...), which the not-a-function error spans.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Const(i) => head(&i.const_token, &i.ident),
        Item::Enum(i) => head(&i.enum_token, &i.ident),
        Item::Impl(i) => head(&i.impl_token, &i.self_ty),
        Item::Mod(i) => head(&i.mod_token, &i.ident),
        Item::Static(i) => head(&i.static_token, &i.ident),
        Item::Struct(i) => head(&i.struct_token, &i.ident),
        Item::Trait(i) => head(&i.trait_token, &i.ident),
        Item::Type(i) => head(&i.type_token, &i.ident),
        Item::Union(i) => head(&i.union_token, &i.ident),
        Item::Use(i) => i.use_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

fn head(keyword: &dyn ToTokens, name: &dyn ToTokens) -> TokenStream {
    quote!(#keyword #name)
}

#[cfg(test)]
mod tests {
    use super::oauth;
    use proc_macro2::{Delimiter, Group, TokenStream};
    use quote::quote;
    use syn::{FnArg, Item, ItemFn, ItemImpl, ItemMod, ItemStruct, Visibility};

    fn expand(args: TokenStream, item: TokenStream) -> Vec<Item> {
        let output = oauth(args, item).expect("expansion succeeds");
        syn::parse2::<syn::File>(output)
            .expect("expansion parses as items")
            .items
    }

    fn error(args: TokenStream, item: TokenStream) -> String {
        let error = oauth(args, item).expect_err("expansion fails");
        error
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    fn clock() -> TokenStream {
        quote! {
            #[get("/clock")]
            async fn clock(other: &State<X>) -> String { other.now() }
        }
    }

    #[test]
    fn expands_to_the_documented_shape() {
        let output = oauth(quote!(scope = "VIEW_CLOCK profile"), clock()).unwrap();
        let expected = quote! {
            #[get("/clock")]
            async fn clock(
                __twisted_oauth2_auth: ::twisted_oauth2::__private::Authorized<__TwistedOAuth2Scope_clock>,
                other: &State<X>
            ) -> String { other.now() }

            #[doc(hidden)]
            mod __twisted_oauth2_scope_clock {
                #[allow(non_camel_case_types, unreachable_pub)]
                pub struct __TwistedOAuth2Scope_clock;
            }
            #[doc(hidden)]
            use __twisted_oauth2_scope_clock::__TwistedOAuth2Scope_clock;

            impl ::twisted_oauth2::__private::RequiredScope for __TwistedOAuth2Scope_clock {
                const SCOPE: &'static str = "VIEW_CLOCK profile";
            }
        };
        assert_eq!(output.to_string(), expected.to_string());
    }

    #[test]
    fn crate_override_replaces_every_path_to_the_runtime() {
        for (krate, path) in [
            (quote!("my_alias"), quote!(my_alias)),
            (quote!("crate::reexported"), quote!(crate::reexported)),
            (quote!("::outer::inner"), quote!(::outer::inner)),
        ] {
            let output = oauth(quote!(scope = "a", crate = #krate), clock()).unwrap();
            let text = output.to_string();
            assert!(!text.contains("twisted_oauth2 ::"), "{text}");
            let guard = quote!(__twisted_oauth2_auth: #path::__private::Authorized<__TwistedOAuth2Scope_clock>);
            assert!(text.contains(&guard.to_string()), "{text}");
            let imp = quote!(impl #path::__private::RequiredScope for __TwistedOAuth2Scope_clock);
            assert!(text.contains(&imp.to_string()), "{text}");
        }
        // Either order.
        let first = oauth(quote!(crate = "x", scope = "a"), clock()).unwrap();
        let second = oauth(quote!(scope = "a", crate = "x"), clock()).unwrap();
        assert_eq!(first.to_string(), second.to_string());
    }

    #[test]
    fn rejects_bad_crate_overrides() {
        for value in [
            quote!(= my_alias),
            quote!(= 1),
            quote!(= "not a path"),
            quote!(= ""),
            quote!(),
        ] {
            let error = error(quote!(scope = "a", crate #value), clock());
            assert!(
                error.starts_with("`crate` must be a string literal holding the path"),
                "{value}: {error}"
            );
        }
        let error = error(quote!(scope = "a", crate = "x", crate = "y"), clock());
        assert!(error.starts_with("duplicate `crate` argument"), "{error}");
    }

    #[test]
    fn rejects_a_positional_scope_suggesting_the_keyed_form() {
        for (args, suggestion) in [
            (quote!("read"), "help: write `#[oauth(scope = \"read\")]`"),
            (
                quote!("read write"),
                "help: write `#[oauth(scope = \"read write\")]`",
            ),
            (quote!(r"a\b"), "help: write `#[oauth(scope = r\"a\\b\")]`"),
            (
                quote!("read", crate = "x"),
                "help: write `#[oauth(scope = \"read\")]`",
            ),
        ] {
            let error = error(args.clone(), clock());
            assert!(
                error.starts_with(
                    "`#[oauth]` takes the scope as a named argument, not a bare string"
                ),
                "{args}: {error}"
            );
            assert!(error.contains(suggestion), "{args}: {error}");
        }
    }

    #[test]
    fn inserts_the_guard_as_the_first_parameter_keeping_the_others() {
        let items = expand(
            quote!(scope = "a"),
            quote! {
                #[post("/<id>?<q>", data = "<form>")]
                fn f<'r>(id: u32, db: &'r Db, q: &str, form: Form<F>) {}
            },
        );
        let Item::Fn(func) = &items[0] else {
            panic!("first item is the fn")
        };
        let params: Vec<String> = func
            .sig
            .inputs
            .iter()
            .map(|arg| quote!(#arg).to_string())
            .collect();
        assert_eq!(params.len(), 5);
        assert_eq!(
            params[0],
            quote!(__twisted_oauth2_auth: ::twisted_oauth2::__private::Authorized<__TwistedOAuth2Scope_f>)
                .to_string()
        );
        assert_eq!(
            params[1..],
            ["id : u32", "db : & 'r Db", "q : & str", "form : Form < F >"]
        );
        let generics = &func.sig.generics;
        assert_eq!(quote!(#generics).to_string(), quote!(<'r>).to_string());
    }

    #[test]
    fn keeps_attributes_visibility_asyncness_and_body() {
        let items = expand(
            quote!(scope = "a"),
            quote! {
                /// Docs.
                #[rocket::get("/")]
                #[allow(unused)]
                pub(crate) async fn handler() -> &'static str { "hi" }
            },
        );
        let Item::Fn(func) = &items[0] else {
            panic!("first item is the fn")
        };
        assert_eq!(func.attrs.len(), 3);
        assert!(func.sig.asyncness.is_some());
        let fn_vis = &func.vis;
        assert_eq!(quote!(#fn_vis).to_string(), quote!(pub(crate)).to_string());
        let block = &func.block;
        assert_eq!(quote!(#block).to_string(), quote!({ "hi" }).to_string());
        // The marker does not take the handler's visibility: `pub` in a private module,
        // imported privately.
        let Item::Mod(module) = &items[1] else {
            panic!("second item is the marker's module")
        };
        assert!(matches!(module.vis, Visibility::Inherited));
        let Some((_, content)) = &module.content else {
            panic!("an inline module")
        };
        let Item::Struct(marker) = &content[0] else {
            panic!("the module holds the marker")
        };
        assert!(matches!(marker.vis, Visibility::Public(_)));
        let Item::Use(import) = &items[2] else {
            panic!("third item imports the marker")
        };
        assert!(matches!(import.vis, Visibility::Inherited));
    }

    #[test]
    fn emits_a_marker_type_named_after_the_fn_but_distinct_from_it() {
        let items = expand(
            quote!(scope = "a"),
            quote!(
                #[get("/")]
                fn r#type() {}
            ),
        );
        let Item::Mod(ItemMod {
            ident: module,
            attrs,
            content: Some((_, content)),
            ..
        }) = &items[1]
        else {
            panic!("second item is the marker's module")
        };
        assert_eq!(module, "__twisted_oauth2_scope_type");
        assert!(attrs
            .iter()
            .any(|a| quote!(#a).to_string() == quote!(#[doc(hidden)]).to_string()));
        let Item::Struct(ItemStruct { ident, .. }) = &content[0] else {
            panic!("the module holds the marker struct")
        };
        assert_eq!(ident, "__TwistedOAuth2Scope_type");
        let Item::Impl(ItemImpl {
            trait_, self_ty, ..
        }) = &items[3]
        else {
            panic!("third item is the RequiredScope impl")
        };
        let (_, path, _) = trait_.as_ref().expect("a trait impl");
        assert_eq!(
            quote!(#path).to_string(),
            quote!(::twisted_oauth2::__private::RequiredScope).to_string()
        );
        assert_eq!(quote!(#self_ty).to_string(), "__TwistedOAuth2Scope_type");
    }

    #[test]
    fn normalises_the_scope_by_dropping_repeated_tokens() {
        let items = expand(quote!(scope = "b a b"), clock());
        let Item::Impl(ItemImpl {
            items: impl_items, ..
        }) = &items[3]
        else {
            panic!("third item is the RequiredScope impl")
        };
        let scope_const = &impl_items[0];
        assert_eq!(
            quote!(#scope_const).to_string(),
            quote!(
                const SCOPE: &'static str = "b a";
            )
            .to_string()
        );
    }

    #[test]
    fn accepts_raw_string_and_trailing_comma() {
        let items = expand(quote!(scope = r"a:b c/d",), clock());
        assert_eq!(items.len(), 4);
    }

    #[test]
    fn accepts_a_scope_literal_passed_through_macro_rules() {
        // `macro_rules!` hands a `$scope:literal` over inside an invisible group.
        let literal = Group::new(Delimiter::None, quote!("a b"));
        let items = expand(quote!(scope = #literal), clock());
        assert_eq!(items.len(), 4);
    }

    #[test]
    fn works_on_sync_fns_without_parameters() {
        let items = expand(
            quote!(scope = "a"),
            quote!(
                #[get("/")]
                fn index() -> &'static str {
                    ""
                }
            ),
        );
        let Item::Fn(ItemFn { sig, .. }) = &items[0] else {
            panic!("first item is the fn")
        };
        assert_eq!(sig.inputs.len(), 1);
        assert!(matches!(sig.inputs.first(), Some(FnArg::Typed(_))));
        assert!(sig.asyncness.is_none());
    }

    #[test]
    fn rejects_missing_scope() {
        for args in [quote!(), quote!(scope)] {
            let error = error(args, clock());
            assert!(error.contains("scope = \""), "{error}");
        }
        assert!(error(quote!(), clock()).starts_with("`#[oauth]` needs the required scope"));
        assert!(error(quote!(scope), clock()).starts_with("expected `scope = \"...\"`"));
    }

    #[test]
    fn rejects_unknown_key() {
        let error = error(quote!(scpe = "a"), clock());
        assert!(
            error.starts_with("unknown `#[oauth]` argument `scpe`"),
            "{error}"
        );
    }

    #[test]
    fn rejects_duplicate_scope_key() {
        let error = error(quote!(scope = "a", scope = "b"), clock());
        assert!(error.starts_with("duplicate `scope` argument"), "{error}");
    }

    #[test]
    fn rejects_non_string_scope_values() {
        for value in [
            quote!(1),
            quote!(b"a"),
            quote!("a"suffix),
            quote!(SCOPES),
            quote!(),
        ] {
            let error = error(quote!(scope = #value), clock());
            assert!(
                error.contains("`scope` must be a string literal"),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn rejects_empty_and_malformed_scope() {
        assert!(error(quote!(scope = ""), clock()).contains("at least one scope token"));
        assert!(error(quote!(scope = "a  b"), clock()).contains("single space"));
        assert!(error(quote!(scope = "a\"b"), clock()).contains("invalid character `\"`"));
        assert!(error(quote!(scope = "é"), clock()).contains("not ASCII"));
    }

    #[test]
    fn rejects_fn_without_route_attribute() {
        let error = error(
            quote!(scope = "a"),
            quote!(
                #[allow(unused)]
                fn f() {}
            ),
        );
        assert!(
            error.starts_with("`#[oauth]` must be written above the Rocket route attribute"),
            "{error}"
        );
        assert!(error.contains("no route attribute follows it"), "{error}");
    }

    #[test]
    fn rejects_non_functions() {
        for item in [
            quote!(
                struct S;
            ),
            quote!(impl S {}),
            quote!(
                mod m {}
            ),
        ] {
            let error = error(quote!(scope = "a"), item);
            assert!(
                error.starts_with("`#[oauth]` can only be used on Rocket route handler functions"),
                "{error}"
            );
        }
    }

    #[test]
    fn rejects_a_second_oauth_attribute() {
        let error = error(
            quote!(scope = "a"),
            quote!(
                #[twisted_oauth2::oauth(scope = "b")]
                #[get("/")]
                fn f() {}
            ),
        );
        assert!(
            error.starts_with("duplicate `#[oauth]` attribute"),
            "{error}"
        );
    }

    #[test]
    fn rejects_methods() {
        let error = error(
            quote!(scope = "a"),
            quote!(
                #[get("/")]
                fn f(&self) {}
            ),
        );
        assert!(error.contains("free functions"), "{error}");
    }

    #[test]
    fn reports_argument_and_item_errors_together() {
        let error = error(
            quote!(scope = ""),
            quote!(
                struct S;
            ),
        );
        assert!(error.contains("at least one scope token"), "{error}");
        assert!(
            error.contains("can only be used on Rocket route handler functions"),
            "{error}"
        );
    }
}
