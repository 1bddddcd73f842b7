//! Compile-time check of the scope string against RFC 6749 §3.3:
//!
//! ```text
//! scope       = scope-token *( SP scope-token )
//! scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
//! ```

use syn::LitStr;

const EMPTY: &str = "`scope` must list at least one scope token, e.g. `scope = \"read\"`";
const LEADING_SPACE: &str = "`scope` must not start with a space";
const TRAILING_SPACE: &str = "`scope` must not end with a space";
const TOKEN_CHARS: &str =
    "RFC 6749 §3.3 scope tokens are printable ASCII characters other than space, `\"` and `\\`";

/// Checks the literal's value and returns it with repeated scope tokens removed, keeping the
/// first occurrence of each. Errors are spanned at the literal.
pub(crate) fn normalise(lit: &LitStr) -> syn::Result<LitStr> {
    let scope = check(&lit.value()).map_err(|message| syn::Error::new(lit.span(), message))?;
    Ok(LitStr::new(&scope, lit.span()))
}

/// The string-level check behind [`normalise`]; the error is the message to show.
fn check(scope: &str) -> Result<String, String> {
    if scope.is_empty() {
        return Err(EMPTY.to_owned());
    }
    if scope.starts_with(' ') {
        return Err(LEADING_SPACE.to_owned());
    }
    if scope.ends_with(' ') {
        return Err(TRAILING_SPACE.to_owned());
    }
    let mut tokens: Vec<&str> = Vec::new();
    let mut previous = "";
    for token in scope.split(' ') {
        if token.is_empty() {
            return Err(format!(
                "scope tokens must be separated by a single space, found two or more spaces after `{}`",
                previous.escape_debug()
            ));
        }
        if let Some(bad) = token.chars().find(|&c| !is_scope_token_char(c)) {
            return Err(format!(
                "invalid character {} in scope token `{}`\nhelp: {TOKEN_CHARS}",
                describe(bad),
                token.escape_debug()
            ));
        }
        if !tokens.contains(&token) {
            tokens.push(token);
        }
        previous = token;
    }
    Ok(tokens.join(" "))
}

/// `%x21 / %x23-5B / %x5D-7E`
fn is_scope_token_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

fn describe(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("`{c}`")
    } else if c.is_ascii() {
        format!("`{}` (U+{:04X})", c.escape_debug(), u32::from(c))
    } else {
        format!("`{c}` (U+{:04X}, not ASCII)", u32::from(c))
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    /// Scope strings on both sides of the RFC 6749 §3.3 grammar, shared by the compile-time
    /// check of `#[oauth]` and the runtime's `is_valid_scope` / `Scope::parse` (the runtime is a
    /// dev-dependency of this crate).
    const VALID: &[&str] = &[
        "a",
        "read write",
        "VIEW_CLOCK profile",
        "a b a",
        "https://api.example/x?y=z#f",
        "!#$%&'()*+,-./:;<=>?@[]^_`{|}~",
        "urn:ietf:params:oauth:scope:x notes:read",
        "0",
    ];
    const INVALID: &[&str] = &[
        "",
        " ",
        "  ",
        " a",
        "a ",
        "a  b",
        "a\tb",
        "a\nb",
        "a\"b",
        "a\\b",
        "caf\u{e9}",
        "\u{7f}",
        "a\u{0}",
        "\u{a0}",
        "a\r\nb",
    ];

    fn runtime_accepts(scope: &str) -> bool {
        let valid = twisted_oauth2::scope::is_valid_scope(scope);
        assert_eq!(
            valid,
            twisted_oauth2::Scope::parse(scope).is_ok(),
            "the runtime's two checks disagree on {scope:?}"
        );
        valid
    }

    #[test]
    fn compile_time_and_runtime_grammars_agree_on_the_shared_table() {
        for scope in VALID {
            assert!(check(scope).is_ok(), "macro refuses {scope:?}");
            assert!(runtime_accepts(scope), "runtime refuses {scope:?}");
        }
        for scope in INVALID {
            assert!(check(scope).is_err(), "macro accepts {scope:?}");
            assert!(!runtime_accepts(scope), "runtime accepts {scope:?}");
        }
    }

    #[test]
    fn compile_time_and_runtime_grammars_agree_on_every_short_string() {
        // Every string of up to three characters over an alphabet with a token character of
        // each range, the separators and characters outside the grammar.
        let alphabet = [
            'a', '!', '~', '#', ' ', '"', '\\', '\t', '\u{7f}', '\u{e9}', '\u{0}',
        ];
        let mut strings = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|prefix| alphabet.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
            strings.extend(last.iter().cloned());
        }
        assert_eq!(strings.len(), 1 + 11 + 121 + 1331);
        for scope in &strings {
            let compile_time = check(scope);
            assert_eq!(
                compile_time.is_ok(),
                runtime_accepts(scope),
                "the grammars disagree on {scope:?}: macro says {compile_time:?}"
            );
            if let Ok(normalised) = compile_time {
                // Dropping repeated tokens keeps the runtime's set of tokens.
                assert_eq!(
                    twisted_oauth2::Scope::parse(&normalised),
                    twisted_oauth2::Scope::parse(scope)
                );
            }
        }
    }

    #[test]
    fn accepts_single_space_separated_tokens_in_given_order() {
        assert_eq!(
            check("VIEW_CLOCK profile"),
            Ok("VIEW_CLOCK profile".to_owned())
        );
        assert_eq!(check("b a"), Ok("b a".to_owned()));
    }

    #[test]
    fn accepts_every_char_of_the_token_grammar() {
        let all: String = (0x21u8..=0x7E)
            .filter(|&b| b != b'"' && b != b'\\')
            .map(char::from)
            .collect();
        assert_eq!(check(&all), Ok(all.clone()));
    }

    #[test]
    fn drops_repeated_tokens_keeping_the_first() {
        assert_eq!(check("a b a c b"), Ok("a b c".to_owned()));
    }

    #[test]
    fn rejects_empty_scope() {
        assert!(check("").unwrap_err().contains("at least one scope token"));
    }

    #[test]
    fn rejects_leading_trailing_and_repeated_spaces() {
        assert!(check(" a")
            .unwrap_err()
            .contains("must not start with a space"));
        assert!(check("a ")
            .unwrap_err()
            .contains("must not end with a space"));
        assert!(check(" ")
            .unwrap_err()
            .contains("must not start with a space"));
        let err = check("a  b").unwrap_err();
        assert!(
            err.contains("single space") && err.contains("after `a`"),
            "{err}"
        );
    }

    #[test]
    fn rejects_quote_backslash_control_and_non_ascii_chars_naming_them() {
        let err = check("ok a\"b").unwrap_err();
        assert!(
            err.contains("invalid character `\"` in scope token `a\\\"b`"),
            "{err}"
        );
        let err = check("a\\b").unwrap_err();
        assert!(
            err.contains("invalid character `\\` in scope token `a\\\\b`"),
            "{err}"
        );
        let err = check("a\tb").unwrap_err();
        assert!(err.contains("`\\t` (U+0009)"), "{err}");
        let err = check("é").unwrap_err();
        assert!(err.contains("`é` (U+00E9, not ASCII)"), "{err}");
        assert!(check("a\u{7f}").unwrap_err().contains("U+007F"));
    }
}
