//! The library's one error type.

use std::path::PathBuf;

/// Everything that can go wrong when starting or operating a [`crate::DevAuthority`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file in the state folder failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", …).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The listener could not be bound or queried.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The registrations file is not valid TOML or breaks a rule (duplicate ids, unknown roles…).
    #[error("registrations ({path}): {message}")]
    Registrations {
        /// The registrations file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The signing-key file is unreadable or holds no usable key.
    #[error("signing keys ({path}): {message}")]
    Keys {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Creating or using a certificate or key failed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// TLS configuration failed.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// Signing a token failed.
    #[error("signing a token: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    /// No client with that name or client id is registered.
    #[error("no client registration named or with client id '{0}'")]
    UnknownClient(String),
    /// No API with that name, client id or app id URI is registered.
    #[error("no API registration named or identified by '{0}'")]
    UnknownApi(String),
    /// A configuration value is invalid.
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn cert(err: impl std::fmt::Display) -> Self {
        Error::Certificate(err.to_string())
    }
}
