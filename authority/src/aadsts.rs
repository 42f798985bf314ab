//! Entra's error responses: `AADSTS` codes, OAuth `error` values and HTTP statuses, in
//! Entra's JSON shape. The one place protocol errors become HTTP responses.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// A protocol error to report to the client. Messages never contain a secret.
#[derive(Clone, Debug)]
pub(crate) struct AadError {
    pub(crate) code: u32,
    pub(crate) error: &'static str,
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

fn err(code: u32, error: &'static str, status: StatusCode, message: String) -> AadError {
    AadError {
        code,
        error,
        status,
        message,
        retry_after: None,
    }
}

const BAD: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

impl AadError {
    /// AADSTS90002: unknown tenant (`invalid_request` at the token endpoint).
    pub(crate) fn tenant_not_found(tenant: &str, error: &'static str) -> Self {
        err(
            90002,
            error,
            BAD,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    /// AADSTS900144: a required parameter is missing.
    pub(crate) fn missing_parameter(name: &str) -> Self {
        err(
            900144,
            "invalid_request",
            BAD,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// AADSTS9002313: the request is malformed.
    pub(crate) fn malformed(detail: &str) -> Self {
        err(
            9002313,
            "invalid_request",
            BAD,
            format!("Invalid request. Request is malformed or invalid. - [{detail}]"),
        )
    }

    /// AADSTS70003: not the client-credentials grant.
    pub(crate) fn unsupported_grant_type(grant_type: &str) -> Self {
        err(
            70003,
            "unsupported_grant_type",
            BAD,
            format!(
                "The app requested an unsupported grant type '{}'. This development authority supports only 'client_credentials'.",
                truncate(grant_type)
            ),
        )
    }

    /// AADSTS700016: the client id is not registered.
    pub(crate) fn client_not_found(client_id: &str, tenant: &str) -> Self {
        err(
            700016,
            "unauthorized_client",
            BAD,
            format!(
                "Application with identifier '{}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                truncate(client_id)
            ),
        )
    }

    /// AADSTS7000215: wrong secret.
    pub(crate) fn invalid_secret(client_id: &str) -> Self {
        err(
            7000215,
            "invalid_client",
            UNAUTHORIZED,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    /// AADSTS7000222: the secret matched but has expired.
    pub(crate) fn secret_expired(client_id: &str) -> Self {
        err(
            7000222,
            "invalid_client",
            UNAUTHORIZED,
            format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        )
    }

    /// AADSTS7000218: no credential at all.
    pub(crate) fn no_credential() -> Self {
        err(7000218, "invalid_client", UNAUTHORIZED,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into())
    }

    /// AADSTS700027: the client assertion is not acceptable (signature, certificate,
    /// audience, replay, shape).
    pub(crate) fn bad_assertion(detail: &str) -> Self {
        err(
            700027,
            "invalid_client",
            UNAUTHORIZED,
            format!(
                "Client assertion failed signature validation or is invalid. [Reason - {detail}]"
            ),
        )
    }

    /// AADSTS700024: the client assertion is outside its validity window.
    pub(crate) fn assertion_time(detail: &str) -> Self {
        err(
            700024,
            "invalid_client",
            UNAUTHORIZED,
            format!("Client assertion is not within its valid time range. {detail}"),
        )
    }

    /// AADSTS700021: the assertion's `iss`/`sub` are not the client id.
    pub(crate) fn assertion_subject() -> Self {
        err(700021, "invalid_client", UNAUTHORIZED,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://aka.ms/msal-net-client-assertion.".into())
    }

    /// AADSTS70011: the scope is not `{resource}/.default`.
    pub(crate) fn invalid_scope(scope: &str) -> Self {
        err(
            70011,
            "invalid_scope",
            BAD,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {} is not valid. The client credentials flow needs a scope of the form '{{app id URI or client id}}/.default'.",
                truncate(scope)
            ),
        )
    }

    /// AADSTS700022: the scope names more than one resource.
    pub(crate) fn multiple_resources() -> Self {
        err(700022, "invalid_scope", BAD,
            "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope was requested for more than one resource.".into())
    }

    /// AADSTS500011: the resource is not registered.
    pub(crate) fn resource_not_found(resource: &str, tenant: &str) -> Self {
        err(
            500011,
            "invalid_resource",
            BAD,
            format!(
                "The resource principal named {} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                truncate(resource)
            ),
        )
    }

    /// AADSTS900561: the token endpoint only accepts POST.
    pub(crate) fn post_only(method: &str) -> Self {
        err(
            900561,
            "invalid_request",
            BAD,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                truncate(method)
            ),
        )
    }

    /// HTTP 500: the authority itself failed (e.g. signing).
    pub(crate) fn internal() -> Self {
        err(
            90100,
            "server_error",
            StatusCode::INTERNAL_SERVER_ERROR,
            "The development authority failed to process the request; see its log.".into(),
        )
    }

    /// HTTP 429 (injected fault).
    pub(crate) fn throttled(retry_after: u64) -> Self {
        AadError {
            retry_after: Some(retry_after),
            ..err(90055, "temporarily_unavailable", StatusCode::TOO_MANY_REQUESTS,
                "The server is throttling this client: too many requests (injected by the dev authority's fault injection). Retry after the Retry-After delay and cache tokens.".into())
        }
    }

    /// HTTP 503 (injected fault).
    pub(crate) fn unavailable(retry_after: Option<u64>) -> Self {
        AadError {
            retry_after,
            ..err(90033, "temporarily_unavailable", StatusCode::SERVICE_UNAVAILABLE,
                "A transient error has occurred. Please try again (injected by the dev authority's fault injection).".into())
        }
    }

    /// Renders Entra's JSON error body with trace and correlation ids.
    pub(crate) fn into_response(self, base_url: &str, request_headers: &HeaderMap) -> Response {
        let trace_id = Uuid::new_v4().to_string();
        let correlation_id = request_headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok())
            .unwrap_or_else(Uuid::new_v4)
            .to_string();
        let timestamp = OffsetDateTime::now_utc()
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .unwrap_or_default();
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.message
        );
        let body = serde_json::json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{base_url}/error?code={}", self.code),
        });
        tracing::info!(code = self.code, error = self.error, status = %self.status, %correlation_id, "token request rejected");
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&correlation_id) {
            headers.insert("client-request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&trace_id) {
            headers.insert("x-ms-request-id", v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Shortens a client-supplied value before it is echoed back (bounded responses).
fn truncate(value: &str) -> String {
    const MAX: usize = 200;
    if value.len() <= MAX {
        return value.to_owned();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}
