//! Integration tests of the ToDo server, compiled into one binary.
//!
//! Every test starts a real server on `127.0.0.1:0` and talks to it over a
//! real socket; the tools other languages use (grpcurl, Python grpcio) are run
//! for real against it.

mod attacks;
mod auth;
mod authority_faults;
mod crash;
mod e2e;
mod grpcurl;
mod ops;
mod python;
mod replicas;
mod store_suite;
mod util;
