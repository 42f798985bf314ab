//! The load generator: closed-loop workers over tonic channels.
//!
//! `connections` HTTP/2 connections carry `concurrency` workers (spread
//! round-robin); each worker sends one call, waits for the answer, records its
//! latency and status code, and sends the next, until the deadline. Calls
//! that start during the warm-up, or end after the deadline, are not counted,
//! so requests/s is calls counted / measured time.

use std::{
    collections::BTreeMap,
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use arc_swap::ArcSwapOption;
use hdrhistogram::Histogram;
use todo_proto::v1::{
    CreateToDoRequest, GetToDoRequest, ListToDosRequest, ToDo,
    to_do_service_client::ToDoServiceClient,
};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};

use crate::{procfs, transport::H2Connection};

/// Longest latency the histograms hold, in µs.
const MAX_LATENCY_US: u64 = 60_000_000;

/// One kind of call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `GetToDo` of one of the known ids.
    Get,
    /// `ListToDos`, first page.
    List,
    /// `CreateToDo` (a durable write).
    Create,
}

/// The RPC mix: weights per kind of call, e.g. `get=90,list=5,create=5`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mix {
    ops: Vec<(Op, u32)>,
    total: u32,
}

impl Mix {
    /// Only this kind of call.
    pub(crate) fn only(op: Op) -> Self {
        Mix {
            ops: vec![(op, 1)],
            total: 1,
        }
    }

    fn pick(&self, random: u64) -> Op {
        let mut n = (random % u64::from(self.total)) as u32;
        for (op, weight) in &self.ops {
            if n < *weight {
                return *op;
            }
            n -= weight;
        }
        self.ops[0].0
    }

    fn has(&self, op: Op) -> bool {
        self.ops.iter().any(|(o, _)| *o == op)
    }
}

impl FromStr for Mix {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut ops = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let op = match name.trim() {
                "get" => Op::Get,
                "list" => Op::List,
                "create" => Op::Create,
                other => bail!("unknown call {other:?} in the mix (get, list, create)"),
            };
            let weight: u32 = weight.trim().parse().context("mix weight")?;
            if weight > 0 {
                ops.push((op, weight));
            }
        }
        let total = ops.iter().map(|(_, w)| w).sum();
        if total == 0 {
            bail!("the mix {s:?} has no call with a weight above 0");
        }
        Ok(Mix { ops, total })
    }
}

/// The `authorization` value every worker sends; swapping it mid-run is how
/// the key-rollover scenario moves clients to a token signed by the new key.
pub(crate) type SharedToken = Arc<ArcSwapOption<AsciiMetadataValue>>;

/// A shared token holding `Bearer <token>`, or nothing.
pub(crate) fn shared_token(token: Option<&str>) -> anyhow::Result<SharedToken> {
    let value = token.map(bearer).transpose()?;
    Ok(Arc::new(ArcSwapOption::from_pointee(value)))
}

/// `Bearer <token>` as a metadata value.
pub(crate) fn bearer(token: &str) -> anyhow::Result<AsciiMetadataValue> {
    MetadataValue::try_from(format!("Bearer {token}")).context("the token is not ASCII")
}

/// What to send, how hard, for how long.
#[derive(Clone, Debug)]
pub(crate) struct LoadSpec {
    /// `http://127.0.0.1:PORT`.
    pub(crate) target: String,
    /// HTTP/2 connections.
    pub(crate) connections: usize,
    /// Calls in flight (closed-loop workers).
    pub(crate) concurrency: usize,
    /// Measured time.
    pub(crate) duration: Duration,
    /// Time before measuring starts.
    pub(crate) warmup: Duration,
    /// What to call.
    pub(crate) mix: Mix,
    /// Ids `GetToDo` picks from.
    pub(crate) ids: Arc<Vec<i64>>,
    /// `page_size` of `ListToDos`.
    pub(crate) page_size: i32,
    /// Keep the id of every acknowledged create (for the durability check).
    pub(crate) keep_created: bool,
    /// Also record, separately, calls started in this span (offsets from
    /// the start of measuring).
    pub(crate) window: Option<(Duration, Duration)>,
    /// Read this process's CPU time over the measured span.
    pub(crate) watch_pid: Option<u32>,
}

impl LoadSpec {
    /// A spec with the usual defaults for `target`.
    pub(crate) fn new(target: impl Into<String>, mix: Mix) -> Self {
        LoadSpec {
            target: target.into(),
            connections: 4,
            concurrency: 64,
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            mix,
            ids: Arc::new(Vec::new()),
            page_size: 50,
            keep_created: false,
            window: None,
            watch_pid: None,
        }
    }
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct LoadReport {
    /// The measured span.
    pub(crate) measured: Duration,
    /// Latency of counted calls, µs.
    pub(crate) latency: Histogram<u64>,
    /// Latency of counted calls started inside [`LoadSpec::window`].
    pub(crate) window: Option<Histogram<u64>>,
    /// Counted calls by gRPC status code (0 = OK).
    pub(crate) codes: BTreeMap<i32, u64>,
    /// Ids of every acknowledged create, counted or not.
    pub(crate) created: Vec<i64>,
    /// This process's CPU time over the measured span.
    pub(crate) client_cpu: Option<Duration>,
    /// The watched process's CPU time over the measured span.
    pub(crate) server_cpu: Option<Duration>,
    /// CPU time the whole machine spent over the measured span.
    pub(crate) machine_cpu: Option<Duration>,
}

impl LoadReport {
    /// Counted calls.
    pub(crate) fn calls(&self) -> u64 {
        self.codes.values().sum()
    }

    /// Counted calls that did not end OK.
    pub(crate) fn errors(&self) -> u64 {
        self.codes
            .iter()
            .filter(|(code, _)| **code != 0)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls per second (OK or not).
    pub(crate) fn rps(&self) -> f64 {
        self.calls() as f64 / self.measured.as_secs_f64()
    }

    /// Latency quantile in milliseconds.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// Largest latency in milliseconds.
    pub(crate) fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    /// Error counts as `UNAVAILABLE×3, …`, or `0`.
    pub(crate) fn errors_by_code(&self) -> String {
        let errors: Vec<String> = self
            .codes
            .iter()
            .filter(|(code, _)| **code != 0)
            .map(|(code, n)| format!("{}×{n}", code_name(*code)))
            .collect();
        if errors.is_empty() {
            "0".into()
        } else {
            errors.join(", ")
        }
    }

    /// Server CPU time per counted call, µs.
    pub(crate) fn server_us_per_call(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        let calls = self.calls();
        (calls > 0).then(|| cpu.as_secs_f64() * 1e6 / calls as f64)
    }

    /// Server CPU use over the measured span, in cores (1.0 = one core busy).
    pub(crate) fn server_cores(&self) -> Option<f64> {
        Some(self.server_cpu?.as_secs_f64() / self.measured.as_secs_f64())
    }

    /// Load-generator CPU use over the measured span, in cores.
    pub(crate) fn client_cores(&self) -> Option<f64> {
        Some(self.client_cpu?.as_secs_f64() / self.measured.as_secs_f64())
    }

    /// CPU used by everything else on the machine over the measured span,
    /// in cores: near 0 on a quiet machine (PostgreSQL counts here).
    pub(crate) fn other_cores(&self) -> Option<f64> {
        let other = self
            .machine_cpu?
            .saturating_sub(self.client_cpu?)
            .saturating_sub(self.server_cpu.unwrap_or_default());
        Some(other.as_secs_f64() / self.measured.as_secs_f64())
    }

    /// One line for a terminal.
    pub(crate) fn summary(&self) -> String {
        let mut line = format!(
            "{:.0} req/s  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  calls {}  errors {}",
            self.rps(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.90),
            self.quantile_ms(0.99),
            self.max_ms(),
            self.calls(),
            self.errors_by_code(),
        );
        if let (Some(us), Some(cores)) = (self.server_us_per_call(), self.server_cores()) {
            line.push_str(&format!("  server {us:.1} µs CPU/call ({cores:.2} cores)"));
        }
        if let Some(cores) = self.client_cores() {
            line.push_str(&format!("  generator {cores:.2} cores"));
        }
        if let Some(cores) = self.other_cores() {
            line.push_str(&format!("  other {cores:.2} cores"));
        }
        line
    }
}

/// The gRPC name of a status code.
pub(crate) fn code_name(code: i32) -> String {
    let name = format!("{:?}", tonic::Code::from_i32(code));
    // `DeadlineExceeded` → `DEADLINE_EXCEEDED`.
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The generated client over one of the generator's connections.
pub(crate) type Client = ToDoServiceClient<H2Connection>;

/// Opens `n` HTTP/2 connections to `target` (`http://HOST:PORT`), one
/// client each.
pub(crate) async fn connect(target: &str, n: usize) -> anyhow::Result<Vec<Client>> {
    let origin: http::Uri = target
        .parse()
        .with_context(|| format!("target {target:?}"))?;
    let authority = origin
        .authority()
        .with_context(|| format!("target {target:?} has no host:port"))?
        .to_string();
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let connection =
            tokio::time::timeout(Duration::from_secs(5), H2Connection::connect(&authority))
                .await
                .with_context(|| format!("connecting to {target} timed out"))??;
        clients.push(
            ToDoServiceClient::with_origin(connection, origin.clone())
                .max_decoding_message_size(16 << 20),
        );
    }
    Ok(clients)
}

/// When a run starts counting and stops.
#[derive(Clone, Copy)]
struct Times {
    measure_from: Instant,
    end: Instant,
}

/// Runs the load described by `spec`, sending `token` on every call.
pub(crate) async fn run(spec: &LoadSpec, token: &SharedToken) -> anyhow::Result<LoadReport> {
    if spec.mix.has(Op::Get) && spec.ids.is_empty() {
        bail!("GetToDo needs ids to ask for: seed some to-dos first");
    }
    let clients = connect(&spec.target, spec.connections).await?;
    let start = Instant::now();
    let times = Times {
        measure_from: start + spec.warmup,
        end: start + spec.warmup + spec.duration,
    };
    let watch_pid = spec.watch_pid.map(|pid| pid.to_string());
    let sampler = tokio::spawn(async move {
        let cpu = move || {
            let own = procfs::cpu_time("self");
            let other = watch_pid.as_deref().and_then(procfs::cpu_time);
            (own, other, procfs::machine_busy())
        };
        tokio::time::sleep_until(times.measure_from.into()).await;
        let before = cpu();
        tokio::time::sleep_until(times.end.into()).await;
        let after = cpu();
        let delta = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        (
            delta(before.0, after.0),
            delta(before.1, after.1),
            delta(before.2, after.2),
        )
    });

    let spec = Arc::new(spec.clone());
    let workers: Vec<_> = (0..spec.concurrency.max(1))
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            tokio::spawn(worker(
                i,
                client,
                Arc::clone(&spec),
                Arc::clone(token),
                times,
            ))
        })
        .collect();

    let mut report = LoadReport {
        measured: spec.duration,
        latency: histogram(),
        window: spec.window.map(|_| histogram()),
        codes: BTreeMap::new(),
        created: Vec::new(),
        client_cpu: None,
        server_cpu: None,
        machine_cpu: None,
    };
    for worker in workers {
        let result = worker.await.context("load worker panicked")?;
        report.latency.add(&result.latency)?;
        if let (Some(total), Some(part)) = (report.window.as_mut(), result.window.as_ref()) {
            total.add(part)?;
        }
        for (code, n) in result.codes {
            *report.codes.entry(code).or_default() += n;
        }
        report.created.extend(result.created);
    }
    let (client_cpu, server_cpu, machine_cpu) = sampler.await.unwrap_or((None, None, None));
    report.client_cpu = client_cpu;
    report.server_cpu = server_cpu;
    report.machine_cpu = machine_cpu;
    Ok(report)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

struct WorkerResult {
    latency: Histogram<u64>,
    window: Option<Histogram<u64>>,
    codes: BTreeMap<i32, u64>,
    created: Vec<i64>,
}

async fn worker(
    index: usize,
    mut client: Client,
    spec: Arc<LoadSpec>,
    token: SharedToken,
    times: Times,
) -> WorkerResult {
    let mut rng = XorShift::new(index as u64);
    let window = spec
        .window
        .map(|(from, to)| (times.measure_from + from, times.measure_from + to));
    let mut result = WorkerResult {
        latency: histogram(),
        window: window.map(|_| histogram()),
        codes: BTreeMap::new(),
        created: Vec::new(),
    };
    let mut sent: u64 = 0;
    loop {
        let begin = Instant::now();
        if begin >= times.end {
            break;
        }
        let outcome = match spec.mix.pick(rng.next()) {
            Op::Get => {
                let id = spec.ids[(rng.next() % spec.ids.len() as u64) as usize];
                client
                    .get_to_do(request(GetToDoRequest { id }, &token))
                    .await
                    .map(|_| None)
            }
            Op::List => {
                let message = ListToDosRequest {
                    page_size: spec.page_size,
                    page_token: String::new(),
                };
                client
                    .list_to_dos(request(message, &token))
                    .await
                    .map(|_| None)
            }
            Op::Create => {
                let message = CreateToDoRequest {
                    todo: Some(ToDo {
                        description: format!("bench to-do {index}-{sent}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                client
                    .create_to_do(request(message, &token))
                    .await
                    .map(|r| Some(r.into_inner().id))
            }
        };
        sent += 1;
        let done = Instant::now();
        if spec.keep_created
            && let Ok(Some(id)) = &outcome
        {
            result.created.push(*id);
        }
        if begin < times.measure_from || done > times.end {
            continue;
        }
        let micros = u64::try_from(done.duration_since(begin).as_micros()).unwrap_or(u64::MAX);
        result.latency.saturating_record(micros.max(1));
        if let (Some((from, to)), Some(h)) = (window, result.window.as_mut())
            && begin >= from
            && begin < to
        {
            h.saturating_record(micros.max(1));
        }
        let code = match &outcome {
            Ok(_) => 0,
            Err(status) => status.code() as i32,
        };
        *result.codes.entry(code).or_default() += 1;
    }
    result
}

/// A request carrying the current token, if any.
pub(crate) fn request<T>(message: T, token: &SharedToken) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = token.load().as_deref() {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    request
}

/// xorshift64*: a tiny, seedable generator for picking calls and ids.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_picks_by_weight() {
        let mix: Mix = "get=3,list=1,create=0".parse().unwrap();
        assert!(!mix.has(Op::Create));
        let picks: Vec<Op> = (0..4).map(|i| mix.pick(i)).collect();
        assert_eq!(picks, [Op::Get, Op::Get, Op::Get, Op::List]);
        assert!("put=1".parse::<Mix>().is_err());
        assert!("get=0".parse::<Mix>().is_err());
        assert_eq!("create".parse::<Mix>().unwrap(), Mix::only(Op::Create));
    }

    #[test]
    fn code_names_are_grpc_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(4), "DEADLINE_EXCEEDED");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
    }
}
