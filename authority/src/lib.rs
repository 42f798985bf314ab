//! `dev-authority`: an Entra-shaped token authority for **development and tests only**.
//!
//! It serves, over HTTPS with a CA it creates itself, the three endpoints a
//! client-credentials daemon and a validating API use: OpenID discovery
//! (`/{tenant}/v2.0/.well-known/openid-configuration`), the signing keys
//! (`/{tenant}/discovery/v2.0/keys`) and the token endpoint
//! (`/{tenant}/oauth2/v2.0/token`), with Entra's claim set and Entra's error bodies.
//! A stock Microsoft client library (MSAL) works against it unchanged.
//!
//! Main types: [`DevAuthority`] (a running authority: start it with a [`Config`], ask it
//! for URLs, the CA, registrations; mint tokens, rotate keys, inject [`Faults`], count
//! token requests), [`Registrations`] (the declarative tenant / API / client file) and
//! [`AuthorityState`] (the state folder, used offline by the `todo-authority` CLI).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dev_authority::Error> {
//! use dev_authority::{Config, DevAuthority, defaults};
//! let authority = DevAuthority::start(Config::ephemeral()).await?;
//! let daemon = authority.client_settings(defaults::DAEMON_CLIENT)?;
//! println!("{} {} {}", daemon.authority, daemon.client_id, daemon.scope);
//! let token = authority.mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)?;
//! # let _ = token; Ok(()) }
//! ```

mod aadsts;
mod admin;
mod assertion;
mod authority;
mod ca;
mod claims;
mod config;
pub mod defaults;
mod discovery;
mod error;
mod faults;
mod files;
mod keys;
mod registrations;
mod secret;
mod server;
mod settings;
mod state;
mod stats;
mod token;

pub use authority::DevAuthority;
pub use ca::TlsIdentity;
pub use claims::AccessTokenClaims;
pub use config::{AdminMode, Config, StateLocation, TokenLifetime};
pub use error::Error;
pub use faults::{Fault, FaultEndpoint, FaultKind, Faults};
pub use keys::KeyRotation;
pub use registrations::{Api, ClientApp, ClientSecret, Grant, Registrations, Tenant};
pub use secret::Secret;
pub use settings::ClientSettings;
pub use state::{AuthorityState, Endpoints};
pub use stats::TokenStats;
