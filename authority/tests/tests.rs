//! Integration tests of the development authority: real HTTPS over real sockets, trusting
//! the generated CA. One binary; helpers in `util.rs`.

mod admin;
mod assertion;
mod cli;
mod discovery;
mod msal;
mod state;
mod token;
mod util;
