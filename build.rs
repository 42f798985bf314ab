//! Compiles `proto/` into Rust stubs with a pure-Rust protobuf compiler
//! (protox), so building needs no `protoc`, and writes the file-descriptor set
//! that the server's reflection service publishes.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/todo/v1/todo.proto"];
    let includes = ["proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-changed=proto");

    let fds = protox::compile(protos, includes)?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("todo_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
