//! The token endpoint (`POST /{tenant}/oauth2/v2.0/token`): the client-credentials grant
//! with a client secret (body or HTTP Basic) or a certificate client assertion.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Serialize;

use crate::aadsts::AadError;
use crate::assertion::{self, JWT_BEARER};
use crate::claims::{self, ClientAuth};
use crate::faults::FaultEndpoint;
use crate::server::{Shared, apply_faults};
use crate::stats::Outcome;
use crate::{Api, ClientApp, Registrations};

/// Scopes Entra ignores in a client-credentials request.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

#[derive(Serialize)]
struct TokenResponse {
    token_type: &'static str,
    expires_in: i64,
    ext_expires_in: i64,
    refresh_in: i64,
    access_token: String,
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(fault) = apply_faults(&shared, FaultEndpoint::Token, &headers).await {
        shared.counters.record(None, Outcome::Fault);
        return fault;
    }
    let (client, result) = issue(&shared, &tenant, &headers, &body);
    match result {
        Ok(success) => {
            shared.counters.record(client.as_deref(), Outcome::Issued);
            let mut response = Json(success).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => {
            shared.counters.record(client.as_deref(), Outcome::Error);
            error.into_response(&shared.base_url, &headers)
        }
    }
}

/// Any other method on the token endpoint.
pub(crate) async fn not_post(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    AadError::post_only(method.as_str()).into_response(&shared.base_url, &headers)
}

/// The form parameters, each at most once.
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, AadError> {
    let mut params = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if params.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(AadError::malformed(&format!(
                "parameter '{k}' appears more than once"
            )));
        }
    }
    Ok(params)
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, AadError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || AadError::malformed("the Authorization header is not valid HTTP Basic");
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim())
    else {
        return Err(bad());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// Runs the grant; also returns the client id when it names a registered client (stats).
fn issue(
    shared: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Option<String>, Result<TokenResponse, AadError>) {
    let dir = shared.state.directory();
    let regs = &dir.regs;
    if !regs.tenant_matches(tenant) {
        return (
            None,
            Err(AadError::tenant_not_found(tenant, "invalid_request")),
        );
    }
    let mut params = match parse_form(body) {
        Ok(p) => p,
        Err(e) => return (None, Err(e)),
    };
    match params.get("grant_type").map(String::as_str) {
        None => return (None, Err(AadError::missing_parameter("grant_type"))),
        Some("client_credentials") => {}
        Some(other) => return (None, Err(AadError::unsupported_grant_type(other))),
    }
    let basic = match basic_credentials(headers) {
        Ok(b) => b,
        Err(e) => return (None, Err(e)),
    };
    if let Some((basic_id, basic_secret)) = basic {
        match params.get("client_id") {
            Some(id) if !id.eq_ignore_ascii_case(&basic_id) => {
                return (
                    None,
                    Err(AadError::malformed(
                        "client_id differs from the Basic credentials",
                    )),
                );
            }
            _ => {}
        }
        if params.contains_key("client_secret") {
            return (
                None,
                Err(AadError::malformed(
                    "client_secret sent both in the body and as HTTP Basic",
                )),
            );
        }
        params.insert("client_id".into(), basic_id);
        params.insert("client_secret".into(), basic_secret);
    }
    let Some(client_id) = params.get("client_id") else {
        return (None, Err(AadError::missing_parameter("client_id")));
    };
    let Some(client) = regs.client_by_id(client_id) else {
        return (
            None,
            Err(AadError::client_not_found(client_id, &regs.tenant.domain)),
        );
    };
    let known = Some(client.client_id.to_string());
    let result = authenticate(shared, tenant, &dir, client, &params)
        .and_then(|auth| resolve_scope(regs, params.get("scope")).map(|api| (auth, api)))
        .and_then(|(auth, api)| respond(shared, regs, client, api, auth));
    (known, result)
}

/// Checks the client's secret or assertion.
fn authenticate(
    shared: &Shared,
    tenant: &str,
    dir: &crate::registrations::Directory,
    client: &ClientApp,
    params: &HashMap<String, String>,
) -> Result<ClientAuth, AadError> {
    let secret = params.get("client_secret").filter(|s| !s.is_empty());
    let assertion = params.get("client_assertion").filter(|s| !s.is_empty());
    let client_id = client.client_id.to_string();
    match (secret, assertion) {
        (None, None) => Err(AadError::no_credential()),
        (Some(_), Some(_)) => Err(AadError::malformed(
            "send either client_secret or client_assertion, not both",
        )),
        (Some(presented), None) => {
            let now = time::OffsetDateTime::now_utc();
            let matched = client.secrets.iter().find(|s| s.value.matches(presented));
            match matched {
                None => Err(AadError::invalid_secret(&client_id)),
                Some(s) if s.expires_at.is_some_and(|at| at <= now) => {
                    Err(AadError::secret_expired(&client_id))
                }
                Some(_) => Ok(ClientAuth::Secret),
            }
        }
        (None, Some(jwt)) => {
            match params.get("client_assertion_type").map(String::as_str) {
                Some(JWT_BEARER) => {}
                None => return Err(AadError::missing_parameter("client_assertion_type")),
                Some(_) => {
                    return Err(AadError::malformed(&format!(
                        "client_assertion_type must be '{JWT_BEARER}'"
                    )));
                }
            }
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let audiences = token_endpoint_audiences(shared, tenant);
            let verified =
                assertion::verify(jwt, &client.client_id, dir.certs(client), &audiences, now)?;
            if let Some(replay) = &shared.replay {
                replay.check(client.client_id, &verified, now)?;
            }
            Ok(ClientAuth::Certificate)
        }
    }
}

/// Token-endpoint URLs accepted as an assertion's `aud`: with the tenant GUID, its domain,
/// or the segment this request used.
fn token_endpoint_audiences(shared: &Shared, tenant: &str) -> Vec<String> {
    let regs = shared.state.directory();
    let mut out = vec![shared.state.endpoints(&shared.base_url).token_endpoint];
    for segment in [regs.regs.tenant.domain.as_str(), tenant] {
        let url = shared
            .state
            .endpoints_for_segment(&shared.base_url, segment)
            .token_endpoint;
        if !out.contains(&url) {
            out.push(url);
        }
    }
    out
}

/// `scope` must be `{resource}/.default` for exactly one registered API.
fn resolve_scope<'r>(regs: &'r Registrations, scope: Option<&String>) -> Result<&'r Api, AadError> {
    let scope = scope.ok_or_else(|| AadError::missing_parameter("scope"))?;
    let mut resources: Vec<&str> = Vec::new();
    for item in scope.split_whitespace() {
        if OIDC_SCOPES.iter().any(|s| s.eq_ignore_ascii_case(item)) {
            continue;
        }
        let Some(resource) = item.strip_suffix("/.default").filter(|r| !r.is_empty()) else {
            return Err(AadError::invalid_scope(item));
        };
        if !resources.iter().any(|r| r.eq_ignore_ascii_case(resource)) {
            resources.push(resource);
        }
    }
    match resources.as_slice() {
        [] => Err(AadError::invalid_scope(scope)),
        [one] => regs
            .api_for_resource(one)
            .ok_or_else(|| AadError::resource_not_found(one, &regs.tenant.domain)),
        _ => Err(AadError::multiple_resources()),
    }
}

fn respond(
    shared: &Shared,
    regs: &Registrations,
    client: &ClientApp,
    api: &Api,
    auth: ClientAuth,
) -> Result<TokenResponse, AadError> {
    let claims =
        shared
            .state
            .build_claims(&shared.base_url, regs, client, api, auth, shared.lifetime);
    let keys = shared.state.keys();
    let access_token = claims::sign(&keys, &claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        AadError::internal()
    })?;
    let lifetime = claims.exp - claims.iat;
    tracing::info!(
        client = %client.name, api = %api.name, kid = %keys.current().kid,
        roles = ?claims.roles, azpacr = %claims.azpacr, "issued an access token"
    );
    Ok(TokenResponse {
        token_type: "Bearer",
        expires_in: lifetime,
        ext_expires_in: lifetime,
        refresh_in: lifetime / 2,
        access_token,
    })
}
