//! A minimal Model Context Protocol server over Streamable HTTP: `POST /mcp` answers one
//! JSON-RPC 2.0 message with one `application/json` reply (no SSE stream, no session), and
//! offers one tool, `get_time`, reading the demo's clock. Like `/clock` it needs a token with
//! `VIEW_CLOCK` whose audience is this app (RFC 8707: MCP clients send the protected resource
//! metadata's `resource`), so an MCP client arriving without one gets the 401 challenge whose
//! `resource_metadata` starts its OAuth discovery (MCP authorization spec).
//!
//! Bounds: the body is read up to Rocket's `json` limit (413 beyond it), batches are
//! refused (Streamable HTTP since 2025-06-18 sends one message per POST), and ids are
//! echoed only when they are strings or integers.

use rocket::data::{Data, Limits, ToByteUnit};
use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::{get, post};
use serde_json::{json, Map, Value};
use twisted_oauth2::oauth;

/// The protocol revisions this server speaks, newest first. An `initialize` asking for one
/// of them gets it back; any other request gets the newest (the client then decides).
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The one tool.
const TOOL_NAME: &str = "get_time";

/// Body limit when Rocket's configuration names no `json` limit (Rocket's own default).
const DEFAULT_LIMIT_KIB: u64 = 1024;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

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

/// The request's `MCP-Protocol-Version` header, when present.
pub struct ProtocolVersionHeader(Option<String>);

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for ProtocolVersionHeader {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        rocket::request::Outcome::Success(ProtocolVersionHeader(
            req.headers()
                .get_one("MCP-Protocol-Version")
                .map(str::to_owned),
        ))
    }
}

fn error(status: Status, id: Value, code: i64, message: &str) -> McpReply {
    McpReply::Json(
        status,
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    )
}

fn result(id: Value, result: Value) -> McpReply {
    McpReply::Json(
        Status::Ok,
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

/// `POST /mcp`: one JSON-RPC message in, its answer out.
#[oauth(scope = "VIEW_CLOCK")]
#[post("/mcp", data = "<body>")]
pub async fn mcp(
    version: ProtocolVersionHeader,
    limits: &Limits,
    content_type: Option<&ContentType>,
    body: Data<'_>,
) -> McpReply {
    if let Some(v) = version.0.as_deref() {
        if !PROTOCOL_VERSIONS.contains(&v) {
            return McpReply::Json(
                Status::BadRequest,
                json!({"jsonrpc": "2.0", "id": null, "error": {
                    "code": INVALID_REQUEST,
                    "message": "unsupported MCP-Protocol-Version",
                    "data": {"supported": PROTOCOL_VERSIONS},
                }}),
            );
        }
    }
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
    answer(message)
}

/// The answer to one parsed JSON-RPC message.
fn answer(message: Value) -> McpReply {
    let Value::Object(message) = message else {
        let why = if message.is_array() {
            "batches are not supported: send one message per request"
        } else {
            "a JSON-RPC message is an object"
        };
        return error(Status::BadRequest, Value::Null, INVALID_REQUEST, why);
    };
    // Only string and integer ids are echoed (JSON-RPC 2.0 §4; MCP forbids null).
    let id = match message.get("id") {
        None => None,
        Some(v @ Value::String(_)) => Some(v.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n.clone())),
        Some(_) => {
            return error(
                Status::BadRequest,
                Value::Null,
                INVALID_REQUEST,
                "id must be a string or an integer",
            )
        }
    };
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return error(
            Status::BadRequest,
            id.unwrap_or(Value::Null),
            INVALID_REQUEST,
            "jsonrpc must be \"2.0\"",
        );
    }
    let method = match message.get("method") {
        Some(Value::String(m)) => m.as_str(),
        Some(_) => {
            return error(
                Status::BadRequest,
                id.unwrap_or(Value::Null),
                INVALID_REQUEST,
                "method must be a string",
            )
        }
        // A response to a request of ours (we send none): accepted and dropped.
        None if id.is_some()
            && (message.contains_key("result") || message.contains_key("error")) =>
        {
            return McpReply::Accepted
        }
        None => {
            return error(
                Status::BadRequest,
                id.unwrap_or(Value::Null),
                INVALID_REQUEST,
                "method is missing",
            )
        }
    };
    let params = match message.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => {
            return match id {
                Some(id) => error(Status::Ok, id, INVALID_PARAMS, "params must be an object"),
                None => McpReply::Accepted,
            }
        }
    };
    // A notification (no id) gets no answer, whatever its method (JSON-RPC 2.0 §4.1).
    let Some(id) = id else {
        return McpReply::Accepted;
    };
    match method {
        "initialize" => result(id, initialize(&params)),
        "ping" => result(id, json!({})),
        "tools/list" => result(id, json!({"tools": [tool()]})),
        "tools/call" => call_tool(id, &params),
        _ => error(Status::Ok, id, METHOD_NOT_FOUND, "method not found"),
    }
}

fn initialize(params: &Map<String, Value>) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "twisted-oauth2-demo", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "The demo clock: call get_time for the current Unix time.",
    })
}

fn tool() -> Value {
    json!({
        "name": TOOL_NAME,
        "title": "Get the time",
        "description": "The demo clock's current time, in seconds since the Unix epoch (the number /clock shows).",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
        "annotations": {"readOnlyHint": true, "idempotentHint": false, "openWorldHint": false},
    })
}

fn call_tool(id: Value, params: &Map<String, Value>) -> McpReply {
    match params.get("name").and_then(Value::as_str) {
        Some(TOOL_NAME) => {}
        Some(_) => return error(Status::Ok, id, INVALID_PARAMS, "unknown tool"),
        None => return error(Status::Ok, id, INVALID_PARAMS, "params.name is missing"),
    }
    match params.get("arguments") {
        None | Some(Value::Null) => {}
        Some(Value::Object(a)) if a.is_empty() => {}
        Some(_) => {
            return error(
                Status::Ok,
                id,
                INVALID_PARAMS,
                "get_time takes no arguments",
            )
        }
    }
    let text = format!(
        "The demo clock reads {} (Unix time).",
        crate::clock_seconds()
    );
    result(
        id,
        json!({"content": [{"type": "text", "text": text}], "isError": false}),
    )
}

/// `GET /mcp`: this server opens no SSE stream, so `405` with `Allow: POST` (Streamable HTTP
/// lets a server answer so). Needs no token: it serves nothing.
#[get("/mcp")]
pub fn mcp_get() -> McpReply {
    McpReply::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_object_messages_are_invalid_requests() {
        for bad in [json!(1), json!("x"), json!(null), json!([])] {
            match answer(bad) {
                McpReply::Json(Status::BadRequest, v) => {
                    assert_eq!(v["error"]["code"], INVALID_REQUEST)
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_fractional_or_object_id_is_refused() {
        for id in [json!(1.5), json!({}), json!(true)] {
            match answer(json!({"jsonrpc": "2.0", "id": id, "method": "ping"})) {
                McpReply::Json(Status::BadRequest, v) => assert_eq!(v["id"], Value::Null),
                other => panic!("{other:?}"),
            }
        }
    }
}
