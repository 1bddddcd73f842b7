//! The hidden marker type does not take the handler's visibility: a `pub` handler in a module
//! used from outside, `pub(crate)` and private handlers, and handlers defined inside a `fn`
//! body and by `macro_rules!` all compile without warnings, and the marker stays private to the
//! module the handler is written in (see `fail/marker_private.rs`).
#![deny(warnings)]

pub mod api {
    use rocket::get;
    use twisted_oauth2::oauth;

    /// A public handler.
    #[oauth(scope = "notes:read")]
    #[get("/notes")]
    pub fn list() -> &'static str {
        "notes"
    }

    /// A crate-visible handler.
    #[oauth(scope = "notes:write")]
    #[get("/notes/new")]
    pub(crate) fn new_note() -> &'static str {
        "new"
    }

    #[oauth(scope = "admin")]
    #[get("/admin")]
    fn admin() -> &'static str {
        "admin"
    }

    /// Routes of this module, including the private handler.
    pub fn routes() -> Vec<rocket::Route> {
        rocket::routes![admin]
    }

    pub mod nested {
        use rocket::get;
        use twisted_oauth2::oauth;

        /// A public handler two modules down.
        #[oauth(scope = "a")]
        #[get("/nested")]
        pub fn item() -> &'static str {
            "item"
        }

        /// A handler restricted to the parent module.
        #[oauth(scope = "b")]
        #[get("/nested/super")]
        pub(super) fn for_parent() -> &'static str {
            "parent"
        }

        /// A handler restricted to a path.
        #[oauth(scope = "b")]
        #[get("/nested/in")]
        pub(in crate::api) fn for_api() -> &'static str {
            "in"
        }
    }

    /// Routes restricted to this module.
    pub fn nested_routes() -> Vec<rocket::Route> {
        rocket::routes![nested::for_parent, nested::for_api]
    }
}

macro_rules! public_route {
    ($name:ident, $path:literal, $scope:literal) => {
        /// A handler made by a macro.
        #[twisted_oauth2::oauth(scope = $scope)]
        #[rocket::get($path)]
        pub fn $name() -> &'static str {
            stringify!($name)
        }
    };
}

/// Handlers made by `macro_rules!` in a public module.
pub mod generated {
    public_route!(first, "/first", "read");
    public_route!(second, "/second", "read write");
}

fn local_routes() -> Vec<rocket::Route> {
    use rocket::get;
    use twisted_oauth2::oauth;

    #[oauth(scope = "local")]
    #[get("/local")]
    pub fn local() -> &'static str {
        "local"
    }

    #[oauth(scope = "local")]
    #[get("/local-private")]
    fn local_private() -> &'static str {
        "local"
    }

    rocket::routes![local, local_private]
}

fn main() {
    let _rocket = rocket::build()
        .mount(
            "/",
            rocket::routes![
                api::list,
                api::new_note,
                api::nested::item,
                generated::first,
                generated::second
            ],
        )
        .mount("/api", api::routes())
        .mount("/api", api::nested_routes())
        .mount("/local", local_routes());
}
