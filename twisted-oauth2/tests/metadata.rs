//! Protocol tests of the discovery documents (RFC 8414, RFC 9207, RFC 9728), without a
//! server.

mod common;

use std::sync::Arc;

use common::*;
use twisted_oauth2::endpoint::metadata::{
    self, authorization_server_metadata, protected_resource_metadata,
};
use twisted_oauth2::grant::{Grant, Issue};
use twisted_oauth2::{AuthorizationServer, OAuthError};

fn json<T: serde::Serialize>(doc: &T) -> serde_json::Value {
    serde_json::to_value(doc).unwrap()
}

#[test]
fn document_describes_the_configured_server_rfc8414_2() {
    let f = fixture();
    let v = json(&authorization_server_metadata(&f.server, true));
    assert_eq!(
        v,
        serde_json::json!({
            "issuer": "https://as.example",
            "authorization_endpoint": "https://as.example/oauth2/authorize",
            "token_endpoint": "https://as.example/oauth2/token",
            "revocation_endpoint": "https://as.example/oauth2/revoke",
            "introspection_endpoint": "https://as.example/oauth2/introspect",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": true,
        })
    );
}

#[test]
fn authorization_endpoint_and_code_grant_only_when_served_rfc8414_2() {
    let f = fixture();
    let v = json(&authorization_server_metadata(&f.server, false));
    assert!(v.get("authorization_endpoint").is_none(), "{v}");
    assert_eq!(v["response_types_supported"], serde_json::json!([]));
    assert_eq!(
        v["grant_types_supported"],
        serde_json::json!(["refresh_token", "client_credentials"])
    );
    assert!(v.get("code_challenge_methods_supported").is_none());
    assert!(v.get("response_modes_supported").is_none());
    assert_eq!(v["authorization_response_iss_parameter_supported"], true);
}

#[test]
fn configured_options_are_reflected_rfc8414_2() {
    let mut cfg = config();
    cfg.pkce_allow_plain = true;
    cfg.scopes_supported = Some(vec!["b".into(), "a".into(), "c".into()]);
    cfg.introspection_scope = Some("introspect".into());
    cfg.grant_types = vec!["authorization_code".into()];
    cfg.base_path = "/auth".into();
    let f = fixture_with(cfg);
    let v = json(&authorization_server_metadata(&f.server, true));
    assert_eq!(
        v["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
    let mut scopes: Vec<String> = serde_json::from_value(v["scopes_supported"].clone()).unwrap();
    scopes.sort();
    assert_eq!(scopes, ["a", "b", "c"]);
    assert_eq!(
        v["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "Bearer"])
    );
    assert_eq!(
        v["grant_types_supported"],
        serde_json::json!(["authorization_code"])
    );
    assert_eq!(v["token_endpoint"], "https://as.example/auth/token");
}

struct DeviceGrant;

#[async_trait::async_trait]
impl Grant for DeviceGrant {
    fn grant_type(&self) -> &str {
        "urn:ietf:params:oauth:grant-type:device_code"
    }
    async fn handle(
        &self,
        _ctx: &twisted_oauth2::context::GrantContext<'_>,
        _req: &twisted_oauth2::grant::GrantRequest<'_>,
    ) -> Result<Issue, OAuthError> {
        Err(OAuthError::invalid_grant("test grant"))
    }
}

#[test]
fn extension_grants_are_listed_rfc8414_2() {
    let server = AuthorizationServer::builder(config())
        .extension_grant(Arc::new(DeviceGrant))
        .build()
        .unwrap();
    let v = json(&authorization_server_metadata(&server, true));
    let grants: Vec<String> = serde_json::from_value(v["grant_types_supported"].clone()).unwrap();
    assert!(grants.contains(&"urn:ietf:params:oauth:grant-type:device_code".to_owned()));
}

#[test]
fn issuer_path_is_inserted_after_the_host_rfc8414_3_1() {
    let mut cfg = config();
    cfg.issuer = "https://as.example/tenant/".into();
    let f = fixture_with(cfg);
    assert_eq!(
        metadata::authorization_server_metadata_path(&f.server),
        "/.well-known/oauth-authorization-server/tenant"
    );
    assert_eq!(
        metadata::authorization_server_metadata_url(&f.server),
        "https://as.example/.well-known/oauth-authorization-server/tenant"
    );
    assert_eq!(
        json(&authorization_server_metadata(&f.server, true))["issuer"],
        "https://as.example/tenant",
        "the issuer is the configured one, without terminating slash (RFC 8414 section 3.3)"
    );
    let f = fixture();
    assert_eq!(
        metadata::authorization_server_metadata_url(&f.server),
        "https://as.example/.well-known/oauth-authorization-server"
    );
}

#[test]
fn protected_resource_document_rfc9728_2() {
    let f = fixture();
    let v = json(&protected_resource_metadata(
        &f.server,
        ["b", "a", "b"].map(String::from),
    ));
    assert_eq!(
        v,
        serde_json::json!({
            "resource": "https://as.example",
            "authorization_servers": ["https://as.example"],
            "scopes_supported": ["a", "b"],
            "bearer_methods_supported": ["header"],
        })
    );
    let v = json(&protected_resource_metadata(
        &f.server,
        Vec::<String>::new(),
    ));
    assert!(v.get("scopes_supported").is_none(), "{v}");
}

#[test]
fn protected_resource_options_are_reflected_rfc9728_2() {
    let mut cfg = config();
    cfg.resource = Some("https://api.example/v1".into());
    cfg.resource_name = Some("Example API".into());
    cfg.allow_access_token_in_query = true;
    let f = fixture_with(cfg);
    let v = json(&protected_resource_metadata(&f.server, ["a"]));
    assert_eq!(v["resource"], "https://api.example/v1");
    assert_eq!(v["resource_name"], "Example API");
    assert_eq!(
        v["bearer_methods_supported"],
        serde_json::json!(["header", "query"])
    );
    assert_eq!(
        v["authorization_servers"],
        serde_json::json!(["https://as.example"])
    );
    assert_eq!(
        metadata::protected_resource_metadata_url(&f.server),
        "https://api.example/.well-known/oauth-protected-resource/v1"
    );
    assert_eq!(
        metadata::protected_resource_metadata_path(&f.server),
        "/.well-known/oauth-protected-resource/v1"
    );
}

#[test]
fn protected_resource_metadata_location_rfc9728_3_1() {
    let f = fixture();
    assert_eq!(
        metadata::protected_resource_metadata_url(&f.server),
        "https://as.example/.well-known/oauth-protected-resource"
    );
}

#[test]
fn bad_resource_or_introspection_scope_is_a_config_error() {
    for bad in [
        "not a url",
        "ftp://x.example",
        "https://x.example/#f",
        "https://x.example/?q=1",
    ] {
        let mut cfg = config();
        cfg.resource = Some(bad.into());
        let e = AuthorizationServer::builder(cfg).build().unwrap_err();
        assert!(e.to_string().contains("resource"), "{bad}: {e}");
    }
    let mut cfg = config();
    cfg.introspection_scope = Some("a  b".into());
    let e = AuthorizationServer::builder(cfg).build().unwrap_err();
    assert!(e.to_string().contains("introspection_scope"), "{e}");
}

#[cfg(feature = "implicit-grant")]
#[test]
fn implicit_response_type_only_with_feature_and_config_rfc8414_2() {
    let mut cfg = config();
    cfg.grant_types.push("implicit".into());
    let f = fixture_with(cfg);
    let v = json(&authorization_server_metadata(&f.server, true));
    assert_eq!(
        v["response_types_supported"],
        serde_json::json!(["code", "token"])
    );
    assert_eq!(
        v["response_modes_supported"],
        serde_json::json!(["query", "fragment"])
    );
    assert!(strings(&v["grant_types_supported"]).contains(&"implicit".to_owned()));
    let v = json(&authorization_server_metadata(&f.server, false));
    assert!(!strings(&v["grant_types_supported"]).contains(&"implicit".to_owned()));
    let v = json(&authorization_server_metadata(&fixture().server, true));
    assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
}

#[cfg(feature = "implicit-grant")]
fn strings(v: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}
