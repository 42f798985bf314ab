//! Microsoft Entra access-token validation for tonic services.
//!
//! This crate knows nothing about to-dos; any tonic service can use it.
//!
//! - [`Config`] (with secure defaults) and [`Authority`] describe what to trust;
//!   [`AzureAdSettings`] reads them from a .NET `appsettings.json`.
//! - [`Validator`] fetches the authority's OIDC metadata and signing keys,
//!   keeps them fresh (key rollover within the request, single-flight,
//!   rate-limited), and turns a bearer token into a [`Caller`].
//! - [`Permissions`] maps each gRPC path to the app roles or delegated scopes
//!   it accepts; unlisted RPCs are denied.
//! - [`AuthLayer`] is the tower layer that puts it together: it puts the
//!   [`Caller`] into the request extensions or answers with a gRPC error
//!   built by [`Error::to_status`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use entra_auth::{Authority, Config, Permissions, Requirement, Validator};
//!
//! let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0")?;
//! let validator = Validator::new(Config::new(authority, "api-client-id"))?;
//! let permissions = Permissions::new()
//!     .rpc("/todo.v1.ToDoService/GetToDo", Requirement::roles(["ToDoList.Read.All"]));
//! let layer = validator.layer(permissions);
//! // Server::builder().layer(layer).add_service(...).serve(...)
//! # Ok(()) }
//! ```

mod appsettings;
mod authority;
mod cache;
mod caller;
mod config;
pub mod dotnet_json;
mod error;
// Fuzzing entry points: only with `--cfg fuzzing` (cargo fuzz), never in a normal build.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod layer;
mod metadata;
mod permissions;
mod policy;
mod token;
mod validate;

pub use appsettings::{AzureAdSettings, PermissionGroups};
pub use authority::Authority;
pub use caller::Caller;
pub use config::Config;
pub use error::{ERROR_DOMAIN, Error};
pub use layer::{AuthLayer, AuthService};
pub use permissions::{DEFAULT_PUBLIC_SERVICES, Permissions, Requirement};
pub use validate::Validator;
