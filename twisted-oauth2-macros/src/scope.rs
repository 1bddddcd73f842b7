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
