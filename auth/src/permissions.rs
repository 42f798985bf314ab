//! Which caller may call which RPC: a table the service builds in one place.

use std::collections::HashMap;

use crate::{Caller, Error};

/// Health and reflection services, public unless [`Permissions::no_public_services`].
pub const DEFAULT_PUBLIC_SERVICES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// What one RPC accepts: any one of the app roles or any one of the
/// delegated scopes suffices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requirement {
    roles: Vec<String>,
    scopes: Vec<String>,
}

impl Requirement {
    /// Accepts callers holding any of these app roles (`roles` claim).
    pub fn roles<I, S>(roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Requirement::default().or_roles(roles)
    }

    /// Accepts callers holding any of these delegated scopes (`scp` claim).
    pub fn scopes<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Requirement::default().or_scopes(scopes)
    }

    /// Also accepts these app roles.
    pub fn or_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Also accepts these delegated scopes.
    pub fn or_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The accepted app roles.
    pub fn accepted_roles(&self) -> &[String] {
        &self.roles
    }

    /// The accepted delegated scopes.
    pub fn accepted_scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether the caller holds one of the accepted roles or scopes.
    pub fn allows(&self, caller: &Caller) -> bool {
        caller.roles.iter().any(|r| self.roles.contains(r))
            || caller.scopes.iter().any(|s| self.scopes.contains(s))
    }
}

/// The per-RPC permission table. An RPC that is not in it is denied.
///
/// ```
/// use entra_auth::{Permissions, Requirement};
///
/// let read = Requirement::roles(["ToDoList.Read.All", "ToDoList.ReadWrite.All"])
///     .or_scopes(["ToDoList.Read", "ToDoList.ReadWrite"]);
/// let permissions = Permissions::new().rpc("/todo.v1.ToDoService/GetToDo", read);
/// assert!(permissions.is_public("/grpc.health.v1.Health/Check"));
/// ```
#[derive(Clone, Debug)]
pub struct Permissions {
    rpcs: HashMap<String, Requirement>,
    public: Vec<String>,
}

impl Default for Permissions {
    fn default() -> Self {
        Self::new()
    }
}

impl Permissions {
    /// An empty table (every RPC denied) with health and reflection public
    /// ([`DEFAULT_PUBLIC_SERVICES`]).
    pub fn new() -> Self {
        Permissions {
            rpcs: HashMap::new(),
            public: DEFAULT_PUBLIC_SERVICES.map(str::to_owned).to_vec(),
        }
    }

    /// Makes no service public: health and reflection then need a token too.
    pub fn no_public_services(mut self) -> Self {
        self.public.clear();
        self
    }

    /// Makes a whole service reachable without a token, by path prefix
    /// (`/package.Service/`).
    pub fn public_service(mut self, prefix: impl Into<String>) -> Self {
        self.public.push(prefix.into());
        self
    }

    /// Sets what `path` (`/package.Service/Method`) accepts.
    pub fn rpc(mut self, path: impl Into<String>, requirement: Requirement) -> Self {
        self.rpcs.insert(path.into(), requirement);
        self
    }

    /// Whether `path` is reachable without a token.
    pub fn is_public(&self, path: &str) -> bool {
        self.public.iter().any(|p| path.starts_with(p.as_str()))
    }

    /// Every path in the table, e.g. to check at startup that each method of
    /// a service is covered.
    pub fn rpcs(&self) -> impl Iterator<Item = &str> {
        self.rpcs.keys().map(String::as_str)
    }

    /// The requirement for `path`, if it is in the table.
    pub fn requirement(&self, path: &str) -> Option<&Requirement> {
        self.rpcs.get(path)
    }

    /// Checks an authenticated caller against the table. `allow_listed`
    /// callers (ACL mode) may call every RPC in the table.
    pub fn authorize(&self, path: &str, caller: &Caller, allow_listed: bool) -> Result<(), Error> {
        let Some(requirement) = self.rpcs.get(path) else {
            return Err(Error::RpcNotAllowed {
                path: path.to_owned(),
            });
        };
        if allow_listed || requirement.allows(caller) {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            path: path.to_owned(),
            roles: requirement.roles.join(", "),
            scopes: requirement.scopes.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[&str], scopes: &[&str]) -> Caller {
        Caller {
            oid: "o".into(),
            tid: "t".into(),
            azp: "a".into(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            app_only: scopes.is_empty(),
        }
    }

    #[test]
    fn any_one_role_or_scope_suffices_and_unlisted_is_denied() {
        let p = Permissions::new().rpc(
            "/s.S/Get",
            Requirement::roles(["R.All", "RW.All"]).or_scopes(["R", "RW"]),
        );
        assert!(
            p.authorize("/s.S/Get", &caller(&["RW.All"], &[]), false)
                .is_ok()
        );
        assert!(
            p.authorize("/s.S/Get", &caller(&[], &["x", "R"]), false)
                .is_ok()
        );
        let denied = p.authorize("/s.S/Get", &caller(&["Other"], &["RW.All"]), false);
        let denied = denied.unwrap_err();
        assert_eq!(denied.reason(), "INSUFFICIENT_PERMISSION");
        assert!(denied.to_string().contains("R.All, RW.All"), "{denied}");
        let unlisted = p.authorize("/s.S/Delete", &caller(&["RW.All"], &[]), false);
        assert_eq!(unlisted.unwrap_err().reason(), "RPC_NOT_ALLOWED");
        assert!(p.authorize("/s.S/Get", &caller(&[], &[]), true).is_ok());
        assert!(p.authorize("/s.S/Delete", &caller(&[], &[]), true).is_err());
    }

    #[test]
    fn public_services() {
        let p = Permissions::new();
        assert!(p.is_public("/grpc.health.v1.Health/Watch"));
        assert!(p.is_public("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
        assert!(!p.is_public("/grpc.health.v1.HealthX/Check"));
        assert!(
            !Permissions::new()
                .no_public_services()
                .is_public("/grpc.health.v1.Health/Check")
        );
    }
}
