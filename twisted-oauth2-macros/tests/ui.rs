//! Compile-time behaviour of `#[oauth]`: handlers that must compile (and run their `main`), and
//! the diagnostics for misuse. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p twisted-oauth2-macros --test ui`, then read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
