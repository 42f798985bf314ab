//! The independent cross-check: nghttp2's `h2load` sending gRPC-framed
//! `GetToDo` requests.
//!
//! The request file is the 5-byte gRPC frame header (a zero "not
//! compressed" byte, then the message length as a 4-byte big-endian number)
//! followed by `GetToDoRequest { id }` encoded with prost. h2load POSTs it as
//! the body of every request.
//!
//! h2load counts every HTTP 200 as a success, but gRPC reports errors in the
//! `grpc-status` trailer: the suite checks the same server, token and call
//! with its own generator in the same run (0 errors) before trusting h2load.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use prost::Message;
use todo_proto::v1::GetToDoRequest;

/// A gRPC length-prefixed message.
pub(crate) fn grpc_frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Writes the framed `GetToDoRequest { id }` to `path`.
pub(crate) fn write_get_request(path: &Path, id: i64) -> anyhow::Result<()> {
    std::fs::write(path, grpc_frame(&GetToDoRequest { id }))
        .with_context(|| format!("writing {}", path.display()))
}

/// How to run h2load.
#[derive(Debug, Clone)]
pub(crate) struct H2loadSpec {
    /// `http://127.0.0.1:PORT`.
    pub(crate) target: String,
    /// The bearer token, if any.
    pub(crate) token: Option<String>,
    /// The request body file.
    pub(crate) request_file: PathBuf,
    /// Connections (`-c`).
    pub(crate) connections: usize,
    /// Streams per connection (`-m`).
    pub(crate) streams: usize,
    /// Measured time (`-D`).
    pub(crate) duration: Duration,
    /// Warm-up (`--warm-up-time`).
    pub(crate) warmup: Duration,
    /// CPUs for h2load (`taskset -c`).
    pub(crate) cpus: Option<String>,
    /// Where the per-request log goes.
    pub(crate) log_file: PathBuf,
}

/// What h2load measured.
#[derive(Debug)]
pub(crate) struct H2loadReport {
    /// Requests per second h2load reports.
    pub(crate) rps: f64,
    /// Requests h2load counted as succeeded (HTTP 2xx).
    pub(crate) succeeded: u64,
    /// Failed or errored requests.
    pub(crate) failed: u64,
    /// Latencies from the per-request log, µs.
    pub(crate) latency: Histogram<u64>,
    /// The exact command line, for BENCHMARKS.md.
    pub(crate) command: String,
    /// The server's CPU time per call, µs (filled in by the suite).
    pub(crate) server_us_per_call: Option<f64>,
}

impl H2loadReport {
    /// Latency quantile in milliseconds.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The h2load argument list for `spec`.
pub(crate) fn args(spec: &H2loadSpec) -> Vec<String> {
    let mut args = vec![
        "-D".to_owned(),
        format!("{}", spec.duration.as_secs().max(1)),
        format!("--warm-up-time={}", spec.warmup.as_secs().max(1)),
        "-c".to_owned(),
        spec.connections.to_string(),
        "-m".to_owned(),
        spec.streams.to_string(),
        "-t".to_owned(),
        "1".to_owned(),
        "-d".to_owned(),
        spec.request_file.display().to_string(),
        "-H".to_owned(),
        "content-type: application/grpc".to_owned(),
        "-H".to_owned(),
        "te: trailers".to_owned(),
    ];
    if let Some(token) = &spec.token {
        args.push("-H".to_owned());
        args.push(format!("authorization: Bearer {token}"));
    }
    args.push(format!("--log-file={}", spec.log_file.display()));
    args.push(format!("{}/todo.v1.ToDoService/GetToDo", spec.target));
    args
}

/// Runs h2load and reads its summary and per-request log.
pub(crate) async fn run(spec: &H2loadSpec) -> anyhow::Result<H2loadReport> {
    let args = args(spec);
    let mut command = crate::child::pinned("h2load", spec.cpus.as_deref());
    command.args(&args).stdin(Stdio::null());
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.starts_with("authorization:") {
                "'authorization: Bearer $TOKEN'".to_owned()
            } else if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    let command_line = format!(
        "{}h2load {}",
        spec.cpus
            .as_deref()
            .map(|c| format!("taskset -c {c} "))
            .unwrap_or_default(),
        shown.join(" ")
    );
    let output = tokio::time::timeout(
        spec.duration + spec.warmup + Duration::from_secs(30),
        command.output(),
    )
    .await
    .context("h2load did not finish")?
    .context("running h2load (Debian package nghttp2-client)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "h2load failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut report =
        parse_summary(&stdout).with_context(|| format!("unexpected h2load output:\n{stdout}"))?;
    report.command = command_line;
    let log = std::fs::read_to_string(&spec.log_file).unwrap_or_default();
    for line in log.lines() {
        if let Some(us) = line
            .split('\t')
            .nth(2)
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            report.latency.saturating_record(us.max(1));
        }
    }
    let _ = std::fs::remove_file(&spec.log_file);
    Ok(report)
}

fn parse_summary(text: &str) -> Option<H2loadReport> {
    // finished in 5.00s, 51234.20 req/s, 3.52MB/s
    let finished = text.lines().find(|l| l.starts_with("finished in"))?;
    let rps = finished
        .split(',')
        .find(|p| p.trim().ends_with("req/s"))?
        .trim()
        .trim_end_matches("req/s")
        .trim()
        .parse()
        .ok()?;
    // requests: 10 total, 10 started, 10 done, 10 succeeded, 0 failed, 0 errored, 0 timeout
    let requests = text.lines().find(|l| l.starts_with("requests:"))?;
    let count = |word: &str| -> Option<u64> {
        requests
            .split(',')
            .find(|p| p.trim().ends_with(word))?
            .split_whitespace()
            .rev()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(H2loadReport {
        rps,
        succeeded: count("succeeded")?,
        failed: count("failed")? + count("errored")?,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).ok()?,
        command: String::new(),
        server_us_per_call: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_prefixed_with_flag_and_length() {
        let frame = grpc_frame(&GetToDoRequest { id: 1 });
        assert_eq!(frame, [0, 0, 0, 0, 2, 0x08, 0x01]);
    }

    #[test]
    fn parses_the_summary() {
        let text = "starting benchmark...\n\
            finished in 5.00s, 51234.20 req/s, 3.52MB/s\n\
            requests: 256171 total, 256171 started, 256171 done, 256170 succeeded, 1 failed, 0 errored, 0 timeout\n";
        let report = parse_summary(text).unwrap();
        assert!((report.rps - 51234.2).abs() < 1e-6);
        assert_eq!(report.succeeded, 256_170);
        assert_eq!(report.failed, 1);
    }
}
