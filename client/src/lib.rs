//! The ToDo daemon: the client half of the system.
//!
//! - [`Daemon`] connects to the server through an
//!   [`entra_token_provider::BearerLayer`], so every call carries a cached
//!   client-credentials token, and retries a call once after UNAUTHENTICATED
//!   with a fresh token. Its errors say what to do ([`DaemonError`]).
//! - [`script::scripted_run`] replays the .NET sample's run and prints its
//!   transcript.
//! - [`config`] holds the command line and its resolution into a
//!   [`DaemonConfig`].

pub mod config;
mod daemon;
pub mod script;

pub use config::DaemonConfig;
pub use daemon::{Daemon, DaemonError};
