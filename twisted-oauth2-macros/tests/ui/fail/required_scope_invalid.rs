// `required_scope!` checks its scope in a constant: a bad scope fails to compile, naming it.
twisted_oauth2::required_scope!(Spaced = "read  write");
twisted_oauth2::required_scope!(pub Quoted = "a\"b");
twisted_oauth2::required_scope!(Empty = "");

fn main() {}
