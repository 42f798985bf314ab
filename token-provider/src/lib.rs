//! App-only Microsoft Entra access tokens for daemons: the OAuth 2.0 client-credentials
//! grant with a client secret, a certificate (PS256 assertion) or a federated token file,
//! an in-memory cache with background refresh and single-flight acquisition, and a tower
//! layer that puts the token on every tonic call.
//!
//! This crate knows nothing about any particular API.
//!
//! - [`Config`] (secure defaults) / [`DaemonSettings`] (a .NET `appsettings.json` merged
//!   with flags) describe who asks whom for what; [`Credential`] says how the client proves
//!   its identity.
//! - [`TokenProvider`] hands out [`AccessToken`]s: cached ones without touching the network,
//!   new ones through one shared request, retried with backoff and `Retry-After`.
//! - [`BearerLayer`] wraps a `tonic::transport::Channel`; [`retry_unauthenticated_once`]
//!   replays a call once when the server rejects the token.
//! - [`Error`] says what went wrong and what to check (AADSTS codes included), never a
//!   secret.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use entra_token_provider::{BearerLayer, DaemonSettings};
//!
//! let settings = DaemonSettings::from_file("appsettings.json")?;
//! let provider = settings.provider()?;
//! let token = provider.token().await?; // e.g. for `grpcurl -H "authorization: Bearer …"`
//! # let _ = token;
//! let channel = tonic::transport::Endpoint::from_static("https://localhost:50051").connect().await?;
//! let channel = tower::ServiceBuilder::new().layer(BearerLayer::new(provider)).service(channel);
//! # let _ = channel; Ok(()) }
//! ```

mod assertion;
mod cache;
mod config;
mod credential;
mod discovery;
mod error;
mod layer;
mod provider;
mod scope;
mod secret;
mod settings;
mod token;
mod transport;

pub use assertion::CertificateCredential;
pub use cache::TokenCache;
pub use config::{Config, RetryPolicy};
pub use credential::{Credential, FEDERATED_TOKEN_FILE_ENV};
pub use entra_auth::Authority;
pub use error::{EntraError, Error};
pub use layer::{
    BearerLayer, BearerService, BoxError, ResponseFuture, WatchedBody, retry_unauthenticated_once,
};
pub use provider::TokenProvider;
pub use secret::{ClientSecret, PrivateKeyPem};
pub use settings::{CredentialSource, DEFAULT_API_SECTION, DaemonSettings};
pub use token::AccessToken;
