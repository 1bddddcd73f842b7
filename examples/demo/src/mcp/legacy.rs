//! The handshake era (revisions 2025-03-26, 2025-06-18, 2025-11-25): the client opens with
//! `initialize`, which negotiates the version, then sends `notifications/initialized` and its
//! requests with `MCP-Protocol-Version` naming that version (2025-06-18 on). Sessions are
//! optional in these revisions and this server mints none: every request stands alone, so
//! `tools/list` and `tools/call` are answered with or without an `initialize` before them.
//!
//! JSON-RPC errors of a dispatched request are answered `200` (these revisions give them no
//! HTTP status); malformed messages are `400`.

use rocket::http::Status;
use serde_json::{json, Map, Value};

use super::{
    call_tool, error, server_info, tool, valid_id, McpReply, INSTRUCTIONS, INVALID_PARAMS,
    INVALID_REQUEST, LEGACY_VERSIONS, METHOD_NOT_FOUND,
};

fn result(id: Value, result: Value) -> McpReply {
    McpReply::Json(
        Status::Ok,
        json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

/// The answer to one parsed JSON-RPC message of the handshake era.
pub fn answer(message: Value) -> McpReply {
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
        Some(_) => match valid_id(&message) {
            Some(id) => Some(id),
            None => {
                return error(
                    Status::BadRequest,
                    Value::Null,
                    INVALID_REQUEST,
                    "id must be a string or an integer",
                )
            }
        },
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
        "tools/call" => match call_tool(&params) {
            Ok(r) => result(id, Value::Object(r)),
            Err(why) => error(Status::Ok, id, INVALID_PARAMS, why),
        },
        _ => error(Status::Ok, id, METHOD_NOT_FOUND, "method not found"),
    }
}

fn initialize(params: &Map<String, Value>) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| LEGACY_VERSIONS.contains(v))
        .unwrap_or(LEGACY_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
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

    #[test]
    fn initialize_never_offers_the_stateless_revision() {
        let v = initialize(
            json!({"protocolVersion": "2026-07-28"})
                .as_object()
                .unwrap(),
        );
        assert_eq!(v["protocolVersion"], "2025-11-25");
    }
}
