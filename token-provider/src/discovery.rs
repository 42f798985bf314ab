//! OpenID discovery: the `token_endpoint` from `{authority}/.well-known/openid-configuration`,
//! fetched once, reused for [`crate::Config::metadata_ttl`], and kept when a later refresh
//! fails.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, Url};
use serde::Deserialize;

use crate::Error;
use crate::transport::{self, Failure};

const ENDPOINT: &str = "OpenID discovery";

#[derive(Deserialize)]
struct Metadata {
    token_endpoint: Option<String>,
}

/// The discovered token endpoint of one authority, shared by every provider built from
/// the same one.
pub(crate) struct Discovery {
    metadata_url: String,
    ttl: Duration,
    cached: Mutex<Option<(Arc<str>, Instant)>>,
    /// One discovery at a time.
    fetching: tokio::sync::Mutex<()>,
}

impl Discovery {
    pub(crate) fn new(metadata_url: String, ttl: Duration) -> Self {
        Discovery {
            metadata_url,
            ttl,
            cached: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<(Arc<str>, Instant)> {
        self.cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The token endpoint, from the cache while it is fresh.
    pub(crate) async fn token_endpoint(&self, http: &Client) -> Result<Arc<str>, Failure> {
        if let Some((url, at)) = self.cached()
            && at.elapsed() < self.ttl
        {
            return Ok(url);
        }
        let _one = self.fetching.lock().await;
        let stale = self.cached();
        if let Some((url, at)) = &stale
            && at.elapsed() < self.ttl
        {
            return Ok(url.clone());
        }
        match self.fetch(http).await {
            Ok(url) => {
                *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((url.clone(), Instant::now()));
                Ok(url)
            }
            Err(e) => match stale {
                Some((url, _)) => {
                    tracing::warn!(metadata_url = %self.metadata_url, error = ?e, "metadata refresh failed; keeping the known token endpoint");
                    Ok(url)
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self, http: &Client) -> Result<Arc<str>, Failure> {
        tracing::debug!(metadata_url = %self.metadata_url, "discovering the token endpoint");
        let response = http
            .get(&self.metadata_url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| transport::send_failure(ENDPOINT, &e))?;
        let body = transport::read(ENDPOINT, ENDPOINT, &self.metadata_url, response).await?;
        let unexpected = |message: String| {
            Failure::Fatal(Error::Unexpected {
                endpoint: ENDPOINT,
                url: self.metadata_url.clone(),
                message,
            })
        };
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| unexpected(format!("not an OpenID configuration document ({e})")))?;
        let endpoint = metadata
            .token_endpoint
            .ok_or_else(|| unexpected("the document has no token_endpoint".into()))?;
        let url = Url::parse(&endpoint)
            .map_err(|e| unexpected(format!("token_endpoint {endpoint:?} is not a URL ({e})")))?;
        if url.scheme() != "https" {
            return Err(unexpected(format!(
                "token_endpoint {endpoint} is not https; credentials are only sent over https"
            )));
        }
        Ok(Arc::from(endpoint))
    }
}
