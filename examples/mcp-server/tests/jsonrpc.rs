//! The example's `/mcp` over Rocket's local client: JSON-RPC edge cases in both MCP eras
//! (202 for notifications, -32700 for a parse error, 405 for GET and DELETE, the version
//! errors), the two tools, and the step-up challenge of `server_stats`.

use rocket::figment::providers::Format as _;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};

/// The example's Rocket.toml with a memory store and a service client for tokens without a
/// browser (the flow through the sign-in is the SDK clients' part, tests/mcp_server_example.sh).
async fn app() -> Client {
    let figment = rocket::Config::figment()
        .merge(
            rocket::figment::providers::Toml::file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/Rocket.toml"
            ))
            .nested(),
        )
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"))
        .merge((
            "oauth2.clients",
            [json!({"id": "svc", "secret": "svc-secret", "grant_types": ["client_credentials"]})],
        ));
    Client::untracked(twisted_oauth2_mcp_server::rocket(figment))
        .await
        .expect("the example launches")
}

async fn token(client: &Client, scope: &str) -> String {
    let r = client
        .post("/oauth2/token")
        .header(ContentType::Form)
        .body(format!(
            "grant_type=client_credentials&client_id=svc&client_secret=svc-secret&scope={}&resource=http%3A%2F%2F127.0.0.1%3A8080%2Fmcp",
            scope.replace(' ', "+")
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v: Value = r.into_json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn post<'c>(
    client: &'c Client,
    token: &str,
    headers: &[(&'static str, &str)],
    body: &str,
) -> LocalResponse<'c> {
    let mut req = client
        .post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .body(body);
    for (k, v) in headers {
        req = req.header(Header::new(*k, v.to_string()));
    }
    req.dispatch().await
}

const LEGACY: &[(&str, &str)] = &[("MCP-Protocol-Version", "2025-11-25")];

fn modern(method: &'static str, name: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if let Some(n) = name {
        h.push(("Mcp-Name", n));
    }
    h
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

#[rocket::async_test]
async fn without_a_token_the_challenge_names_the_mcp_resource_metadata() {
    let c = app().await;
    let r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let challenge = r.headers().get_one("WWW-Authenticate").unwrap();
    assert!(
        challenge.contains(
            r#"resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp""#
        ),
        "{challenge}"
    );
    let prm: Value = c
        .get("/.well-known/oauth-protected-resource/mcp")
        .dispatch()
        .await
        .into_json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], "http://127.0.0.1:8080/mcp");
    let asm: Value = c
        .get("/.well-known/oauth-authorization-server")
        .dispatch()
        .await
        .into_json()
        .await
        .unwrap();
    assert_eq!(
        asm["authorization_endpoint"],
        "http://127.0.0.1:8080/oauth2/authorize"
    );
    assert_eq!(
        asm["registration_endpoint"],
        "http://127.0.0.1:8080/oauth2/register"
    );
    assert_eq!(asm["client_id_metadata_document_supported"], true);
}

#[rocket::async_test]
async fn notifications_are_202_without_a_body_in_both_eras() {
    let c = app().await;
    let t = token(&c, "mcp:tools").await;
    let r = post(
        &c,
        &t,
        LEGACY,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(r.status(), Status::Accepted);
    assert_eq!(r.into_string().await.unwrap_or_default(), "");
    let body =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"_meta": meta()}});
    let r = post(
        &c,
        &t,
        &modern("notifications/cancelled", None),
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status(), Status::Accepted);
    assert_eq!(r.into_string().await.unwrap_or_default(), "");
    // A client's response to a request of ours is accepted too.
    let r = post(&c, &t, LEGACY, r#"{"jsonrpc":"2.0","id":7,"result":{}}"#).await;
    assert_eq!(r.status(), Status::Accepted);
}

#[rocket::async_test]
async fn a_body_that_is_not_json_is_a_parse_error_in_json() {
    let c = app().await;
    let t = token(&c, "mcp:tools").await;
    for headers in [LEGACY.to_vec(), modern("tools/list", None)] {
        let r = post(&c, &t, &headers, "{not json").await;
        assert_eq!(r.status(), Status::BadRequest);
        assert_eq!(r.content_type(), Some(ContentType::JSON));
        let v: Value = r.into_json().await.unwrap();
        assert_eq!(v["error"]["code"], -32700);
        assert_eq!(v["id"], Value::Null);
    }
}

#[rocket::async_test]
async fn get_and_delete_are_405_allowing_post() {
    let c = app().await;
    for r in [
        c.get("/mcp").dispatch().await,
        c.delete("/mcp").dispatch().await,
    ] {
        assert_eq!(r.status(), Status::MethodNotAllowed);
        assert_eq!(r.headers().get_one("Allow"), Some("POST"));
    }
}

#[rocket::async_test]
async fn the_handshake_era_initializes_lists_and_calls() {
    let c = app().await;
    let t = token(&c, "mcp:tools").await;
    let r = post(&c, &t, &[], r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).await;
    let v: Value = r.into_json().await.unwrap();
    assert_eq!(v["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        v["result"]["serverInfo"]["name"],
        "twisted-oauth2-mcp-server"
    );
    let r = post(
        &c,
        &t,
        LEGACY,
        r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#,
    )
    .await;
    let v: Value = r.into_json().await.unwrap();
    let names: Vec<&str> = v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["greet", "server_stats"]);
    let r = post(&c, &t, LEGACY, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada"}}}"#).await;
    let v: Value = r.into_json().await.unwrap();
    assert_eq!(v["id"], 2);
    assert_eq!(
        v["result"]["content"][0]["text"],
        "Hello, Ada! Signed in as nobody, through the client svc."
    );
    // Unknown method and bad params are JSON-RPC errors.
    let r = post(
        &c,
        &t,
        LEGACY,
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/list"}"#,
    )
    .await;
    assert_eq!(
        r.into_json::<Value>().await.unwrap()["error"]["code"],
        -32601
    );
    let r = post(
        &c,
        &t,
        LEGACY,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"greet"}}"#,
    )
    .await;
    assert_eq!(
        r.into_json::<Value>().await.unwrap()["error"]["code"],
        -32602
    );
    // A batch is refused.
    let r = post(
        &c,
        &t,
        LEGACY,
        r#"[{"jsonrpc":"2.0","id":5,"method":"ping"}]"#,
    )
    .await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_eq!(
        r.into_json::<Value>().await.unwrap()["error"]["code"],
        -32600
    );
}

#[rocket::async_test]
async fn the_stateless_era_discovers_and_checks_headers_against_the_body() {
    let c = app().await;
    let t = token(&c, "mcp:tools").await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta()}});
    let r = post(&c, &t, &modern("server/discover", None), &body.to_string()).await;
    assert_eq!(r.status(), Status::Ok);
    let v: Value = r.into_json().await.unwrap();
    assert_eq!(v["result"]["supportedVersions"][0], "2026-07-28");
    assert_eq!(v["result"]["resultType"], "complete");
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "greet", "arguments": {"name": "Ada"}, "_meta": meta()}});
    let r = post(
        &c,
        &t,
        &modern("tools/call", Some("greet")),
        &call.to_string(),
    )
    .await;
    assert_eq!(r.status(), Status::Ok);
    let v: Value = r.into_json().await.unwrap();
    assert!(v["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Hello, Ada!"));
    // Mcp-Name disagreeing with the body, Mcp-Method missing, _meta missing.
    let r = post(
        &c,
        &t,
        &modern("tools/call", Some("server_stats")),
        &call.to_string(),
    )
    .await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_eq!(
        r.into_json::<Value>().await.unwrap()["error"]["code"],
        -32020
    );
    let r = post(
        &c,
        &t,
        &[("MCP-Protocol-Version", "2026-07-28")],
        &call.to_string(),
    )
    .await;
    assert_eq!(
        r.into_json::<Value>().await.unwrap()["error"]["code"],
        -32020
    );
    let bare = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}"#;
    let r = post(&c, &t, &modern("tools/list", None), bare).await;
    assert_eq!(
        r.into_json::<Value>().await.unwrap()["error"]["code"],
        -32602
    );
    // initialize does not exist in this revision.
    let init =
        json!({"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": {"_meta": meta()}});
    let r = post(&c, &t, &modern("initialize", None), &init.to_string()).await;
    assert_eq!(r.status(), Status::NotFound);
    // An unknown version names the versions served.
    let r = post(&c, &t, &[("MCP-Protocol-Version", "2024-01-01")], bare).await;
    assert_eq!(r.status(), Status::BadRequest);
    let v: Value = r.into_json().await.unwrap();
    assert_eq!(v["error"]["code"], -32022);
    assert_eq!(v["error"]["data"]["supported"][1], "2025-11-25");
}

#[rocket::async_test]
async fn server_stats_without_mcp_admin_is_a_step_up_challenge() {
    let c = app().await;
    let t = token(&c, "mcp:tools").await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"server_stats"}}"#;
    let r = post(&c, &t, LEGACY, call).await;
    assert_eq!(r.status(), Status::Forbidden);
    let challenge = r.headers().get_one("WWW-Authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="mcp:tools mcp:admin""#),
        "{challenge}"
    );
    assert!(
        challenge.contains("/.well-known/oauth-protected-resource/mcp"),
        "{challenge}"
    );
    // With the wider token it answers.
    let admin = token(&c, "mcp:tools mcp:admin").await;
    let r = post(&c, &admin, LEGACY, call).await;
    assert_eq!(r.status(), Status::Ok);
    let v: Value = r.into_json().await.unwrap();
    assert!(
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("tool calls"),
        "{v}"
    );
}

#[rocket::async_test]
async fn a_test_client_registers_itself_and_calls_a_tool_as_a_user() {
    // The example's own configuration: registration only, no configured client.
    let figment = rocket::Config::figment()
        .merge(
            rocket::figment::providers::Toml::file(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/Rocket.toml"
            ))
            .nested(),
        )
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"));
    let c = Client::untracked(twisted_oauth2_mcp_server::rocket(figment))
        .await
        .unwrap();
    let oauth = twisted_oauth2::testing::TestClient::new(&c).resource("http://127.0.0.1:8080/mcp");
    let tokens = oauth
        .user_token("alice", "mcp:tools")
        .await
        .expect("a token");
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada"}}}"#;
    let r = post(&c, &tokens.access_token, LEGACY, call).await;
    assert_eq!(r.status(), Status::Ok);
    let v: Value = r.into_json().await.unwrap();
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hello, Ada! Signed in as alice, through the client "),
        "{text}"
    );
    // The step-up tool wants mcp:admin; a user token with it answers.
    let admin = oauth
        .user_token("alice", "mcp:tools mcp:admin")
        .await
        .expect("a token");
    let stats =
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"server_stats"}}"#;
    assert_eq!(
        post(&c, &tokens.access_token, LEGACY, stats).await.status(),
        Status::Forbidden
    );
    assert_eq!(
        post(&c, &admin.access_token, LEGACY, stats).await.status(),
        Status::Ok
    );
}
