//! The demo's own `/login` counts failed sign-ins with the library's public limiter
//! (`twisted_oauth2::limits::FailureLimit`, in the server's counter store): a guessing loop
//! from one address is stopped with `429` and `Retry-After` before the password is checked,
//! the right password from another address still signs the user in, and one address
//! spraying many user names meets its own limit. The form fields (`username`, `password`)
//! and the route are the demo's public contract and unchanged.

mod common;

use std::net::SocketAddr;

use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

async fn demo() -> Client {
    Client::untracked(twisted_oauth2_demo::rocket(common::demo_figment(8000)))
        .await
        .expect("demo ignites")
}

async fn sign_in<'c>(c: &'c Client, from: &str, user: &str, password: &str) -> LocalResponse<'c> {
    let peer: SocketAddr = format!("{from}:40000").parse().unwrap();
    c.post("/login")
        .remote(peer)
        .header(ContentType::Form)
        .body(format!("username={user}&password={password}&next=%2F"))
        .dispatch()
        .await
}

#[rocket::async_test]
async fn a_password_guessing_loop_on_login_is_stopped_and_the_right_password_from_another_address_works(
) {
    let c = demo().await;
    let max = twisted_oauth2_demo::LOGIN_LIMIT.per_address.max;
    for i in 0..max {
        let r = sign_in(&c, "198.51.100.7", "alice", &format!("guess{i}")).await;
        assert_eq!(r.status(), Status::Ok, "attempt {i}: the form again");
    }
    // Stopped, even with the right password, before it is checked.
    let r = sign_in(&c, "198.51.100.7", "alice", "wonderland").await;
    assert_eq!(r.status(), Status::TooManyRequests);
    let wait: u64 = r
        .headers()
        .get_one("Retry-After")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.headers().get_one("Set-Cookie").is_none(), "not signed in");
    // The stranger did not lock alice out: from her own address she signs in.
    let r = sign_in(&c, "203.0.113.20", "alice", "wonderland").await;
    assert_eq!(r.status(), Status::SeeOther);
    assert!(r
        .headers()
        .get_one("Set-Cookie")
        .is_some_and(|v| v.starts_with("demo_session=")));
}

#[rocket::async_test]
async fn one_address_trying_many_user_names_is_stopped() {
    let c = demo().await;
    let max = twisted_oauth2_demo::LOGIN_LIMIT.address.max;
    for i in 0..max {
        let r = sign_in(&c, "198.51.100.8", &format!("user{i}"), "password").await;
        assert_eq!(r.status(), Status::Ok, "attempt {i}");
    }
    let r = sign_in(&c, "198.51.100.8", "bob", "builder").await;
    assert_eq!(r.status(), Status::TooManyRequests);
    let r = sign_in(&c, "203.0.113.21", "bob", "builder").await;
    assert_eq!(r.status(), Status::SeeOther, "another address signs in");
}
