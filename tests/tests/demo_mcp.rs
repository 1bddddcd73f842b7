//! The demo's MCP endpoint (`POST /mcp`, Streamable HTTP, JSON answers only): protected like
//! `/clock` by `VIEW_CLOCK`, one JSON-RPC message per request, one tool reading the clock.

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{json, Value};

async fn demo() -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"));
    Client::untracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("the demo ignites")
}

/// A `VIEW_CLOCK` access token of the demo's service client (client credentials).
async fn token(c: &Client) -> String {
    let r = c
        .post("/oauth2/token")
        .header(ContentType::Form)
        // demo-svc:secret
        .header(Header::new("Authorization", "Basic ZGVtby1zdmM6c2VjcmV0"))
        .body("grant_type=client_credentials&scope=VIEW_CLOCK")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    v["access_token"].as_str().expect("access_token").to_owned()
}

async fn post<'c>(c: &'c Client, token: &str, body: impl Into<String>) -> LocalResponse<'c> {
    c.post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Accept", "application/json, text/event-stream"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .body(body.into())
        .dispatch()
        .await
}

/// Posts one message and returns the status and the JSON answer (checking its media type).
async fn rpc(c: &Client, token: &str, message: Value) -> (Status, Value) {
    let r = post(c, token, message.to_string()).await;
    let status = r.status();
    assert_eq!(r.content_type(), Some(ContentType::JSON), "{message}");
    let v = serde_json::from_str(&r.into_string().await.unwrap()).expect("JSON");
    (status, v)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[rocket::async_test]
async fn mcp_without_a_token_gets_the_challenge_pointing_at_the_resource_metadata() {
    let c = demo().await;
    let r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let challenge = r.headers().get_one("WWW-Authenticate").expect("challenge");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("scope=\"VIEW_CLOCK\""), "{challenge}");
    assert!(
        challenge.contains(
            "resource_metadata=\"http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );

    let r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Authorization", "Bearer not-a-token"))
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let challenge = r.headers().get_one("WWW-Authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[rocket::async_test]
async fn mcp_is_listed_in_the_protected_resource_scopes_with_the_clock() {
    let c = demo().await;
    let doc: Value = serde_json::from_str(
        &c.get("/.well-known/oauth-protected-resource")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["scopes_supported"], json!(["VIEW_CLOCK"]));
}

#[rocket::async_test]
async fn initialize_answers_the_requested_version_with_the_tools_capability() {
    let c = demo().await;
    let t = token(&c).await;
    for version in ["2025-11-25", "2025-06-18", "2025-03-26"] {
        let (s, v) = rpc(
            &c,
            &t,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}}}),
        )
        .await;
        assert_eq!(s, Status::Ok);
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], 1);
        assert_eq!(v["result"]["protocolVersion"], version);
        assert!(v["result"]["capabilities"]["tools"].is_object(), "{v}");
        assert_eq!(v["result"]["serverInfo"]["name"], "twisted-oauth2-demo");
    }
}

#[rocket::async_test]
async fn initialize_with_an_unknown_version_answers_the_newest_supported() {
    let c = demo().await;
    let t = token(&c).await;
    let (s, v) = rpc(
        &c,
        &t,
        json!({"jsonrpc": "2.0", "id": "a", "method": "initialize", "params": {
            "protocolVersion": "1999-01-01", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await;
    assert_eq!(s, Status::Ok);
    assert_eq!(v["id"], "a");
    assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
}

#[rocket::async_test]
async fn notifications_are_accepted_with_202_and_no_body() {
    let c = demo().await;
    let t = token(&c).await;
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "id": 7, "result": {}}),
    ] {
        let r = post(&c, &t, message.to_string()).await;
        assert_eq!(r.status(), Status::Accepted, "{message}");
        assert_eq!(r.into_string().await.unwrap_or_default(), "", "{message}");
    }
}

#[rocket::async_test]
async fn ping_answers_an_empty_result() {
    let c = demo().await;
    let t = token(&c).await;
    let (s, v) = rpc(&c, &t, json!({"jsonrpc": "2.0", "id": 2, "method": "ping"})).await;
    assert_eq!(s, Status::Ok);
    assert_eq!(v, json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
}

#[rocket::async_test]
async fn tools_list_offers_get_time_taking_an_empty_object() {
    let c = demo().await;
    let t = token(&c).await;
    let (s, v) = rpc(
        &c,
        &t,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}),
    )
    .await;
    assert_eq!(s, Status::Ok);
    let tools = v["result"]["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 1, "{v}");
    assert_eq!(tools[0]["name"], "get_time");
    assert_eq!(tools[0]["inputSchema"]["type"], "object");
    assert_eq!(tools[0]["inputSchema"]["properties"], json!({}));
    assert!(tools[0]["description"].is_string());
}

#[rocket::async_test]
async fn tools_call_get_time_returns_the_clock_as_text() {
    let c = demo().await;
    let t = token(&c).await;
    let before = unix_now();
    let (s, v) = rpc(
        &c,
        &t,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
               "params": {"name": "get_time", "arguments": {}}}),
    )
    .await;
    let after = unix_now();
    assert_eq!(s, Status::Ok);
    assert_eq!(v["result"]["isError"], false);
    let content = v["result"]["content"].as_array().expect("content");
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let text = content[0]["text"].as_str().unwrap();
    let secs: u64 = text
        .strip_prefix("The demo clock reads ")
        .and_then(|r| r.strip_suffix(" (Unix time)."))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("clock text: {text}"));
    assert!(
        (before..=after).contains(&secs),
        "{secs} in {before}..={after}"
    );

    // Without `arguments` the call is the same.
    let (s, v) = rpc(
        &c,
        &t,
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "get_time"}}),
    )
    .await;
    assert_eq!(s, Status::Ok);
    assert_eq!(v["result"]["content"][0]["type"], "text");
}

#[rocket::async_test]
async fn tools_call_of_an_unknown_tool_or_with_arguments_is_invalid_params() {
    let c = demo().await;
    let t = token(&c).await;
    for params in [
        json!({"name": "rm_rf"}),
        json!({}),
        json!({"name": "get_time", "arguments": {"zone": "UTC"}}),
        json!({"name": "get_time", "arguments": [1]}),
    ] {
        let (s, v) = rpc(
            &c,
            &t,
            json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": params}),
        )
        .await;
        assert_eq!(s, Status::Ok, "{params}");
        assert_eq!(v["id"], 6);
        assert_eq!(v["error"]["code"], -32602, "{params}: {v}");
        assert!(v.get("result").is_none());
    }
}

#[rocket::async_test]
async fn an_unknown_method_is_method_not_found() {
    let c = demo().await;
    let t = token(&c).await;
    for method in ["resources/list", "prompts/get", "server/discover", ""] {
        let (s, v) = rpc(&c, &t, json!({"jsonrpc": "2.0", "id": 8, "method": method})).await;
        assert_eq!(s, Status::Ok);
        assert_eq!(v["id"], 8);
        assert_eq!(v["error"]["code"], -32601, "{method}");
    }
}

#[rocket::async_test]
async fn malformed_json_is_a_parse_error_with_400() {
    let c = demo().await;
    let t = token(&c).await;
    for body in ["{", "", "not json", "{\"jsonrpc\": \"2.0\",}"] {
        let r = post(&c, &t, body).await;
        assert_eq!(r.status(), Status::BadRequest, "{body:?}");
        assert_eq!(r.content_type(), Some(ContentType::JSON));
        let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], -32700, "{body:?}");
        assert_eq!(v["id"], Value::Null);
    }
}

#[rocket::async_test]
async fn batches_and_messages_that_are_not_json_rpc_requests_are_invalid_requests() {
    let c = demo().await;
    let t = token(&c).await;
    for message in [
        json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]),
        json!([]),
        json!("ping"),
        json!({"id": 1, "method": "ping"}),
        json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1}),
        json!({"jsonrpc": "2.0", "id": 1, "method": 5}),
        json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": [1], "method": "ping"}),
    ] {
        let (s, v) = rpc(&c, &t, message.clone()).await;
        assert_eq!(s, Status::BadRequest, "{message}");
        assert_eq!(v["error"]["code"], -32600, "{message}: {v}");
    }
}

#[rocket::async_test]
async fn a_body_over_the_json_limit_is_refused_with_413() {
    let c = demo().await;
    let t = token(&c).await;
    // The demo's Rocket.toml limits JSON to 16 KiB.
    let padding = "x".repeat(17 * 1024);
    let r = post(
        &c,
        &t,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": padding}})
            .to_string(),
    )
    .await;
    assert_eq!(r.status(), Status::PayloadTooLarge);
    let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
    assert_eq!(v["error"]["code"], -32600);
}

#[rocket::async_test]
async fn a_body_that_is_not_json_media_type_is_refused_with_415() {
    let c = demo().await;
    let t = token(&c).await;
    let r = c
        .post("/mcp")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Bearer {t}")))
        .body("jsonrpc=2.0")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::UnsupportedMediaType);
}

/// Any era: a version this server does not speak is `400` with MCP's
/// `UnsupportedProtocolVersion` (-32022) naming every version it does (both eras), so a
/// client can pick one. The old demo answered -32600 listing only the 2025 versions.
#[rocket::async_test]
async fn an_unsupported_protocol_version_header_is_refused_with_400_and_32022() {
    let c = demo().await;
    let t = token(&c).await;
    for message in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": envelope("1999-01-01")}}),
    ] {
        let r = c
            .post("/mcp")
            .header(ContentType::JSON)
            .header(Header::new("Authorization", format!("Bearer {t}")))
            .header(Header::new("MCP-Protocol-Version", "1999-01-01"))
            .header(Header::new("Mcp-Method", "tools/list"))
            .body(message.to_string())
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::BadRequest);
        assert_eq!(r.content_type(), Some(ContentType::JSON));
        let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
        assert_eq!(v["id"], 1);
        assert_eq!(v["error"]["code"], -32022, "{v}");
        assert_eq!(
            v["error"]["data"]["supported"],
            json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
        );
        assert_eq!(v["error"]["data"]["requested"], "1999-01-01");
    }

    let r = c
        .post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Authorization", format!("Bearer {t}")))
        .header(Header::new("MCP-Protocol-Version", "2025-06-18"))
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
}

#[rocket::async_test]
async fn get_mcp_is_method_not_allowed_naming_post() {
    let c = demo().await;
    for auth in [None, Some(token(&c).await)] {
        let mut req = c
            .get("/mcp")
            .header(Header::new("Accept", "text/event-stream"));
        if let Some(t) = &auth {
            req = req.header(Header::new("Authorization", format!("Bearer {t}")));
        }
        let r = req.dispatch().await;
        assert_eq!(r.status(), Status::MethodNotAllowed);
        assert_eq!(r.headers().get_one("Allow"), Some("POST"));
    }
}

#[rocket::async_test]
async fn mcp_refuses_a_token_issued_for_another_resource() {
    // The demo, told it also issues tokens for another resource server (RFC 8707).
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2.storage", "memory"))
        .merge(("oauth2.resources", ["https://other.example/api"]));
    let c = Client::untracked(twisted_oauth2_demo::rocket(figment))
        .await
        .expect("the demo ignites");
    let token_for = |resource: &'static str| {
        let c = &c;
        async move {
            let r = c
                .post("/oauth2/token")
                .header(ContentType::Form)
                .header(Header::new("Authorization", "Basic ZGVtby1zdmM6c2VjcmV0"))
                .body(format!(
                    "grant_type=client_credentials&scope=VIEW_CLOCK&resource={resource}"
                ))
                .dispatch()
                .await;
            assert_eq!(r.status(), Status::Ok, "{resource}");
            let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string();

    let other = token_for("https%3A%2F%2Fother.example%2Fapi").await;
    let r = post(&c, &other, ping.clone()).await;
    assert_eq!(r.status(), Status::Unauthorized);
    let challenge = r.headers().get_one("WWW-Authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    let own = token_for("http%3A%2F%2F127.0.0.1%3A8000").await;
    assert_eq!(post(&c, &own, ping).await.status(), Status::Ok);
}

#[rocket::async_test]
async fn the_demo_accepts_client_id_metadata_documents_but_never_from_loopback() {
    let c = demo().await;
    let doc: Value = serde_json::from_str(
        &c.get("/.well-known/oauth-authorization-server")
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    assert_eq!(
        doc["registration_endpoint"],
        "http://127.0.0.1:8000/oauth2/register"
    );

    // Without the debug override a client_id on a loopback address is not fetched: the
    // authorization request is refused on the server, never redirected.
    let r = c
        .get(
            "/oauth2/authorize?response_type=code\
             &client_id=https%3A%2F%2F127.0.0.1%3A9%2Fclient.json\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback&scope=VIEW_CLOCK\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        )
        .dispatch()
        .await;
    assert!(
        r.status().code >= 400 && r.status().code < 500,
        "{}",
        r.status()
    );
    assert!(r.headers().get_one("Location").is_none());
    let page = r.into_string().await.unwrap();
    // The cause (a special-use address) is logged; the caller learns nothing about it.
    assert!(
        page.contains("the client metadata document could not be retrieved"),
        "{page}"
    );
    assert!(!page.contains("special-use"), "{page}");
}

#[rocket::async_test]
async fn browser_mcp_clients_may_call_mcp_cross_origin() {
    let c = demo().await;
    let r = c
        .req(rocket::http::Method::Options, "/mcp")
        .header(Header::new("Origin", "http://localhost:6274"))
        .header(Header::new("Access-Control-Request-Method", "POST"))
        .header(Header::new(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent);
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
    let r = c
        .post("/mcp")
        .header(Header::new("Origin", "http://localhost:6274"))
        .header(ContentType::JSON)
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let expose = r
        .headers()
        .get_one("Access-Control-Expose-Headers")
        .unwrap_or_default()
        .to_owned();
    assert!(expose.contains("WWW-Authenticate"), "{expose}");
    assert_eq!(
        r.headers().get_one("Access-Control-Allow-Origin"),
        Some("*")
    );
}

// The stateless revision, 2026-07-28: no `initialize`, every request carries `_meta` and the
// `MCP-Protocol-Version`, `Mcp-Method` (and `Mcp-Name`) headers. The old demo answered every
// one of these requests 400 "unsupported MCP-Protocol-Version" (-32600).

const MODERN: &str = "2026-07-28";

/// The per-request `_meta` of a 2026-07-28 request.
fn envelope(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

/// A 2026-07-28 request: `params` with the envelope added.
fn modern(id: u64, method: &str, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = envelope(MODERN);
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// Posts `message` with a token and exactly the given extra headers.
async fn post_with<'c>(
    c: &'c Client,
    token: &str,
    headers: &[(&'static str, &str)],
    message: &Value,
) -> LocalResponse<'c> {
    let mut req = c
        .post("/mcp")
        .header(ContentType::JSON)
        .header(Header::new("Accept", "application/json, text/event-stream"))
        .header(Header::new("Authorization", format!("Bearer {token}")));
    for (name, value) in headers {
        req = req.header(Header::new(*name, value.to_string()));
    }
    req.body(message.to_string()).dispatch().await
}

/// The status and JSON answer of a request with the given headers; checks the answer is
/// JSON and that no session is ever minted.
async fn modern_rpc(
    c: &Client,
    token: &str,
    headers: &[(&'static str, &str)],
    message: Value,
) -> (Status, Value) {
    let r = post_with(c, token, headers, &message).await;
    let status = r.status();
    assert_eq!(r.content_type(), Some(ContentType::JSON), "{message}");
    assert!(r.headers().get_one("Mcp-Session-Id").is_none());
    let v = serde_json::from_str(&r.into_string().await.unwrap()).expect("JSON");
    (status, v)
}

#[rocket::async_test]
async fn server_discover_in_2026_07_28_answers_versions_capabilities_and_caching_hints() {
    let c = demo().await;
    let t = token(&c).await;
    let (s, v) = modern_rpc(
        &c,
        &t,
        &[
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "server/discover"),
        ],
        modern(1, "server/discover", json!({})),
    )
    .await;
    assert_eq!(s, Status::Ok, "{v}");
    assert_eq!(v["id"], 1);
    let r = &v["result"];
    assert_eq!(
        r["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
    );
    assert!(r["capabilities"]["tools"].is_object(), "{v}");
    assert!(r["ttlMs"].as_u64().is_some(), "{v}");
    assert!(
        matches!(r["cacheScope"].as_str(), Some("private" | "public")),
        "{v}"
    );
    assert_eq!(r["resultType"], "complete");
    // Server info lives in `_meta` in this revision, not in a `serverInfo` member.
    assert!(r.get("serverInfo").is_none(), "{v}");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "twisted-oauth2-demo"
    );
}

#[rocket::async_test]
async fn tools_list_and_call_in_2026_07_28_need_no_initialize_and_no_session() {
    let c = demo().await;
    let t = token(&c).await;
    let (s, v) = modern_rpc(
        &c,
        &t,
        &[
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "tools/list"),
        ],
        modern(2, "tools/list", json!({})),
    )
    .await;
    assert_eq!(s, Status::Ok, "{v}");
    assert_eq!(v["result"]["tools"][0]["name"], "get_time");
    assert_eq!(v["result"]["resultType"], "complete");
    assert!(v["result"]["ttlMs"].as_u64().is_some(), "{v}");

    // Mcp-Name plain and in the base64 sentinel; an incoming session id and an
    // unrecognized Mcp-Param-* header are ignored.
    for name in ["get_time", "=?base64?Z2V0X3RpbWU=?="] {
        let (s, v) = modern_rpc(
            &c,
            &t,
            &[
                ("MCP-Protocol-Version", MODERN),
                ("Mcp-Method", "tools/call"),
                ("Mcp-Name", name),
                ("Mcp-Session-Id", "made-up"),
                ("Mcp-Param-Foo", "bar"),
            ],
            modern(
                3,
                "tools/call",
                json!({"name": "get_time", "arguments": {}}),
            ),
        )
        .await;
        assert_eq!(s, Status::Ok, "{name}: {v}");
        assert_eq!(v["result"]["resultType"], "complete");
        assert_eq!(v["result"]["isError"], false);
        let text = v["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("The demo clock reads "), "{text}");
    }

    // A tool error is invalid params, 400 in this revision.
    let (s, v) = modern_rpc(
        &c,
        &t,
        &[
            ("MCP-Protocol-Version", MODERN),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "rm_rf"),
        ],
        modern(4, "tools/call", json!({"name": "rm_rf"})),
    )
    .await;
    assert_eq!(s, Status::BadRequest);
    assert_eq!(v["error"]["code"], -32602);
}

#[rocket::async_test]
async fn the_protocol_version_header_is_required_and_must_match_meta_else_32020() {
    let c = demo().await;
    let t = token(&c).await;
    let list = modern(5, "tools/list", json!({}));
    let mut legacy_meta = list.clone();
    legacy_meta["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let cases: [(&[(&'static str, &str)], &Value); 4] = [
        // The envelope without the header.
        (&[("Mcp-Method", "tools/list")], &list),
        // The header naming the other era.
        (
            &[
                ("MCP-Protocol-Version", "2025-11-25"),
                ("Mcp-Method", "tools/list"),
            ],
            &list,
        ),
        // The header naming 2026-07-28, `_meta` another.
        (
            &[
                ("MCP-Protocol-Version", MODERN),
                ("Mcp-Method", "tools/list"),
            ],
            &legacy_meta,
        ),
        // Twice.
        (
            &[
                ("MCP-Protocol-Version", MODERN),
                ("MCP-Protocol-Version", MODERN),
                ("Mcp-Method", "tools/list"),
            ],
            &list,
        ),
    ];
    for (headers, message) in cases {
        let (s, v) = modern_rpc(&c, &t, headers, message.clone()).await;
        assert_eq!(s, Status::BadRequest, "{headers:?}: {v}");
        assert_eq!(v["error"]["code"], -32020, "{headers:?}: {v}");
        assert_eq!(v["id"], 5);
    }
}

#[rocket::async_test]
async fn mcp_method_and_mcp_name_are_required_and_checked_against_the_body_else_32020() {
    let c = demo().await;
    let t = token(&c).await;
    let call = modern(6, "tools/call", json!({"name": "get_time"}));
    let v = MODERN;
    let cases: [&[(&'static str, &str)]; 6] = [
        // No Mcp-Method.
        &[("MCP-Protocol-Version", v), ("Mcp-Name", "get_time")],
        // Another method.
        &[
            ("MCP-Protocol-Version", v),
            ("Mcp-Method", "tools/list"),
            ("Mcp-Name", "get_time"),
        ],
        // Method names are case-sensitive.
        &[
            ("MCP-Protocol-Version", v),
            ("Mcp-Method", "Tools/Call"),
            ("Mcp-Name", "get_time"),
        ],
        // No Mcp-Name on tools/call.
        &[("MCP-Protocol-Version", v), ("Mcp-Method", "tools/call")],
        // Another name.
        &[
            ("MCP-Protocol-Version", v),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "rm_rf"),
        ],
        // A malformed base64 sentinel.
        &[
            ("MCP-Protocol-Version", v),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "=?base64?***?="),
        ],
    ];
    for headers in cases {
        let (s, body) = modern_rpc(&c, &t, headers, call.clone()).await;
        assert_eq!(s, Status::BadRequest, "{headers:?}: {body}");
        assert_eq!(body["error"]["code"], -32020, "{headers:?}: {body}");
        assert_eq!(body["id"], 6);
    }
    // Header names are case-insensitive.
    let (s, body) = modern_rpc(
        &c,
        &t,
        &[
            ("mcp-protocol-version", v),
            ("MCP-METHOD", "tools/call"),
            ("mcp-name", "get_time"),
        ],
        call,
    )
    .await;
    assert_eq!(s, Status::Ok, "{body}");
}

#[rocket::async_test]
async fn a_2026_request_without_its_meta_envelope_is_invalid_params_with_400() {
    let c = demo().await;
    let t = token(&c).await;
    let headers: &[(&'static str, &str)] = &[
        ("MCP-Protocol-Version", MODERN),
        ("Mcp-Method", "tools/list"),
    ];
    for message in [
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN}}}),
    ] {
        let (s, v) = modern_rpc(&c, &t, headers, message.clone()).await;
        assert_eq!(s, Status::BadRequest, "{message}");
        assert_eq!(v["error"]["code"], -32602, "{message}: {v}");
    }
}

#[rocket::async_test]
async fn an_unknown_method_in_2026_07_28_is_404_with_32601() {
    let c = demo().await;
    let t = token(&c).await;
    // `initialize` and `ping` do not exist in this revision.
    for method in ["resources/list", "initialize", "ping", "nope"] {
        let (s, v) = modern_rpc(
            &c,
            &t,
            &[("MCP-Protocol-Version", MODERN), ("Mcp-Method", method)],
            modern(8, method, json!({})),
        )
        .await;
        assert_eq!(s, Status::NotFound, "{method}");
        assert_eq!(v["error"]["code"], -32601, "{method}: {v}");
        assert_eq!(v["id"], 8);
    }
}

#[rocket::async_test]
async fn notifications_in_2026_07_28_get_202_without_a_body() {
    let c = demo().await;
    let t = token(&c).await;
    for message in [
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "method": "notifications/whatever"}),
    ] {
        let r = post_with(
            &c,
            &t,
            &[
                ("MCP-Protocol-Version", MODERN),
                ("Mcp-Method", message["method"].as_str().unwrap()),
            ],
            &message,
        )
        .await;
        assert_eq!(r.status(), Status::Accepted, "{message}");
        assert_eq!(r.into_string().await.unwrap_or_default(), "", "{message}");
    }
}

#[rocket::async_test]
async fn malformed_json_in_2026_07_28_is_a_json_parse_error() {
    let c = demo().await;
    let t = token(&c).await;
    for body in ["{", "not json", ""] {
        let r = c
            .post("/mcp")
            .header(ContentType::JSON)
            .header(Header::new("Authorization", format!("Bearer {t}")))
            .header(Header::new("MCP-Protocol-Version", MODERN))
            .header(Header::new("Mcp-Method", "tools/list"))
            .body(body)
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::BadRequest, "{body:?}");
        assert_eq!(r.content_type(), Some(ContentType::JSON), "{body:?}");
        let v: Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], -32700, "{body:?}");
        assert_eq!(v["id"], Value::Null);
    }
}

#[rocket::async_test]
async fn get_and_delete_mcp_are_405_in_both_eras() {
    let c = demo().await;
    let t = token(&c).await;
    for version in [None, Some("2025-11-25"), Some(MODERN)] {
        for method in [rocket::http::Method::Get, rocket::http::Method::Delete] {
            let mut req = c
                .req(method, "/mcp")
                .header(Header::new("Authorization", format!("Bearer {t}")))
                .header(Header::new("Mcp-Session-Id", "made-up"));
            if let Some(v) = version {
                req = req.header(Header::new("MCP-Protocol-Version", v));
            }
            let r = req.dispatch().await;
            assert_eq!(r.status(), Status::MethodNotAllowed, "{method} {version:?}");
            assert_eq!(r.headers().get_one("Allow"), Some("POST"));
        }
    }
}

#[rocket::async_test]
async fn browser_mcp_clients_may_send_the_2026_headers() {
    let c = demo().await;
    let r = c
        .req(rocket::http::Method::Options, "/mcp")
        .header(Header::new("Origin", "http://localhost:6274"))
        .header(Header::new("Access-Control-Request-Method", "POST"))
        .header(Header::new(
            "Access-Control-Request-Headers",
            "authorization,content-type,mcp-method,mcp-name,mcp-param-foo,mcp-protocol-version",
        ))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent);
    let allowed: Vec<String> = r
        .headers()
        .get_one("Access-Control-Allow-Headers")
        .unwrap()
        .split(',')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for name in [
        "authorization",
        "content-type",
        "mcp-method",
        "mcp-name",
        "mcp-param-foo",
        "mcp-protocol-version",
    ] {
        assert!(allowed.iter().any(|a| a == name), "{name}: {allowed:?}");
    }
}
