//! Every RPC and every error code, through a tonic client over a real socket.

use prost_types::FieldMask;
use todo_proto::v1::{
    CreateToDoRequest, DeleteToDoRequest, GetToDoRequest, ListToDosRequest, ToDo, UpdateToDoRequest,
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::util::{ALICE, APP_OID, BOB, TestServer, as_caller, create, sqlite_store};

const APP: &str = "app:11111111-1111-4111-8111-111111111111";
const USER_ALICE: &str = "user:aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const USER_BOB: &str = "user:bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";

#[tokio::test]
async fn crud_round_trip_as_application() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let mut client = server.client().await;

    let first = client
        .create_to_do(as_caller(APP, create("  Bake bread  ")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, 1);
    assert_eq!(first.description, "Bake bread", "trimmed");
    assert_eq!(first.owner, APP_OID, "defaults to the caller's oid");
    assert!(first.create_time.is_some() && first.update_time.is_some());
    assert!(!first.etag.is_empty());

    // Application callers may choose the owner.
    let second = client
        .create_to_do(as_caller(
            APP,
            CreateToDoRequest {
                todo: Some(ToDo {
                    description: "Butter bread".into(),
                    owner: ALICE.to_uppercase(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.id, 2);
    assert_eq!(second.owner, ALICE, "normalised UUID");

    let got = client
        .get_to_do(as_caller(APP, GetToDoRequest { id: 1 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, first);

    let list = client
        .list_to_dos(as_caller(APP, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.todos, vec![first.clone(), second.clone()]);
    assert!(list.next_page_token.is_empty());

    let updated = client
        .update_to_do(as_caller(
            APP,
            UpdateToDoRequest {
                todo: Some(ToDo {
                    id: 2,
                    description: "Eat bread".into(),
                    etag: second.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.description, "Eat bread");
    assert_ne!(updated.etag, second.etag);
    assert_eq!(updated.owner, ALICE, "owner is not updatable");

    // A stale etag is ABORTED and changes nothing.
    let stale = client
        .update_to_do(as_caller(
            APP,
            UpdateToDoRequest {
                todo: Some(ToDo {
                    id: 2,
                    description: "Burn bread".into(),
                    etag: second.etag.clone(),
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    assert!(stale.message().contains("etag"), "{}", stale.message());

    let stale_delete = client
        .delete_to_do(as_caller(
            APP,
            DeleteToDoRequest {
                id: 2,
                etag: second.etag.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(stale_delete.code(), Code::Aborted);

    client
        .delete_to_do(as_caller(
            APP,
            DeleteToDoRequest {
                id: 2,
                etag: updated.etag.clone(),
            },
        ))
        .await
        .unwrap();
    client
        .delete_to_do(as_caller(
            APP,
            DeleteToDoRequest {
                id: 1,
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    let missing = client
        .get_to_do(as_caller(APP, GetToDoRequest { id: 1 }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("1"), "{}", missing.message());
    let list = client
        .list_to_dos(as_caller(APP, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(list.todos.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn users_see_and_change_only_their_own() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let mut client = server.client().await;

    // A user cannot create for someone else: the owner is forced to its oid.
    let mut req = create("alice's");
    req.todo.as_mut().unwrap().owner = BOB.into();
    let alices = client
        .create_to_do(as_caller(USER_ALICE, req))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alices.owner, ALICE);
    let bobs = client
        .create_to_do(as_caller(USER_BOB, create("bob's")))
        .await
        .unwrap()
        .into_inner();

    // Someone else's to-do is NOT_FOUND, exactly like a missing one.
    for status in [
        client
            .get_to_do(as_caller(USER_ALICE, GetToDoRequest { id: bobs.id }))
            .await
            .unwrap_err(),
        client
            .update_to_do(as_caller(
                USER_ALICE,
                UpdateToDoRequest {
                    todo: Some(ToDo {
                        id: bobs.id,
                        description: "mine now".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
            ))
            .await
            .unwrap_err(),
        client
            .delete_to_do(as_caller(
                USER_ALICE,
                DeleteToDoRequest {
                    id: bobs.id,
                    etag: String::new(),
                },
            ))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    let alice_list = client
        .list_to_dos(as_caller(USER_ALICE, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice_list.todos, vec![alices.clone()]);

    // The application sees both; Bob's to-do is untouched.
    let all = client
        .list_to_dos(as_caller(APP, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.todos, vec![alices, bobs]);
    server.stop().await;
}

#[tokio::test]
async fn invalid_arguments_name_the_field() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let mut client = server.client().await;

    let cases: Vec<(CreateToDoRequest, &str)> = vec![
        (
            CreateToDoRequest {
                todo: None,
                ..Default::default()
            },
            "todo is required",
        ),
        (create(""), "todo.description"),
        (create("   \t\n "), "todo.description"),
        (create(&"x".repeat(1025)), "todo.description"),
        (
            CreateToDoRequest {
                todo: Some(ToDo {
                    description: "ok".into(),
                    owner: "not-a-uuid".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            "todo.owner",
        ),
    ];
    for (req, needle) in cases {
        let status = client.create_to_do(as_caller(APP, req)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(needle), "{}", status.message());
    }
    // Exactly 1024 characters (multi-byte) is fine.
    let long = "é".repeat(1024);
    let ok = client
        .create_to_do(as_caller(APP, create(&long)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.description, long);

    let bad_mask = client
        .update_to_do(as_caller(
            APP,
            UpdateToDoRequest {
                todo: Some(ToDo {
                    id: ok.id,
                    description: "x".into(),
                    owner: BOB.into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["owner".into()],
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_mask.code(), Code::InvalidArgument);
    assert!(
        bad_mask.message().contains("owner"),
        "{}",
        bad_mask.message()
    );

    let empty_update = client
        .update_to_do(as_caller(
            APP,
            UpdateToDoRequest {
                todo: Some(ToDo {
                    id: ok.id,
                    ..Default::default()
                }),
                update_mask: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(empty_update.code(), Code::InvalidArgument);
    assert!(empty_update.message().contains("todo.description"));

    let negative = client
        .list_to_dos(as_caller(
            APP,
            ListToDosRequest {
                page_size: -1,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument);
    assert!(negative.message().contains("page_size"));

    let bad_token = client
        .list_to_dos(as_caller(
            APP,
            ListToDosRequest {
                page_size: 0,
                page_token: "not a token".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().contains("page_token"));

    // Nothing invalid was stored.
    let all = client
        .list_to_dos(as_caller(APP, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.todos.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn pagination_defaults_clamps_and_walks() {
    let (store, _dir) = sqlite_store().await;
    for i in 0..1105 {
        store
            .create(todo_server::store::NewToDo {
                owner: ALICE.into(),
                description: format!("item {i}"),
                request_id: None,
            })
            .await
            .unwrap();
    }
    let server = TestServer::start(store).await;
    let mut client = server.client().await;

    let default = client
        .list_to_dos(as_caller(APP, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(default.todos.len(), 50);
    assert!(!default.next_page_token.is_empty());

    let clamped = client
        .list_to_dos(as_caller(
            APP,
            ListToDosRequest {
                page_size: 5000,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clamped.todos.len(), 1000);

    // Walk every page of 300: every id exactly once, in order.
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_to_dos(as_caller(
                APP,
                ListToDosRequest {
                    page_size: 300,
                    page_token: token.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.todos.iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids, (1..=1105).collect::<Vec<i64>>());
    server.stop().await;
}

#[tokio::test]
async fn unauthenticated_calls_are_refused() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let mut client = server.client().await;
    let status = client
        .create_to_do(tonic::Request::new(create("sneaky")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = client
        .list_to_dos(tonic::Request::new(ListToDosRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let all = client
        .list_to_dos(as_caller(APP, ListToDosRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(all.todos.is_empty(), "nothing was written");
    server.stop().await;
}

#[tokio::test]
async fn oversized_requests_are_rejected() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let mut client = server.client().await;
    let status = client
        .create_to_do(as_caller(APP, create(&"x".repeat(70 * 1024))))
        .await
        .unwrap_err();
    // tonic answers OUT_OF_RANGE for a message over the decoding limit.
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("65536"), "{}", status.message());
    server.stop().await;
}

#[tokio::test]
async fn health_reports_serving() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let mut health = HealthClient::new(server.channel().await);
    let mut status = ServingStatus::Unknown;
    for _ in 0..50 {
        status = health
            .check(HealthCheckRequest {
                service: "todo.v1.ToDoService".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        if status == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, ServingStatus::Serving);
    server.stop().await;
}

#[tokio::test]
async fn health_follows_the_readiness_check() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let (store, _dir) = sqlite_store().await;
    let ready = Arc::new(AtomicBool::new(false));
    let check = Arc::clone(&ready);
    let server = TestServer::start_with(
        store,
        todo_server::ServeOptions {
            ready: Some(Arc::new(move || check.load(Ordering::SeqCst))),
            readiness_interval: Some(std::time::Duration::from_millis(50)),
            ..Default::default()
        },
    )
    .await;
    let mut health = HealthClient::new(server.channel().await);
    let check = |mut health: HealthClient<tonic::transport::Channel>| async move {
        let s = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        (s, health)
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (s, h) = check(health).await;
    health = h;
    assert_eq!(s, ServingStatus::NotServing);
    ready.store(true, Ordering::SeqCst);
    let mut s = ServingStatus::Unknown;
    for _ in 0..50 {
        let (got, h) = check(health).await;
        health = h;
        s = got;
        if s == ServingStatus::Serving {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(s, ServingStatus::Serving);
    server.stop().await;
}

#[tokio::test]
async fn tls_end_to_end() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut ca = ca;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &rcgen::Issuer::new(ca, &ca_key))
        .unwrap();

    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start_with(
        store,
        todo_server::ServeOptions {
            tls: Some(Identity::from_pem(leaf.pem(), leaf_key.serialize_pem())),
            ..Default::default()
        },
    )
    .await;
    let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca_cert.pem()))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = todo_proto::v1::to_do_service_client::ToDoServiceClient::new(channel);
    let created = client
        .create_to_do(as_caller(APP, create("over TLS")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.description, "over TLS");

    // A client that does not trust the CA cannot talk to it.
    let untrusted = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(ClientTlsConfig::new().domain_name("localhost"))
        .unwrap()
        .connect()
        .await;
    assert!(untrusted.is_err(), "an untrusted certificate must fail");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls() {
    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start(store).await;
    let channel = server.channel().await;
    // Many calls in flight when shutdown starts all complete.
    let calls: Vec<_> = (0..100)
        .map(|i| {
            let mut client =
                todo_proto::v1::to_do_service_client::ToDoServiceClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .create_to_do(as_caller(APP, create(&format!("drain {i}"))))
                    .await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let stop = tokio::spawn(server.stop());
    let mut ok = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            // Calls that had not reached the server before it stopped
            // accepting are refused cleanly, never half-done.
            Err(status) => assert!(
                matches!(status.code(), Code::Unavailable | Code::Cancelled),
                "{status:?}"
            ),
        }
    }
    stop.await.unwrap();
    assert!(ok > 0, "in-flight calls completed");
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.clone().self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = rcgen::CertificateParams::new(vec!["todo-daemon".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();

    let (store, _dir) = sqlite_store().await;
    let server = TestServer::start_with(
        store,
        todo_server::ServeOptions {
            tls: Some(Identity::from_pem(
                server_cert.pem(),
                server_key.serialize_pem(),
            )),
            client_ca: Some(Certificate::from_pem(ca_cert.pem())),
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://localhost:{}", server.addr.port());
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_cert.pem()))
        .domain_name("localhost");

    // Without a client certificate the handshake (or the first call) fails.
    let anonymous = match Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls.clone())
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => todo_proto::v1::to_do_service_client::ToDoServiceClient::new(channel)
            .create_to_do(as_caller(APP, create("no client cert")))
            .await
            .is_err(),
    };
    assert!(anonymous, "a client without a certificate must be refused");

    let channel = Channel::from_shared(url)
        .unwrap()
        .tls_config(tls.identity(Identity::from_pem(
            client_cert.pem(),
            client_key.serialize_pem(),
        )))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let created = todo_proto::v1::to_do_service_client::ToDoServiceClient::new(channel)
        .create_to_do(as_caller(APP, create("with a client cert")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.description, "with a client cert");
    server.stop().await;
}
