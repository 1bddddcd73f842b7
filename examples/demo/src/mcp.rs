//! A minimal Model Context Protocol server over Streamable HTTP: `POST /mcp` answers one
//! JSON-RPC 2.0 message with one `application/json` reply (no SSE stream, no session), and
//! offers one tool, `get_time`, reading the demo's clock. Like `/clock` it needs a token with
//! `VIEW_CLOCK` whose audience is this app (RFC 8707: MCP clients send the protected resource
//! metadata's `resource`), so an MCP client arriving without one gets the 401 challenge whose
//! `resource_metadata` starts its OAuth discovery (MCP authorization spec).
//!
//! It speaks both eras of the protocol on the one endpoint, chosen per request:
//!
//! - **2026-07-28** ([`modern`]), stateless: when `MCP-Protocol-Version` names it. No
//!   `initialize`; every request carries `_meta` with
//!   `io.modelcontextprotocol/protocolVersion` and `clientCapabilities`, and the
//!   `Mcp-Method` (and for `tools/call` `Mcp-Name`) headers, all checked against the body;
//!   `server/discover` says what the server is.
//! - **2025-11-25, 2025-06-18, 2025-03-26** ([`legacy`]): when the header names one of them
//!   or is absent (the transport's default for clients older than 2025-06-18): `initialize`,
//!   then requests; sessions are optional and this server mints none.
//!
//! A request with a modern `_meta` version but no header, or one disagreeing with it, is a
//! `-32020` header mismatch; a header naming any other version is `-32022` with the supported
//! versions. Neither era sends or reads `Mcp-Session-Id`. `GET` and `DELETE` are `405`.
//!
//! Bounds: the body is read up to Rocket's `json` limit (413 beyond it), batches are
//! refused (Streamable HTTP since 2025-06-18 sends one message per POST), ids are
//! echoed only when they are strings or integers, and at most two values of each MCP header
//! are looked at (two already make a duplicate).

use rocket::data::{Data, Limits, ToByteUnit};
use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::{delete, get, post};
use serde_json::{json, Map, Value};
use twisted_oauth2::oauth;

pub mod legacy;
pub mod modern;

/// The stateless revisions (per-request `_meta`, no `initialize`), newest first.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

/// The revisions opened with `initialize`, newest first. An `initialize` asking for one
/// of them gets it back; any other `initialize` gets the newest (the client then decides).
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// Every revision this server speaks, newest first: what `server/discover` and the
/// unsupported-version error name.
pub const PROTOCOL_VERSIONS: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

/// The one tool.
const TOOL_NAME: &str = "get_time";

/// Body limit when Rocket's configuration names no `json` limit (Rocket's own default).
const DEFAULT_LIMIT_KIB: u64 = 1024;

/// The longest unsupported `MCP-Protocol-Version` value echoed back in `data.requested`.
const MAX_ECHOED_VERSION: usize = 64;

/// The `_meta` key of a 2026-07-28 request's protocol version.
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
/// MCP 2026-07-28 `HeaderMismatch`: a required header is missing, duplicated or disagrees
/// with the body.
const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28 `UnsupportedProtocolVersion`, with `data.supported` and `data.requested`.
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// What `/mcp` answers: a JSON body with a status, `202 Accepted` without a body (for a
/// notification or a response), or `405` naming the one method served.
#[derive(Debug)]
pub enum McpReply {
    /// A JSON-RPC response (result or error).
    Json(Status, Value),
    /// A notification or a client's response was accepted; nothing to answer.
    Accepted,
    /// Not `POST`: `405` with `Allow: POST`.
    MethodNotAllowed,
}

impl<'r> Responder<'r, 'static> for McpReply {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        match self {
            McpReply::Json(status, body) => {
                let text = body.to_string();
                Response::build()
                    .status(status)
                    .header(ContentType::JSON)
                    .sized_body(text.len(), std::io::Cursor::new(text))
                    .ok()
            }
            McpReply::Accepted => Response::build().status(Status::Accepted).ok(),
            McpReply::MethodNotAllowed => Response::build()
                .status(Status::MethodNotAllowed)
                .raw_header("Allow", "POST")
                .ok(),
        }
    }
}

/// The request's MCP headers: `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` (names
/// compared case-insensitively), at most two values of each.
#[derive(Debug, Default)]
pub struct McpHeaders {
    /// `MCP-Protocol-Version` values.
    pub versions: Vec<String>,
    /// `Mcp-Method` values (2026-07-28).
    pub methods: Vec<String>,
    /// `Mcp-Name` values (2026-07-28), as sent (possibly `=?base64?…?=`).
    pub names: Vec<String>,
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for McpHeaders {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        let two = |name: &str| -> Vec<String> {
            req.headers().get(name).take(2).map(str::to_owned).collect()
        };
        rocket::request::Outcome::Success(McpHeaders {
            versions: two("MCP-Protocol-Version"),
            methods: two("Mcp-Method"),
            names: two("Mcp-Name"),
        })
    }
}

fn error(status: Status, id: Value, code: i64, message: &str) -> McpReply {
    McpReply::Json(
        status,
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    )
}

/// The request's id when it is one JSON-RPC 2.0 allows and MCP echoes (a string or an
/// integer; MCP forbids `null`), else `None`.
fn valid_id(message: &Map<String, Value>) -> Option<Value> {
    match message.get("id")? {
        v @ Value::String(_) => Some(v.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::Number(n.clone())),
        _ => None,
    }
}

/// The id to put on an error answered before the message is dispatched: the request's
/// when it is valid, else `null`.
fn id_or_null(message: &Value) -> Value {
    message
        .as_object()
        .and_then(valid_id)
        .unwrap_or(Value::Null)
}

/// `params._meta["io.modelcontextprotocol/protocolVersion"]` of a message that is not an
/// `initialize` (which belongs to the handshake era whatever it carries).
fn envelope_version(message: &Value) -> Option<&Value> {
    if message.get("method").and_then(Value::as_str) == Some("initialize") {
        return None;
    }
    message
        .get("params")?
        .get("_meta")?
        .get(PROTOCOL_VERSION_META)
}

/// `400` with `-32020` (MCP 2026-07-28 `HeaderMismatch`).
fn header_mismatch(id: Value, message: &str) -> McpReply {
    error(Status::BadRequest, id, HEADER_MISMATCH, message)
}

/// `400` with `-32022` naming every version served and (bounded) the one asked for.
fn unsupported_version(id: Value, requested: &str) -> McpReply {
    let mut end = requested.len().min(MAX_ECHOED_VERSION);
    while !requested.is_char_boundary(end) {
        end -= 1;
    }
    McpReply::Json(
        Status::BadRequest,
        json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": UNSUPPORTED_PROTOCOL_VERSION,
            "message": "Unsupported protocol version",
            "data": {"supported": PROTOCOL_VERSIONS, "requested": &requested[..end]},
        }}),
    )
}

/// `POST /mcp`: one JSON-RPC message in, its answer out.
#[oauth(scope = "VIEW_CLOCK")]
#[post("/mcp", data = "<body>")]
pub async fn mcp(
    headers: McpHeaders,
    limits: &Limits,
    content_type: Option<&ContentType>,
    body: Data<'_>,
) -> McpReply {
    if content_type.is_some_and(|ct| !ct.is_json()) {
        return error(
            Status::UnsupportedMediaType,
            Value::Null,
            INVALID_REQUEST,
            "the body must be application/json",
        );
    }
    let limit = limits
        .get("json")
        .unwrap_or_else(|| DEFAULT_LIMIT_KIB.kibibytes());
    let text = match body.open(limit).into_string().await {
        Ok(t) if t.is_complete() => t.into_inner(),
        Ok(_) => {
            return error(
                Status::PayloadTooLarge,
                Value::Null,
                INVALID_REQUEST,
                "the request body is too large",
            )
        }
        Err(_) => {
            return error(
                Status::BadRequest,
                Value::Null,
                PARSE_ERROR,
                "the body is not UTF-8 text",
            )
        }
    };
    let message: Value = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(_) => {
            return error(
                Status::BadRequest,
                Value::Null,
                PARSE_ERROR,
                "the body is not JSON",
            )
        }
    };
    route(&headers, message)
}

/// Picks the era of one parsed message from its `MCP-Protocol-Version` header and its
/// `_meta`, and answers it there.
fn route(headers: &McpHeaders, message: Value) -> McpReply {
    let body_version = envelope_version(&message);
    match headers.versions.as_slice() {
        // The 2026-07-28 envelope without its header; without either, a client of a
        // revision older than 2025-06-18, which had no header.
        [] if body_version.is_some() => header_mismatch(
            id_or_null(&message),
            "the MCP-Protocol-Version header is missing",
        ),
        [] => legacy::answer(message),
        [v] if MODERN_VERSIONS.contains(&v.as_str()) => modern::answer(v, headers, message),
        [v] if LEGACY_VERSIONS.contains(&v.as_str()) => {
            if body_version.is_some_and(|b| b.as_str() != Some(v.as_str())) {
                header_mismatch(
                    id_or_null(&message),
                    "the MCP-Protocol-Version header does not match _meta's protocol version",
                )
            } else {
                legacy::answer(message)
            }
        }
        [v] => unsupported_version(id_or_null(&message), v),
        _ => header_mismatch(
            id_or_null(&message),
            "the MCP-Protocol-Version header appears more than once",
        ),
    }
}

/// The tool's definition, the same in both eras.
fn tool() -> Value {
    json!({
        "name": TOOL_NAME,
        "title": "Get the time",
        "description": "The demo clock's current time, in seconds since the Unix epoch (the number /clock shows).",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
        "annotations": {"readOnlyHint": true, "idempotentHint": false, "openWorldHint": false},
    })
}

/// Runs `tools/call`: the result's members, or why the params are invalid (`-32602`).
fn call_tool(params: &Map<String, Value>) -> Result<Map<String, Value>, &'static str> {
    match params.get("name").and_then(Value::as_str) {
        Some(TOOL_NAME) => {}
        Some(_) => return Err("unknown tool"),
        None => return Err("params.name is missing"),
    }
    match params.get("arguments") {
        None | Some(Value::Null) => {}
        Some(Value::Object(a)) if a.is_empty() => {}
        Some(_) => return Err("get_time takes no arguments"),
    }
    let text = format!(
        "The demo clock reads {} (Unix time).",
        crate::clock_seconds()
    );
    let mut result = Map::new();
    result.insert("content".into(), json!([{"type": "text", "text": text}]));
    result.insert("isError".into(), Value::Bool(false));
    Ok(result)
}

/// The server's name and version (`serverInfo` in 2025, `_meta` in 2026-07-28).
fn server_info() -> Value {
    json!({"name": "twisted-oauth2-demo", "version": env!("CARGO_PKG_VERSION")})
}

const INSTRUCTIONS: &str = "The demo clock: call get_time for the current Unix time.";

/// `GET /mcp`: this server opens no SSE stream (2025 eras) and 2026-07-28 has none, so
/// `405` with `Allow: POST`. Needs no token: it serves nothing.
#[get("/mcp")]
pub fn mcp_get() -> McpReply {
    McpReply::MethodNotAllowed
}

/// `DELETE /mcp`: there are no sessions to end (this server mints none, and 2026-07-28 has
/// none), so `405` with `Allow: POST`, as the 2026-07-28 transport says. Needs no token.
#[delete("/mcp")]
pub fn mcp_delete() -> McpReply {
    McpReply::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(versions: &[&str]) -> McpHeaders {
        McpHeaders {
            versions: versions.iter().map(|v| (*v).to_owned()).collect(),
            ..McpHeaders::default()
        }
    }

    #[test]
    fn a_long_unsupported_version_is_echoed_truncated_on_a_char_boundary() {
        let asked = format!("{}é", "x".repeat(MAX_ECHOED_VERSION - 1));
        match route(
            &headers(&[&asked]),
            json!({"jsonrpc": "2.0", "id": 1, "method": "x"}),
        ) {
            McpReply::Json(Status::BadRequest, v) => {
                assert_eq!(v["error"]["code"], UNSUPPORTED_PROTOCOL_VERSION);
                assert_eq!(
                    v["error"]["data"]["requested"],
                    "x".repeat(MAX_ECHOED_VERSION - 1)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_duplicated_version_header_is_a_header_mismatch() {
        match route(
            &headers(&["2026-07-28", "2026-07-28"]),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        ) {
            McpReply::Json(Status::BadRequest, v) => {
                assert_eq!(v["error"]["code"], HEADER_MISMATCH)
            }
            other => panic!("{other:?}"),
        }
    }
}
