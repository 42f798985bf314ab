//! The ToDo gRPC server.
//!
//! - [`app::serve`] builds the whole server stack (limits, TLS, the
//!   authentication layer, the ToDo service, health and reflection) on a
//!   listener, until a shutdown future completes.
//! - [`service::ToDoApi`] implements `todo.v1.ToDoService` over a
//!   [`store::Store`]: validation, ownership and error mapping.
//! - [`store`] holds the storage trait and its backends (SQLite).

pub mod app;
pub mod config;
pub mod limits;
pub mod metrics;
mod page_token;
pub mod service;
pub mod store;

pub use app::{AuthLayer, ServeOptions, serve};
