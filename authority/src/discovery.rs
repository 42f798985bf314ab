//! OpenID discovery (`/{tenant}/v2.0/.well-known/openid-configuration`) and the signing
//! keys (`/{tenant}/discovery/v2.0/keys`), shaped like Entra's.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::aadsts::AadError;
use crate::faults::FaultEndpoint;
use crate::server::{Shared, apply_faults};

fn cacheable(body: serde_json::Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    response
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(fault) = apply_faults(&shared, FaultEndpoint::Discovery, &headers).await {
        return fault;
    }
    if !shared.state.directory().regs.tenant_matches(&tenant) {
        return AadError::tenant_not_found(&tenant, "invalid_tenant")
            .into_response(&shared.base_url, &headers);
    }
    let e = shared.state.endpoints(&shared.base_url);
    let base = &e.authority;
    cacheable(serde_json::json!({
        "token_endpoint": e.token_endpoint,
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": e.jwks_uri,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": e.issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{}/oidc/userinfo", e.base_url),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
            "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(crate) async fn keys(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(fault) = apply_faults(&shared, FaultEndpoint::Keys, &headers).await {
        return fault;
    }
    if !shared.state.directory().regs.tenant_matches(&tenant) {
        return AadError::tenant_not_found(&tenant, "invalid_tenant")
            .into_response(&shared.base_url, &headers);
    }
    cacheable(shared.state.jwks(&shared.base_url))
}
