//! Microsoft Entra access-token validation for tonic services.
//!
//! This crate knows nothing about to-dos. Its request-facing type is
//! [`Caller`]: the authenticated principal that the authentication layer puts
//! into every request's extensions.

mod caller;

pub use caller::Caller;
