//! The default registration written on first start, matching Microsoft's daemon sample:
//! a "ToDoList API" with two app roles, a read-write daemon and a read-only daemon.

use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::files::{self, PRIVATE, PUBLIC};
use crate::{Api, ClientApp, Error, Grant, Registrations, Secret, Tenant};

/// Name of the default API ("ToDoList API").
pub const TODO_API: &str = "todo";
/// Name of the default read-write daemon client (granted `ToDoList.ReadWrite.All`).
pub const DAEMON_CLIENT: &str = "daemon";
/// Name of the default read-only daemon client (granted `ToDoList.Read.All`).
pub const READER_CLIENT: &str = "reader";
/// The read app role.
pub const READ_ROLE: &str = "ToDoList.Read.All";
/// The read-write app role.
pub const READ_WRITE_ROLE: &str = "ToDoList.ReadWrite.All";
/// Default tenant domain.
pub const TENANT_DOMAIN: &str = "todo-dev.onmicrosoft.com";
/// The daemon's certificate, relative to the state folder (its key is `…/daemon.key.pem`).
pub const DAEMON_CERT_FILE: &str = "clients/daemon.cert.pem";
/// The daemon's certificate private key, relative to the state folder.
pub const DAEMON_KEY_FILE: &str = "clients/daemon.key.pem";

/// Fresh default registrations with random ids and secrets. The daemon also gets a
/// certificate: its PEM files are written under `state_dir/clients/`.
pub(crate) fn create(state_dir: &Path) -> Result<Registrations, Error> {
    write_client_certificate(state_dir, "ToDoList daemon")?;
    let api_id = Uuid::new_v4();
    let api_uri = format!("api://{api_id}");
    Ok(Registrations {
        tenant: Tenant {
            id: Uuid::new_v4(),
            domain: TENANT_DOMAIN.into(),
        },
        apis: vec![Api {
            name: TODO_API.into(),
            display_name: "ToDoList API".into(),
            client_id: api_id,
            app_id_uri: api_uri.clone(),
            app_roles: vec![READ_ROLE.into(), READ_WRITE_ROLE.into()],
            emit_idtyp: true,
        }],
        clients: vec![
            ClientApp {
                name: DAEMON_CLIENT.into(),
                display_name: "ToDoList daemon".into(),
                client_id: Uuid::new_v4(),
                object_id: Uuid::new_v4(),
                secrets: vec![Secret::generate().into()],
                certificates: vec![DAEMON_CERT_FILE.into()],
                grants: vec![Grant {
                    api: api_uri.clone(),
                    roles: vec![READ_WRITE_ROLE.into()],
                }],
            },
            ClientApp {
                name: READER_CLIENT.into(),
                display_name: "ToDoList read-only daemon".into(),
                client_id: Uuid::new_v4(),
                object_id: Uuid::new_v4(),
                secrets: vec![Secret::generate().into()],
                certificates: vec![],
                grants: vec![Grant {
                    api: api_uri,
                    roles: vec![READ_ROLE.into()],
                }],
            },
        ],
    })
}

/// The header put above a generated registrations file.
pub(crate) const FILE_HEADER: &str = "\
# todo-authority registrations: DEVELOPMENT ONLY. Holds client secrets: keep it 0600.
# Format: see authority/registrations.example.toml in the repository.
# A running `todo-authority serve` reloads this file when it changes.

";

/// Writes an RSA key and a self-signed certificate for a client (certificate credential).
fn write_client_certificate(state_dir: &Path, subject: &str) -> Result<(), Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(Error::cert)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, subject);
    params.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(730);
    let cert = params.self_signed(&key).map_err(Error::cert)?;
    files::write_atomic(
        &state_dir.join(DAEMON_KEY_FILE),
        key.serialize_pem().as_bytes(),
        PRIVATE,
    )?;
    files::write_atomic(
        &state_dir.join(DAEMON_CERT_FILE),
        cert.pem().as_bytes(),
        PUBLIC,
    )
}
