//! The load generator's transport: the generated tonic client over one
//! hyper HTTP/2 connection, without `tonic::transport::Channel`'s buffer
//! task and reconnect machinery. Each call costs the generator less CPU, so
//! one generator core can keep one server core busy. (The client cold-start
//! scenario uses a real `Channel`, as the daemon does.)

use std::task::{Context, Poll};

use anyhow::Context as _;
use futures::future::BoxFuture;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tower::Service;

/// One HTTP/2 connection; clones share it (streams are multiplexed).
#[derive(Clone, Debug)]
pub(crate) struct H2Connection {
    send: SendRequest<Body>,
}

impl H2Connection {
    /// Connects to `authority` (`127.0.0.1:PORT`) over plaintext HTTP/2.
    pub(crate) async fn connect(authority: &str) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let (send, connection) = http2::Builder::new(TokioExecutor::new())
            .max_concurrent_reset_streams(1024)
            .handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP/2 handshake with {authority}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(H2Connection { send })
    }
}

impl Service<http::Request<Body>> for H2Connection {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.send.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.send.send_request(request))
    }
}
