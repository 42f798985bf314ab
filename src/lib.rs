//! The ToDo service contract, generated from `proto/todo/v1/todo.proto`.
//!
//! - [`v1`]: messages plus the tonic client ([`v1::to_do_service_client`]) and
//!   server ([`v1::to_do_service_server`]) for `todo.v1.ToDoService`.
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of the contract and its
//!   imports, for gRPC server reflection or dynamic clients.

/// `todo.v1`: the first stable version of the ToDo contract.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("todo.v1");
}

/// Encoded `google.protobuf.FileDescriptorSet` of `todo.v1` and every file it imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/todo_descriptor.bin"));
