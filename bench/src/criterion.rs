//! Reads the criterion micro-benchmarks of the auth crates from criterion's
//! output folder (`$CARGO_TARGET_DIR/criterion`), written by
//! `cargo bench -p entra-auth --bench validate` and
//! `cargo bench -p entra-token-provider --bench hot_path`.

use std::path::Path;

/// The benchmark ids the suite reports, as criterion names their folders.
pub(crate) const RAW_RSA: &str = "rs256_verify_raw_jsonwebtoken_aws_lc";
/// Validation without the verified-token cache.
pub(crate) const COLD: &str = "validate_cold_no_cache";
/// Validation hitting the cache.
pub(crate) const CACHED: &str = "validate_cache_hit";
/// The whole tower layer on a cache hit.
pub(crate) const LAYER: &str = "layer_call_cache_hit";
/// `TokenProvider::cached_token`.
pub(crate) const PROVIDER_CACHED: &str = "cached_token";
/// `TokenProvider::token` on a cached token, polled once.
pub(crate) const PROVIDER_TOKEN: &str = "token (cached, polled once)";
/// A service call without the bearer layer.
pub(crate) const CALL_BARE: &str = "service call without layer";
/// The same call through `BearerLayer`.
pub(crate) const CALL_BEARER: &str = "service call through BearerLayer";

/// Median time of benchmark `id`, in nanoseconds, from its latest run.
pub(crate) fn median_ns(dir: &Path, id: &str) -> Option<f64> {
    let folder = id.replace(['/', '\\', ':', '?', '*', '"', '<', '>', '|'], "_");
    let text = std::fs::read_to_string(dir.join(folder).join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}
