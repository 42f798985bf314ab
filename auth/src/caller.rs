//! The authenticated caller, as handlers see it.

/// An authenticated Entra principal, taken from a validated access token.
///
/// The authentication layer inserts it into the request extensions; a handler
/// that finds none must treat the call as unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Object id (`oid`) of the principal: the service principal for app-only
    /// tokens, the user otherwise.
    pub oid: String,
    /// Tenant id (`tid`).
    pub tid: String,
    /// Client application id (`azp`, or `appid` in v1 tokens).
    pub azp: String,
    /// App roles granted to the caller (`roles`).
    pub roles: Vec<String>,
    /// Delegated scopes (`scp`, split on spaces).
    pub scopes: Vec<String>,
    /// Whether the token is app-only (no user): `idtyp == "app"` when present,
    /// otherwise roles without scopes.
    pub app_only: bool,
}
