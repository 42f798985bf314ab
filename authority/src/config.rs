//! [`Config`]: how to start a [`crate::DevAuthority`]; every field documents its default.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Where the authority keeps its CA, signing keys and registrations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateLocation {
    /// A fresh temporary folder, deleted when the [`crate::DevAuthority`] is dropped (tests).
    Ephemeral,
    /// A folder kept between runs (created if missing). The CLI default is `.todo-authority`.
    Dir(PathBuf),
}

/// Lifetime of issued access tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenLifetime {
    /// Like Entra: a random lifetime between 60 and 90 minutes per token. The default.
    EntraLike,
    /// Always this lifetime (short values are allowed, for tests of expiry and refresh).
    Fixed(Duration),
}

/// Whether the development admin surface (`/_admin/…`) is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminMode {
    /// On only when the listener is bound to a loopback address. The default.
    LoopbackOnly,
    /// Always on. Insecure on a reachable address: anyone can mint tokens and inject faults.
    Enabled,
    /// Never on.
    Disabled,
}

/// How to start a [`crate::DevAuthority`]. [`Config::default`] is the safe choice for tests:
/// loopback, a random port, an ephemeral state folder.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:0` (a free port; read the bound one back
    /// from [`crate::DevAuthority::local_addr`]). Binding a non-loopback address exposes a
    /// development authority to the network: don't.
    pub listen: SocketAddr,
    /// Where state lives. Default [`StateLocation::Ephemeral`].
    pub state: StateLocation,
    /// Base URL used in the issuer and every published endpoint, e.g.
    /// `https://localhost:8443`. Default: `https://{bound ip}:{bound port}` (`localhost`
    /// when bound to an unspecified address). It must be a name the TLS certificate
    /// covers: add it to [`Config::tls_names`] if it is not a loopback name.
    pub public_url: Option<String>,
    /// Extra DNS names or IP addresses for the TLS server certificate, beyond the default
    /// `localhost`, `127.0.0.1` and `::1`. Default empty.
    pub tls_names: Vec<String>,
    /// Access-token lifetime. Default [`TokenLifetime::EntraLike`] (60–90 minutes).
    pub token_lifetime: TokenLifetime,
    /// The admin surface. Default [`AdminMode::LoopbackOnly`].
    pub admin: AdminMode,
    /// Reject a client assertion whose `jti` was already used. Default `true`.
    /// Turning it off weakens replay protection; MSAL Python re-sends one assertion for up
    /// to 9 minutes, so a second token request from the same MSAL app within that window
    /// needs this off.
    pub reject_assertion_replay: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state: StateLocation::Ephemeral,
            public_url: None,
            tls_names: Vec::new(),
            token_lifetime: TokenLifetime::EntraLike,
            admin: AdminMode::LoopbackOnly,
            reject_assertion_replay: true,
        }
    }
}

impl Config {
    /// The test setup: `127.0.0.1:0`, a temporary state folder, default lifetimes.
    pub fn ephemeral() -> Self {
        Config::default()
    }

    /// A persistent state folder, otherwise defaults.
    pub fn with_state_dir(dir: impl Into<PathBuf>) -> Self {
        Config {
            state: StateLocation::Dir(dir.into()),
            ..Config::default()
        }
    }

    /// Sets a fixed token lifetime.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = TokenLifetime::Fixed(lifetime);
        self
    }

    /// Sets the listen address.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Whether the admin surface is served on `bound`.
    pub(crate) fn admin_enabled(&self, bound: SocketAddr) -> bool {
        match self.admin {
            AdminMode::Enabled => true,
            AdminMode::Disabled => false,
            AdminMode::LoopbackOnly => bound.ip().is_loopback(),
        }
    }

    /// The base URL for a listener bound to `bound`.
    pub(crate) fn base_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = match bound.ip() {
            ip if ip.is_unspecified() => "localhost".to_owned(),
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        format!("https://{host}:{}", bound.port())
    }
}
