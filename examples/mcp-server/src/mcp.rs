//! The MCP endpoint: `POST /mcp` over Streamable HTTP, one JSON-RPC message in and one
//! `application/json` answer out (no SSE stream, no session), in both eras of the protocol:
//!
//! - **2026-07-28**, stateless, when `MCP-Protocol-Version: 2026-07-28`: no `initialize`;
//!   each request carries `params._meta` with the protocol version and the client's
//!   capabilities, and the `Mcp-Method` (and for `tools/call` `Mcp-Name`) headers, which
//!   must match the body (`-32020` otherwise); `server/discover` says what the server is.
//! - **2025-11-25, 2025-06-18, 2025-03-26**, when the header names one of them or is absent:
//!   `initialize`, then requests; no session is minted.
//!
//! JSON-RPC as the transport wants it: a notification or a response is `202 Accepted` with
//! no body; a body that is not JSON is `400` with `-32700`; `GET` and `DELETE` are `405`
//! with `Allow: POST`; any other version is `400` with `-32022` and the versions served.
//!
//! Two tools: `greet` needs the scope `mcp:tools` (every token for `/mcp` has it), and
//! `server_stats` needs `mcp:admin` as well: a token without it gets `403` with
//! `WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:tools mcp:admin"`, and
//! the MCP client authorizes again for the wider scope (step-up).

use std::sync::atomic::{AtomicU64, Ordering};

use rocket::data::{Data, Limits, ToByteUnit};
use rocket::http::{ContentType, Status};
use rocket::request::{self, FromRequest, Request};
use rocket::response::{self, Responder, Response};
use rocket::{delete, get, post, State};
use serde_json::{json, Map, Value};
use twisted_oauth2::rocket::AuthResult;
use twisted_oauth2::{oauth, OAuthError, TokenInfo};

/// The stateless revision.
pub const MODERN: &str = "2026-07-28";
/// The revisions opened with `initialize`, newest first.
pub const LEGACY: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// Every revision served, newest first.
pub const VERSIONS: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];

const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
const CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";
const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";

/// JSON-RPC: the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the params are wrong.
pub const INVALID_PARAMS: i64 = -32602;
/// MCP 2026-07-28: a header is missing, repeated or disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP 2026-07-28: the protocol version is not served.
pub const UNSUPPORTED_VERSION: i64 = -32022;

twisted_oauth2::required_scope!(pub Admin = "mcp:tools mcp:admin");

/// Tool calls served since the server started (what `server_stats` reports).
#[derive(Debug, Default)]
pub struct Stats(AtomicU64);

/// What `/mcp` answers.
#[derive(Debug)]
pub enum McpReply {
    /// A JSON-RPC response (result or error) with its HTTP status.
    Json(Status, Value),
    /// A notification or a response was accepted: `202`, no body.
    Accepted,
    /// `405` with `Allow: POST`.
    MethodNotAllowed,
    /// The token lacks a tool's scope: `403 insufficient_scope` with its challenge.
    StepUp(OAuthError),
}

impl<'r> Responder<'r, 'static> for McpReply {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
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
            McpReply::StepUp(e) => e.respond_to(req),
        }
    }
}

/// The MCP headers of a request, at most two values of each (two already make a duplicate).
#[derive(Debug, Default)]
pub struct McpHeaders {
    versions: Vec<String>,
    methods: Vec<String>,
    names: Vec<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for McpHeaders {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let two = |name: &str| req.headers().get(name).take(2).map(str::to_owned).collect();
        request::Outcome::Success(McpHeaders {
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

fn result(id: Value, result: Value) -> McpReply {
    McpReply::Json(
        Status::Ok,
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

/// A string or integer id (what JSON-RPC allows and MCP echoes; never `null`).
fn valid_id(m: &Map<String, Value>) -> Option<Value> {
    match m.get("id")? {
        v @ Value::String(_) => Some(v.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::Number(n.clone())),
        _ => None,
    }
}

/// Who is calling, for the tools.
struct Caller<'a> {
    token: &'a TokenInfo,
    admin: Result<(), OAuthError>,
    stats: &'a Stats,
}

/// `POST /mcp`. (Each guard is a parameter so Rocket sees its sentinel: `AuthResult<Admin>`
/// registers `mcp:admin` in the protected resource metadata.)
#[allow(clippy::too_many_arguments)]
#[oauth(scope = "mcp:tools")]
#[post("/mcp", data = "<body>")]
pub async fn mcp(
    token: TokenInfo,
    admin: AuthResult<Admin>,
    stats: &State<Stats>,
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
    let limit = limits.get("json").unwrap_or_else(|| 1.mebibytes());
    let text = match body.open(limit).into_string().await {
        Ok(t) if t.is_complete() => t.into_inner(),
        Ok(_) => {
            return error(
                Status::PayloadTooLarge,
                Value::Null,
                INVALID_REQUEST,
                "the body is too large",
            )
        }
        Err(_) => return error(Status::BadRequest, Value::Null, PARSE_ERROR, "parse error"),
    };
    let Ok(message) = serde_json::from_str::<Value>(&text) else {
        return error(Status::BadRequest, Value::Null, PARSE_ERROR, "parse error");
    };
    let caller = Caller {
        token: &token,
        admin: admin.into_result().map(|_| ()),
        stats,
    };
    answer(&headers, message, &caller)
}

/// Picks the era from `MCP-Protocol-Version` and answers there.
fn answer(headers: &McpHeaders, message: Value, caller: &Caller<'_>) -> McpReply {
    let Value::Object(m) = message else {
        let why = if message.is_array() {
            "batches are not supported: send one message per request"
        } else {
            "a JSON-RPC message is an object"
        };
        return error(Status::BadRequest, Value::Null, INVALID_REQUEST, why);
    };
    let id = valid_id(&m).unwrap_or(Value::Null);
    match headers.versions.as_slice() {
        [v] if v == MODERN => modern(headers, m, caller),
        [v] if LEGACY.contains(&v.as_str()) => legacy(m, caller),
        // Clients older than 2025-06-18 sent no header, unless it is a 2026 envelope.
        [] if m
            .get("params")
            .and_then(|p| p.get("_meta"))
            .and_then(|x| x.get(VERSION_META))
            .is_some() =>
        {
            error(
                Status::BadRequest,
                id,
                HEADER_MISMATCH,
                "the MCP-Protocol-Version header is missing",
            )
        }
        [] => legacy(m, caller),
        [v] => McpReply::Json(
            Status::BadRequest,
            json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": UNSUPPORTED_VERSION,
                "message": "Unsupported protocol version",
                "data": {"supported": VERSIONS, "requested": v.chars().take(64).collect::<String>()},
            }}),
        ),
        _ => error(
            Status::BadRequest,
            id,
            HEADER_MISMATCH,
            "the MCP-Protocol-Version header appears more than once",
        ),
    }
}

/// The checks both eras share: `id`, `jsonrpc`, `method`, `params`. `Err` is the answer
/// already (an error, or `202` for a notification or a response).
fn envelope(m: &Map<String, Value>) -> Result<(Value, &str, Map<String, Value>), McpReply> {
    let bad = |id: Value, why: &str| error(Status::BadRequest, id, INVALID_REQUEST, why);
    let id = match m.get("id") {
        None => None,
        Some(_) => {
            Some(valid_id(m).ok_or_else(|| bad(Value::Null, "id must be a string or an integer"))?)
        }
    };
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad(id.unwrap_or(Value::Null), "jsonrpc must be \"2.0\""));
    }
    let method = match m.get("method") {
        Some(Value::String(s)) => s.as_str(),
        // A response to a request of ours (we send none): accepted and dropped.
        None if id.is_some() && (m.contains_key("result") || m.contains_key("error")) => {
            return Err(McpReply::Accepted)
        }
        _ => return Err(bad(id.unwrap_or(Value::Null), "method must be a string")),
    };
    let params = match m.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) if id.is_none() => return Err(McpReply::Accepted),
        Some(_) => {
            return Err(error(
                Status::BadRequest,
                id.unwrap_or(Value::Null),
                INVALID_PARAMS,
                "params must be an object",
            ))
        }
    };
    // A notification (no id) is never answered (JSON-RPC 2.0 section 4.1).
    let Some(id) = id else {
        return Err(McpReply::Accepted);
    };
    Ok((id, method, params))
}

/// The handshake era.
fn legacy(m: Map<String, Value>, caller: &Caller<'_>) -> McpReply {
    let (id, method, params) = match envelope(&m) {
        Ok(e) => e,
        Err(reply) => return reply,
    };
    match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked.filter(|v| LEGACY.contains(v)).unwrap_or(LEGACY[0]);
            result(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": server_info(),
                    "instructions": INSTRUCTIONS,
                }),
            )
        }
        "ping" => result(id, json!({})),
        "tools/list" => result(id, json!({"tools": tools()})),
        "tools/call" => match call(&params, caller) {
            Ok(r) => result(id, Value::Object(r)),
            Err(Refusal::StepUp(e)) => McpReply::StepUp(e),
            Err(Refusal::Params(why)) => error(Status::Ok, id, INVALID_PARAMS, why),
        },
        _ => error(Status::Ok, id, METHOD_NOT_FOUND, "method not found"),
    }
}

/// The stateless era: the envelope in `_meta`, the headers matching the body.
fn modern(headers: &McpHeaders, m: Map<String, Value>, caller: &Caller<'_>) -> McpReply {
    let (id, method, params) = match envelope(&m) {
        Ok(e) => e,
        Err(reply) => return reply,
    };
    let fail = |status, code, why: &str| error(status, id.clone(), code, why);
    let meta = params.get("_meta").and_then(Value::as_object);
    let Some(meta) = meta.filter(|x| x.contains_key(VERSION_META)) else {
        return fail(
            Status::BadRequest,
            INVALID_PARAMS,
            "params._meta must carry io.modelcontextprotocol/protocolVersion",
        );
    };
    if !meta.get(CAPABILITIES_META).is_some_and(Value::is_object) {
        return fail(
            Status::BadRequest,
            INVALID_PARAMS,
            "params._meta must carry io.modelcontextprotocol/clientCapabilities",
        );
    }
    if meta.get(VERSION_META).and_then(Value::as_str) != Some(MODERN) {
        return fail(
            Status::BadRequest,
            HEADER_MISMATCH,
            "the MCP-Protocol-Version header does not match _meta",
        );
    }
    if headers.methods.as_slice() != [method] {
        return fail(
            Status::BadRequest,
            HEADER_MISMATCH,
            "the Mcp-Method header is missing, repeated or does not match the method",
        );
    }
    if method == "tools/call" {
        if let Some(name) = params.get("name").and_then(Value::as_str) {
            let sent = headers.names.as_slice();
            let matches = matches!(sent, [n] if decode_header(n).as_deref() == Some(name));
            if !matches {
                return fail(
                    Status::BadRequest,
                    HEADER_MISMATCH,
                    "the Mcp-Name header is missing, repeated or does not match the tool",
                );
            }
        }
    }
    let complete = |mut r: Map<String, Value>| {
        r.insert("resultType".into(), json!("complete"));
        r.insert("_meta".into(), json!({ SERVER_INFO_META: server_info() }));
        result(id.clone(), Value::Object(r))
    };
    let object = |v: Value| v.as_object().cloned().unwrap_or_default();
    match method {
        "server/discover" => complete(object(json!({
            "supportedVersions": VERSIONS,
            "capabilities": {"tools": {}},
            "instructions": INSTRUCTIONS,
            "ttlMs": 60_000,
            "cacheScope": "private",
        }))),
        "tools/list" => complete(object(
            json!({"tools": tools(), "ttlMs": 60_000, "cacheScope": "private"}),
        )),
        "tools/call" => match call(&params, caller) {
            Ok(r) => complete(r),
            Err(Refusal::StepUp(e)) => McpReply::StepUp(e),
            Err(Refusal::Params(why)) => fail(Status::BadRequest, INVALID_PARAMS, why),
        },
        _ => fail(Status::NotFound, METHOD_NOT_FOUND, "method not found"),
    }
}

/// An `Mcp-Name` value: verbatim, or the UTF-8 inside `=?base64?…?=`.
fn decode_header(value: &str) -> Option<String> {
    use base64::Engine as _;
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        None => Some(value.to_owned()),
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
    }
}

const INSTRUCTIONS: &str =
    "Call greet to be greeted by name; server_stats (needs mcp:admin) counts the tool calls.";

fn server_info() -> Value {
    json!({"name": "twisted-oauth2-mcp-server", "version": env!("CARGO_PKG_VERSION")})
}

fn tools() -> Value {
    json!([
        {
            "name": "greet",
            "description": "Greets someone, and says who is signed in and through which client.",
            "inputSchema": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 100}},
                "required": ["name"],
                "additionalProperties": false,
            },
            "annotations": {"readOnlyHint": true},
        },
        {
            "name": "server_stats",
            "description": "How many tool calls this server has answered since it started (scope mcp:admin).",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            "annotations": {"readOnlyHint": true},
        },
    ])
}

enum Refusal {
    Params(&'static str),
    StepUp(OAuthError),
}

fn call(params: &Map<String, Value>, caller: &Caller<'_>) -> Result<Map<String, Value>, Refusal> {
    let args = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Err(Refusal::Params("arguments must be an object")),
    };
    let text = match params.get("name").and_then(Value::as_str) {
        Some("greet") => {
            let name = match args.get("name") {
                Some(Value::String(n)) if !n.is_empty() && n.chars().count() <= 100 => n,
                _ => return Err(Refusal::Params("greet needs a name (1 to 100 characters)")),
            };
            let user = caller.token.subject.as_deref().unwrap_or("nobody");
            format!(
                "Hello, {name}! Signed in as {user}, through the client {}.",
                caller.token.client_id
            )
        }
        Some("server_stats") => {
            if let Err(e) = &caller.admin {
                return Err(Refusal::StepUp(e.clone()));
            }
            let n = caller.stats.0.load(Ordering::Relaxed);
            format!("This server has answered {n} tool calls since it started.")
        }
        Some(_) => return Err(Refusal::Params("unknown tool")),
        None => return Err(Refusal::Params("params.name is missing")),
    };
    caller.stats.0.fetch_add(1, Ordering::Relaxed);
    let mut r = Map::new();
    r.insert("content".into(), json!([{"type": "text", "text": text}]));
    r.insert("isError".into(), Value::Bool(false));
    Ok(r)
}

/// `GET /mcp`: no SSE stream is offered, so `405` (needs no token: it serves nothing).
#[get("/mcp")]
pub fn mcp_get() -> McpReply {
    McpReply::MethodNotAllowed
}

/// `DELETE /mcp`: there are no sessions to end, so `405`.
#[delete("/mcp")]
pub fn mcp_delete() -> McpReply {
    McpReply::MethodNotAllowed
}
