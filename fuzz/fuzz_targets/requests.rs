//! Hostile ToDo requests: the first byte picks the RPC (bits 0-2), the caller
//! (bit 3: application or user) and whether the rest is sent as one gRPC
//! frame or as the raw HTTP/2 body (bit 4); the rest is the message.
//!
//! Each input is (1) decoded with prost as that RPC's request message, which
//! must re-encode and decode to the same value, and (2) sent through the
//! server's own tonic service (`ToDoServiceServer<ToDoApi>`, with the server's
//! message size limit) over an in-memory store that asserts that only
//! validated values reach it. Whatever prost decodes, the server decodes too,
//! and its answer is one of the documented codes.
//!
//! Seeds: encoded valid and invalid requests (`corpus/requests/seed-*`).

#![no_main]

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use entra_auth::Caller;
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use todo_fuzz::MemStore;
use todo_proto::v1::to_do_service_server::ToDoServiceServer;
use todo_proto::v1::{
    CreateToDoRequest, DeleteToDoRequest, GetToDoRequest, ListToDosRequest, UpdateToDoRequest,
};
use todo_server::app::MAX_REQUEST_BYTES;
use todo_server::service::ToDoApi;
use tonic::Code;
use tower::ServiceExt;

const APP_OID: &str = "11111111-1111-4111-8111-111111111111";
const USER_OID: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const RPCS: [&str; 5] = [
    "CreateToDo",
    "GetToDo",
    "ListToDos",
    "UpdateToDo",
    "DeleteToDo",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let rpc = usize::from(selector & 0x07) % RPCS.len();
    let app_only = selector & 0x08 == 0;
    let framed = selector & 0x10 == 0;
    let decodes = match rpc {
        0 => roundtrip::<CreateToDoRequest>(message),
        1 => roundtrip::<GetToDoRequest>(message),
        2 => roundtrip::<ListToDosRequest>(message),
        3 => roundtrip::<UpdateToDoRequest>(message),
        _ => roundtrip::<DeleteToDoRequest>(message),
    };
    let code = call(rpc, app_only, framed, message);
    if framed && decodes {
        assert!(
            matches!(
                code,
                Code::Ok | Code::InvalidArgument | Code::NotFound | Code::Aborted
            ),
            "{} answered {code:?} to a well-formed message",
            RPCS[rpc]
        );
    }
    assert_ne!(code, Code::Unknown, "{} answered UNKNOWN", RPCS[rpc]);
});

/// Decodes `bytes` as `M`; a decoded message must survive a round trip.
fn roundtrip<M: Message + Default + PartialEq + Debug>(bytes: &[u8]) -> bool {
    let Ok(message) = M::decode(bytes) else {
        return false;
    };
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len());
    assert_eq!(M::decode(encoded.as_slice()).expect("re-decodes"), message);
    true
}

/// Sends `message` to the server's ToDo service as `RPCS[rpc]` and returns
/// the gRPC status code it answered.
fn call(rpc: usize, app_only: bool, framed: bool, message: &[u8]) -> Code {
    let caller = Caller {
        oid: if app_only { APP_OID } else { USER_OID }.to_owned(),
        tid: "00000000-0000-4000-8000-000000000000".to_owned(),
        azp: "fuzz-client".to_owned(),
        roles: vec!["ToDoList.ReadWrite.All".to_owned()],
        scopes: Vec::new(),
        app_only,
    };
    let store = Arc::new(MemStore::seeded(APP_OID, USER_OID));
    let service =
        ToDoServiceServer::new(ToDoApi::new(store)).max_decoding_message_size(MAX_REQUEST_BYTES);
    let body = if framed {
        let mut frame = Vec::with_capacity(message.len() + 5);
        frame.push(0); // not compressed
        frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(message);
        frame
    } else {
        message.to_vec()
    };
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://localhost/todo.v1.ToDoService/{}",
            RPCS[rpc]
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    request.extensions_mut().insert(caller);
    runtime().block_on(async {
        let response = service.oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.expect("response body");
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let status = parts
            .headers
            .get("grpc-status")
            .or_else(|| trailers.get("grpc-status"))
            .expect("every answer carries grpc-status");
        let code: i32 = status.to_str().unwrap().parse().unwrap();
        Code::from_i32(code)
    })
}
