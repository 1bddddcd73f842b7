//! The stateless revision, 2026-07-28: no `initialize` and no session; every request is
//! self-contained. The checks, in order (the first failure answers):
//!
//! 1. the body is one request or notification object; a notification is `202` without a
//!    body; a request has a string or integer `id`, `jsonrpc: "2.0"` and a string `method`
//!    (else `400`, `-32600`; clients send no responses in this revision);
//! 2. `params._meta` carries `io.modelcontextprotocol/protocolVersion` and
//!    `io.modelcontextprotocol/clientCapabilities` (else `400`, `-32602`);
//! 3. the headers match the body: `MCP-Protocol-Version` equals `_meta`'s version,
//!    `Mcp-Method` equals `method`, and for `tools/call`, `resources/read` and
//!    `prompts/get` `Mcp-Name` equals `params.name` (or `params.uri`) after decoding a
//!    `=?base64?…?=` value; a missing or repeated header fails too (`400`, `-32020`);
//! 4. the method: `server/discover`, `tools/list`, `tools/call`; any other is `404` with
//!    `-32601` (`initialize` and `ping` do not exist in this revision).
//!
//! Results carry `resultType: "complete"` and the server's identity in
//! `_meta["io.modelcontextprotocol/serverInfo"]`; `server/discover` and `tools/list` add
//! the caching hints `ttlMs` and `cacheScope` (`private`: the endpoint is protected, so a
//! shared cache must not answer another token with it). The one tool declares no
//! `x-mcp-header` parameter, so no `Mcp-Param-*` header is recognized and any sent is
//! ignored, as the revision says of unrecognized ones.

use base64::Engine as _;
use rocket::http::Status;
use serde_json::{json, Map, Value};

use super::{
    call_tool, error, header_mismatch, server_info, tool, valid_id, McpHeaders, McpReply,
    HEADER_MISMATCH, INSTRUCTIONS, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    PROTOCOL_VERSIONS, PROTOCOL_VERSION_META, UNSUPPORTED_PROTOCOL_VERSION,
};

/// The `_meta` key of the client's capabilities (required on every request).
pub const CLIENT_CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";

/// The `_meta` key of a result's server identity.
pub const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";

/// How long a client may reuse the `server/discover` and `tools/list` results: the demo's
/// tool set never changes while it runs.
const TTL_MS: u64 = 60_000;

/// The HTTP status of a JSON-RPC error in this revision: `404` for an unknown method,
/// `400` for a malformed message, invalid params or a header or version problem.
fn status_of(code: i64) -> Status {
    match code {
        METHOD_NOT_FOUND => Status::NotFound,
        PARSE_ERROR
        | INVALID_REQUEST
        | INVALID_PARAMS
        | HEADER_MISMATCH
        | UNSUPPORTED_PROTOCOL_VERSION => Status::BadRequest,
        _ => Status::Ok,
    }
}

fn fail(id: Value, code: i64, message: &str) -> McpReply {
    error(status_of(code), id, code, message)
}

/// A complete result: `resultType` and the server's identity in `_meta`.
fn complete(id: Value, mut result: Map<String, Value>) -> McpReply {
    result.insert("resultType".into(), json!("complete"));
    result.insert("_meta".into(), json!({ SERVER_INFO_META: server_info() }));
    McpReply::Json(
        Status::Ok,
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

/// The `params` member whose value `Mcp-Name` mirrors, for the methods that have one.
fn name_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// An `Mcp-Name` (or `Mcp-Param-*`) value as sent: verbatim, or the UTF-8 text inside a
/// `=?base64?…?=` sentinel (standard alphabet, canonical padding). A malformed sentinel
/// decodes to nothing, so it never matches.
pub fn decode_header_value(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        None => Some(value.to_owned()),
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
    }
}

/// The answer to one parsed message whose `MCP-Protocol-Version` header is `version`, a
/// revision of [`super::MODERN_VERSIONS`].
pub fn answer(version: &str, headers: &McpHeaders, message: Value) -> McpReply {
    let Value::Object(message) = message else {
        return fail(
            Value::Null,
            INVALID_REQUEST,
            "the body must be one JSON-RPC request or notification object",
        );
    };
    let jsonrpc_ok = message.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
    // JSON-RPC 2.0 §4.1: a message without an `id` member is a notification. This
    // revision defines none over HTTP; one that is well-formed is accepted and dropped.
    if !message.contains_key("id") {
        let params_ok = matches!(
            message.get("params"),
            None | Some(Value::Null) | Some(Value::Object(_))
        );
        return if jsonrpc_ok && message.get("method").is_some_and(Value::is_string) && params_ok {
            McpReply::Accepted
        } else {
            fail(Value::Null, INVALID_REQUEST, "not a JSON-RPC notification")
        };
    }
    let Some(id) = valid_id(&message) else {
        return fail(
            Value::Null,
            INVALID_REQUEST,
            "id must be a string or an integer",
        );
    };
    if !jsonrpc_ok {
        return fail(id, INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    }
    let method = match message.get("method") {
        Some(Value::String(m)) => m.as_str(),
        None if message.contains_key("result") || message.contains_key("error") => {
            return fail(
                id,
                INVALID_REQUEST,
                "clients send no JSON-RPC responses in this protocol revision",
            )
        }
        _ => return fail(id, INVALID_REQUEST, "method must be a string"),
    };

    // 2. The per-request envelope.
    let Some(Value::Object(params)) = message.get("params") else {
        return fail(
            id,
            INVALID_PARAMS,
            "params must be an object carrying _meta with the protocol version and client capabilities",
        );
    };
    let Some(Value::Object(meta)) = params.get("_meta") else {
        return fail(
            id,
            INVALID_PARAMS,
            "params._meta must carry io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities",
        );
    };
    let Some(body_version) = meta.get(PROTOCOL_VERSION_META) else {
        return fail(
            id,
            INVALID_PARAMS,
            "params._meta is missing io.modelcontextprotocol/protocolVersion",
        );
    };
    if !meta
        .get(CLIENT_CAPABILITIES_META)
        .is_some_and(Value::is_object)
    {
        return fail(
            id,
            INVALID_PARAMS,
            "params._meta is missing io.modelcontextprotocol/clientCapabilities (an object)",
        );
    }

    // 3. Headers against the body.
    if body_version.as_str() != Some(version) {
        return header_mismatch(
            id,
            "the MCP-Protocol-Version header does not match _meta's protocol version",
        );
    }
    match headers.methods.as_slice() {
        [m] if m == method => {}
        [] => return header_mismatch(id, "the Mcp-Method header is missing"),
        [_] => {
            return header_mismatch(id, "the Mcp-Method header does not match the body's method")
        }
        _ => return header_mismatch(id, "the Mcp-Method header appears more than once"),
    }
    if headers.names.len() > 1 {
        return header_mismatch(id, "the Mcp-Name header appears more than once");
    }
    if let Some(member) = name_member(method) {
        // Without the member the request is invalid params, answered by the method.
        if let Some(Value::String(body_name)) = params.get(member) {
            match headers.names.first() {
                None => return header_mismatch(id, "the Mcp-Name header is missing"),
                Some(sent) if decode_header_value(sent).as_deref() != Some(body_name) => {
                    return header_mismatch(
                        id,
                        "the Mcp-Name header does not match the body's name",
                    )
                }
                Some(_) => {}
            }
        }
    }

    // 4. The method.
    match method {
        "server/discover" => complete(id, discover()),
        "tools/list" => {
            let mut r = Map::new();
            r.insert("tools".into(), json!([tool()]));
            r.insert("ttlMs".into(), json!(TTL_MS));
            r.insert("cacheScope".into(), json!("private"));
            complete(id, r)
        }
        "tools/call" => match call_tool(params) {
            Ok(r) => complete(id, r),
            Err(why) => fail(id, INVALID_PARAMS, why),
        },
        _ => fail(id, METHOD_NOT_FOUND, "method not found"),
    }
}

/// The `server/discover` result: every version served (both eras), the capabilities of
/// this revision, the instructions, and the caching hints.
fn discover() -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("supportedVersions".into(), json!(PROTOCOL_VERSIONS));
    r.insert("capabilities".into(), json!({"tools": {}}));
    r.insert("instructions".into(), json!(INSTRUCTIONS));
    r.insert("ttlMs".into(), json!(TTL_MS));
    r.insert("cacheScope".into(), json!("private"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_decode_verbatim_or_from_the_base64_sentinel() {
        assert_eq!(decode_header_value("get_time").as_deref(), Some("get_time"));
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
            Some("Hello, 世界")
        );
        // Not base64, not canonical (trailing bits), not UTF-8.
        for bad in ["=?base64?***?=", "=?base64?SGVsbG9=?=", "=?base64?/w==?="] {
            assert_eq!(decode_header_value(bad), None, "{bad}");
        }
    }
}
