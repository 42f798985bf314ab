//! Integration tests of `entra-token-provider` against a real development authority
//! (`dev-authority`) over HTTPS on 127.0.0.1:0, and a real tonic server.

mod concurrency;
mod credentials;
mod errors;
mod faults;
mod grpc;
mod settings;
mod util;
