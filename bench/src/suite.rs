//! `todo-bench suite`: every scenario of issue #7 in one run, each figure
//! next to its baseline from the same run, written as Markdown.
//!
//! Layout on a 2-core machine (`--pin`, the default): every server under
//! test (ours and the peers) runs on CPU 0, the load generator and h2load on
//! CPU 1, so "requests/s" means "per server core" and the generator never
//! steals the server's core. PostgreSQL is a system service and runs where
//! the kernel puts it.

use std::{
    collections::HashSet,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::{ArgAction, Args};
use dev_authority::{DevAuthority, defaults};
use todo_proto::v1::{CreateToDoRequest, ToDo};

use crate::{
    child::{ServerProcess, pinned, tail},
    cold_start, criterion, h2load,
    load::{self, LoadReport, LoadSpec, Mix, Op, SharedToken},
    procfs,
    table::{Table, median, ms, ratio, thousands},
};

/// Flags of `todo-bench suite`.
#[derive(Debug, Args)]
pub(crate) struct SuiteArgs {
    /// Measured seconds per load run.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) duration: f64,
    /// Warm-up seconds before each measured run.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) warmup: f64,
    /// Rounds of ceiling / authenticated runs (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// HTTP/2 connections of the load generator.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// Calls in flight.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Concurrent writers in the group-commit scenario.
    #[arg(long, default_value_t = 64)]
    pub(crate) writers: usize,
    /// Concurrent calls of the client cold start.
    #[arg(long, default_value_t = 1000)]
    pub(crate) cold_calls: usize,
    /// Servers on CPU 0, load generator on CPU 1 (needs `taskset` and 2 CPUs).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub(crate) pin: bool,
    /// PostgreSQL for the PostgreSQL scenarios (a schema of its own is
    /// created and dropped); skipped when unset.
    #[arg(long, env = "TODO_BENCH_POSTGRES_URL")]
    pub(crate) postgres: Option<String>,
    /// Compare with the Node and Python peers (bench/peers; run
    /// bench/run.sh once to install their dependencies).
    #[arg(long)]
    pub(crate) peers: bool,
    /// Where the peers live.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/peers"))]
    pub(crate) peers_dir: PathBuf,
    /// Node.js for the Node peer.
    #[arg(long, default_value = "node")]
    pub(crate) node: PathBuf,
    /// Python for the Python peer (default: PEERS_DIR/python/.venv/bin/python).
    #[arg(long)]
    pub(crate) python: Option<PathBuf>,
    /// Cross-check with h2load (Debian package nghttp2-client).
    #[arg(long)]
    pub(crate) h2load: bool,
    /// Criterion's output folder ($CARGO_TARGET_DIR/criterion) to report the
    /// micro-benchmarks from.
    #[arg(long)]
    pub(crate) criterion_dir: Option<PathBuf>,
    /// The `todo-server` binary for the memory scenario (default: next to
    /// this binary); skipped when missing.
    #[arg(long)]
    pub(crate) server_bin: Option<PathBuf>,
    /// The `todo-client` binary (the daemon) for its memory figure.
    #[arg(long)]
    pub(crate) client_bin: Option<PathBuf>,
    /// Also write the Markdown report here.
    #[arg(long)]
    pub(crate) output: Option<PathBuf>,
    /// Before each load run, wait up to this many seconds for the rest of
    /// the machine to go quiet (0: never wait).
    #[arg(long, default_value_t = 15.0)]
    pub(crate) quiet_wait: f64,
    /// Run only these scenario groups (besides the ceiling / authenticated
    /// baseline, which always runs): sqlite, postgres, rollover, cold-start,
    /// memory.
    #[arg(long, value_delimiter = ',')]
    pub(crate) only: Vec<String>,
    /// A few seconds of everything Rust-only, failing unless every scenario
    /// produced numbers and no errors (the CI smoke run).
    #[arg(long)]
    pub(crate) smoke: bool,
}

/// CPU list of the servers under test when pinned.
const SERVER_CPUS: &str = "0";
/// CPU list of the load generator (and h2load) when pinned.
pub(crate) const GENERATOR_CPUS: &str = "1";

/// To-dos created before the read scenarios (ListToDos reads the first 50).
const SEED: usize = 100;

struct Suite {
    args: SuiteArgs,
    dir: tempfile::TempDir,
    authority: DevAuthority,
    api_client_id: String,
    exe: PathBuf,
    server_cpus: Option<String>,
    report: String,
    checks: Vec<Check>,
    h2load_command: Option<String>,
    /// Runs started on a busy machine after `--quiet-wait` ran out.
    busy_starts: AtomicU64,
    /// Time spent waiting for a quiet machine.
    waited_ms: AtomicU64,
}

/// A target or a functional condition, met or not.
struct Check {
    what: String,
    value: String,
    met: bool,
    /// A performance target (reported; the smoke run does not fail on it).
    performance: bool,
}

/// Runs the suite and prints the report; fails when a smoke check fails.
pub(crate) async fn run(mut args: SuiteArgs) -> anyhow::Result<()> {
    if args.smoke {
        args.duration = args.duration.min(0.5);
        args.warmup = args.warmup.min(0.2);
        args.rounds = 1;
        args.cold_calls = args.cold_calls.min(100);
        args.writers = args.writers.min(16);
    }
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("todo-bench-").tempdir()?;
    let authority = DevAuthority::start(dev_authority::Config::ephemeral())
        .await
        .context("starting the dev authority")?;
    let api_client_id = authority
        .registrations()
        .api(defaults::TODO_API)
        .context("the dev authority has no ToDo API")?
        .client_id
        .to_string();
    let pin = args.pin && !args.smoke && pinning_possible();
    let mut suite = Suite {
        exe: std::env::current_exe()?,
        server_cpus: pin.then(|| SERVER_CPUS.to_owned()),
        args,
        dir,
        authority,
        api_client_id,
        report: String::new(),
        checks: Vec::new(),
        h2load_command: None,
        busy_starts: AtomicU64::new(0),
        waited_ms: AtomicU64::new(0),
    };
    suite.header(pin);

    let outcome = suite.scenarios().await;
    let _ = writeln!(
        suite.report,
        "\nLoad average at the end: {} (suite took {:.0} s, of which {:.0} s waiting for a quiet \
         machine; runs started on a busy machine: {}).",
        loadavg(),
        started.elapsed().as_secs_f64(),
        suite.waited_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        suite.busy_starts.load(Ordering::Relaxed)
    );
    suite.targets();
    println!("{}", suite.report);
    if let Some(path) = &suite.args.output {
        std::fs::write(path, &suite.report)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    outcome?;
    let failed: Vec<&Check> = suite
        .checks
        .iter()
        .filter(|c| !c.met && !c.performance)
        .collect();
    if suite.args.smoke && !failed.is_empty() {
        bail!(
            "smoke run failed: {}",
            failed
                .iter()
                .map(|c| format!("{} ({})", c.what, c.value))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

fn pinning_possible() -> bool {
    let two_cpus = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        || procfs::cpus_allowed() == GENERATOR_CPUS;
    let taskset = std::process::Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    two_cpus && taskset
}

/// nproc, CPU model, memory, kernel and rustc, as one line.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1_048_576.0))
        .unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease");
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    format!(
        "Machine: {cpus} × {model} (nproc), {memory}, Linux {}, {rustc}.",
        kernel.trim()
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Suite {
    fn header(&mut self, pin: bool) {
        let _ = writeln!(self.report, "## Results\n\n{}", machine());
        let a = &self.args;
        let _ = writeln!(
            self.report,
            "Load average at the start: {}. Each load run: {} s measured after {} s \
             warm-up, closed loop, {} connections × {} calls in flight (ceiling/authenticated: \
             median of {} alternating rounds). {}",
            loadavg(),
            a.duration,
            a.warmup,
            a.connections,
            a.concurrency,
            a.rounds,
            if pin {
                "Servers pinned to CPU 0, load generator to CPU 1 (`taskset`): req/s are per server core."
            } else {
                "Not pinned: servers and load generator share every CPU."
            }
        );
    }

    /// Records a functional condition (calls made, no errors, nothing lost).
    /// Whether scenario group `name` runs (see `--only`).
    fn enabled(&self, name: &str) -> bool {
        self.args.only.is_empty() || self.args.only.iter().any(|o| o == name)
    }

    fn check(&mut self, what: impl Into<String>, value: impl Into<String>, met: bool) {
        self.checks.push(Check {
            what: what.into(),
            value: value.into(),
            met,
            performance: false,
        });
    }

    /// Records a performance target of issue #7.
    fn target(&mut self, what: impl Into<String>, value: impl Into<String>, met: bool) {
        self.checks.push(Check {
            what: what.into(),
            value: value.into(),
            met,
            performance: true,
        });
    }

    fn targets(&mut self) {
        if self.checks.is_empty() {
            return;
        }
        let mut table = Table::new(&["kind", "target", "measured", "met"]);
        for c in &self.checks {
            table.row(vec![
                if c.performance {
                    "issue #7 target"
                } else {
                    "check"
                }
                .into(),
                c.what.clone(),
                c.value.clone(),
                if c.met { "yes" } else { "**NO**" }.into(),
            ]);
        }
        let _ = write!(self.report, "\n### Targets\n\n{}", table.render());
    }

    fn spec(&self, server: &ServerProcess, mix: Mix, ids: &Arc<Vec<i64>>) -> LoadSpec {
        let mut spec = LoadSpec::new(server.url(), mix);
        spec.connections = self.args.connections;
        spec.concurrency = self.args.concurrency;
        spec.duration = Duration::from_secs_f64(self.args.duration);
        spec.warmup = Duration::from_secs_f64(self.args.warmup);
        spec.ids = Arc::clone(ids);
        spec.watch_pid = Some(server.pid());
        spec
    }

    async fn measure(
        &self,
        name: &str,
        spec: &LoadSpec,
        token: &SharedToken,
    ) -> anyhow::Result<LoadReport> {
        self.wait_quiet().await;
        let report = load::run(spec, token).await?;
        eprintln!("  {name}: {}", report.summary());
        Ok(report)
    }

    /// Waits (up to `--quiet-wait` seconds) until the rest of the machine
    /// uses less than 0.15 of a core, so that runs do not start while other
    /// work (a build, another test suite) competes for the CPUs.
    async fn wait_quiet(&self) {
        if self.args.smoke || self.args.quiet_wait <= 0.0 {
            return;
        }
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(self.args.quiet_wait);
        let window = Duration::from_millis(500);
        loop {
            let before = procfs::machine_busy();
            tokio::time::sleep(window).await;
            let busy = match (before, procfs::machine_busy()) {
                (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64() / window.as_secs_f64(),
                _ => 0.0,
            };
            if busy < 0.15 {
                break;
            }
            if Instant::now() >= deadline {
                self.busy_starts.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        let waited = started.elapsed().saturating_sub(window);
        self.waited_ms.fetch_add(
            u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Starts `todo-bench serve` with `auth` over `store`.
    async fn bench_server(
        &self,
        name: &str,
        auth: &str,
        store: &str,
    ) -> anyhow::Result<ServerProcess> {
        let mut command = pinned(&self.exe, self.server_cpus.as_deref());
        command.args(["serve", "--auth", auth, "--store", store]);
        if auth == "entra" {
            command
                .arg("--authority")
                .arg(self.authority.authority_url())
                .arg("--client-id")
                .arg(&self.api_client_id)
                .arg("--authority-ca-file")
                .arg(self.authority.ca_path());
        }
        let log = self.log_path(name);
        ServerProcess::start(name, command, &log, Duration::from_secs(60)).await
    }

    fn log_path(&self, name: &str) -> PathBuf {
        let file: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        self.dir.path().join(format!("{file}.log"))
    }

    fn token(&self) -> anyhow::Result<String> {
        Ok(self
            .authority
            .mint_token(defaults::DAEMON_CLIENT, defaults::TODO_API)?)
    }

    async fn scenarios(&mut self) -> anyhow::Result<()> {
        let token_text = self.token()?;
        let token = load::shared_token(Some(&token_text))?;
        let no_token = load::shared_token(None)?;

        // --- 1. Ceiling vs authenticated, in-memory store -------------------
        eprintln!("== ceiling (auth off) vs authenticated GetToDo, in-memory store");
        let ceiling = self.bench_server("ceiling", "none", "memory").await?;
        let authed = self.bench_server("auth-memory", "entra", "memory").await?;
        let ceiling_ids = Arc::new(seed(&ceiling.url(), &no_token, SEED).await?);
        let authed_ids = Arc::new(seed(&authed.url(), &token, SEED).await?);
        let get = Mix::only(Op::Get);
        let mut rounds: [Vec<LoadReport>; 3] = Default::default();
        for round in 0..self.args.rounds {
            eprintln!(" round {}", round + 1);
            let spec = self.spec(&ceiling, get.clone(), &ceiling_ids);
            rounds[0].push(self.measure("ceiling", &spec, &no_token).await?);
            rounds[1].push(
                self.measure("ceiling + bearer header", &spec, &token)
                    .await?,
            );
            let spec = self.spec(&authed, get.clone(), &authed_ids);
            rounds[2].push(self.measure("authenticated", &spec, &token).await?);
        }
        let ratios = |i: usize| -> Vec<f64> {
            rounds[i]
                .iter()
                .zip(&rounds[0])
                .map(|(r, c)| r.rps() / c.rps())
                .collect()
        };
        // Server capacity: calls one server core completes per second, from
        // its CPU time per call. Unlike req/s it does not depend on whether
        // the generator or other processes held the server back.
        let capacities = |i: usize| -> Vec<f64> {
            rounds[i]
                .iter()
                .zip(&rounds[0])
                .filter_map(|(r, c)| Some(c.server_us_per_call()? / r.server_us_per_call()?))
                .collect()
        };
        let header_ratio = median(&ratios(1));
        let auth_ratio = median(&ratios(2));
        let header_capacity = median(&capacities(1));
        let auth_capacity = median(&capacities(2));
        let [ceiling_runs, header_runs, auth_runs] = rounds;
        let ceiling_run = median_run(ceiling_runs);
        let header_run = median_run(header_runs);
        let auth_run = median_run(auth_runs);
        let ceiling_rps = ceiling_run.rps();

        let mut table = load_table();
        load_row(
            &mut table,
            "1. ceiling: GetToDo, auth off, in-memory",
            &ceiling_run,
            Some((1.0, "ceiling")),
        );
        load_row(
            &mut table,
            "1b. GetToDo, auth off, bearer header sent (not checked)",
            &header_run,
            Some((header_ratio, "ceiling")),
        );
        load_row(
            &mut table,
            "2. GetToDo, authenticated, in-memory",
            &auth_run,
            Some((auth_ratio, "ceiling")),
        );
        for (name, run) in [
            ("ceiling", &ceiling_run),
            ("authenticated in-memory", &auth_run),
        ] {
            self.check(
                format!("{name}: calls made, 0 errors"),
                run.errors_by_code(),
                run.calls() > 0 && run.errors() == 0,
            );
        }
        self.target(
            "authenticated GetToDo (in-memory) ≥ 0.95 × ceiling (judged on server capacity)",
            format!(
                "server capacity {} (CPU/call, median of {} rounds; bearer header alone {}); \
                 req/s {} (header alone {})",
                ratio(auth_capacity),
                self.args.rounds,
                ratio(header_capacity),
                ratio(auth_ratio),
                ratio(header_ratio)
            ),
            auth_capacity >= 0.95,
        );
        let _ = write!(
            self.report,
            "\nCost of security, in-memory store (median of {} rounds): throughput {} of the \
             ceiling, server capacity (1 / CPU per call) {}; with the bearer header sent to the \
             auth-off server: throughput {}, capacity {}.\n",
            self.args.rounds,
            ratio(auth_ratio),
            ratio(auth_capacity),
            ratio(header_ratio),
            ratio(header_capacity)
        );

        // --- Cross-check with h2load ----------------------------------------
        let mut h2 = Table::new(&[
            "server",
            "generator",
            "req/s",
            "ratio",
            "p50 ms",
            "p99 ms",
            "max ms",
            "HTTP ok / failed",
            "server CPU µs/call",
        ]);
        if self.args.h2load {
            eprintln!("== h2load cross-check");
            let first = [
                ("ceiling", &ceiling, None, ceiling_ids[0]),
                (
                    "ceiling + bearer header (not checked)",
                    &ceiling,
                    Some(token_text.clone()),
                    ceiling_ids[0],
                ),
                (
                    "authenticated",
                    &authed,
                    Some(token_text.clone()),
                    authed_ids[0],
                ),
            ];
            let mut base = None;
            for (name, server, token, id) in first {
                let report = self.h2load(name, server, token, id).await?;
                let base_rps = *base.get_or_insert(report.rps);
                h2_row(&mut h2, name, &report, base_rps);
            }
        }

        // --- Peers -----------------------------------------------------------
        if self.args.peers {
            eprintln!("== peers (rounds: ours, node, python)");
            let names = ["node", "python"];
            let mut servers = Vec::new();
            for peer in names {
                let server = self.peer(peer).await?;
                let ids = Arc::new(seed(&server.url(), &token, SEED).await?);
                servers.push((server, ids));
            }
            let mut ours = Vec::new();
            let mut theirs: [Vec<LoadReport>; 2] = Default::default();
            for round in 0..self.args.rounds {
                eprintln!(" round {}", round + 1);
                let spec = self.spec(&authed, get.clone(), &authed_ids);
                ours.push(self.measure("ours", &spec, &token).await?);
                for (i, (server, ids)) in servers.iter().enumerate() {
                    let spec = self.spec(server, get.clone(), ids);
                    theirs[i].push(self.measure(names[i], &spec, &token).await?);
                }
            }
            let ours_run = median_run(ours);
            let mut peers = load_table();
            load_row(
                &mut peers,
                "ours: Rust, tonic (authenticated, in-memory)",
                &ours_run,
                Some((1.0, "ours")),
            );
            for (i, runs) in theirs.into_iter().enumerate() {
                let peer = names[i];
                let run = median_run(runs);
                let vs = ours_run.rps() / run.rps();
                load_row(
                    &mut peers,
                    &format!("peer: {peer}"),
                    &run,
                    Some((run.rps() / ours_run.rps(), "ours")),
                );
                let (need, label) = if peer == "node" {
                    (3.0, "Node")
                } else {
                    (10.0, "Python")
                };
                let cpu = match (ours_run.server_us_per_call(), run.server_us_per_call()) {
                    (Some(a), Some(b)) => format!("; server CPU per call {} less", ratio(b / a)),
                    _ => String::new(),
                };
                self.target(
                    format!("authenticated GetToDo ≥ {need}× the {label} peer, at a lower p99"),
                    format!(
                        "{} ({} vs {} req/s; p99 {} vs {} ms; peer errors {}{cpu})",
                        ratio(vs),
                        thousands(ours_run.rps()),
                        thousands(run.rps()),
                        ms(ours_run.quantile_ms(0.99)),
                        ms(run.quantile_ms(0.99)),
                        run.errors_by_code()
                    ),
                    vs >= need
                        && ours_run.quantile_ms(0.99) < run.quantile_ms(0.99)
                        && run.errors() == 0,
                );
            }
            for (i, (server, ids)) in servers.into_iter().enumerate() {
                if self.args.h2load {
                    let report = self
                        .h2load(names[i], &server, Some(token_text.clone()), ids[0])
                        .await?;
                    h2_row(&mut h2, &format!("peer: {}", names[i]), &report, f64::NAN);
                }
                server.stop().await;
            }
            let _ = write!(
                self.report,
                "\n### Peers (same proto, same auth rules, same generator, same run, median of {} \
                 interleaved rounds; ratio = peer ÷ ours)\n\n{}",
                self.args.rounds,
                peers.render()
            );
        }
        ceiling.stop().await;

        // --- 2. SQLite ---------------------------------------------------------
        if self.enabled("sqlite") {
            eprintln!("== SQLite (WAL, synchronous=FULL, group commit)");
            let db = self.dir.path().join("bench.db");
            let sqlite = self
                .bench_server(
                    "auth-sqlite",
                    "entra",
                    &format!("sqlite://{}", db.display()),
                )
                .await?;
            let (create_1, create_n) = self
                .store_scenarios(&mut table, "SQLite", &sqlite, &token, ceiling_rps)
                .await?;
            let group = create_n.rps() / create_1.rps();
            self.target(
                format!(
                    "durable CreateToDo on SQLite: {} writers ≥ 5 × 1 writer",
                    self.args.writers
                ),
                format!(
                    "{} ({} vs {} req/s)",
                    ratio(group),
                    thousands(create_n.rps()),
                    thousands(create_1.rps())
                ),
                group >= 5.0,
            );
            self.crash_check(sqlite, &db, &token).await?;
        }

        // --- 2'. PostgreSQL ----------------------------------------------------
        if let Some(base) = self
            .args
            .postgres
            .clone()
            .filter(|_| self.enabled("postgres"))
        {
            eprintln!("== PostgreSQL");
            let schema = PgSchema::create(&base).await?;
            let pg = self
                .bench_server("auth-postgres", "entra", &schema.url())
                .await;
            let result = match pg {
                Ok(pg) => {
                    let r = self
                        .store_scenarios(&mut table, "PostgreSQL", &pg, &token, ceiling_rps)
                        .await;
                    pg.stop().await;
                    r.map(|_| ())
                }
                Err(e) => Err(e),
            };
            schema.drop().await;
            result?;
        }

        // --- 3. Key rollover ---------------------------------------------------
        let new_token = if self.enabled("rollover") {
            eprintln!("== key rollover during load");
            self.rollover(&mut table, &authed, &authed_ids, &token)
                .await?
        } else {
            token_text.clone()
        };

        let _ = write!(
            self.report,
            "\n### Load (ratio = req/s ÷ the ceiling's of this run)\n\n{}",
            table.render()
        );
        if !h2.is_empty() {
            let _ = write!(
                self.report,
                "\n### Cross-check: h2load, GetToDo (ratio = req/s ÷ h2load's ceiling)\n\n{}\n\
                 Command (same connections × streams as our generator):\n\n```sh\n{}\n```\n",
                h2.render(),
                self.h2load_command.clone().unwrap_or_default()
            );
        }

        // --- 4. Client cold start ---------------------------------------------
        if self.enabled("cold-start") {
            eprintln!("== client cold start");
            let cold = cold_start::run(
                &self.authority,
                &authed.url(),
                self.args.cold_calls,
                authed_ids[0],
            )
            .await?;
            let mut t = Table::new(&[
                "batch",
                "calls",
                "token requests",
                "time to last response",
                "errors",
            ]);
            for (name, batch) in [
                ("cold (empty token cache)", &cold.cold),
                ("warm (token cached)", &cold.warm),
            ] {
                t.row(vec![
                    name.into(),
                    batch.calls.to_string(),
                    batch.token_requests.to_string(),
                    format!("{:.1} ms", batch.elapsed.as_secs_f64() * 1e3),
                    errors_text(&batch.errors),
                ]);
            }
            let _ = write!(
                self.report,
                "\n### Client cold start: {} concurrent GetToDo through TokenProvider + BearerLayer (one channel)\n\n{}\n\
                 Cold / warm time to last response: {}.\n",
                self.args.cold_calls,
                t.render(),
                ratio(cold.cold.elapsed.as_secs_f64() / cold.warm.elapsed.as_secs_f64())
            );
            self.check(
                format!(
                    "cold start: {} concurrent calls → 1 token request, 0 errors",
                    self.args.cold_calls
                ),
                format!(
                    "{} token request(s), errors {}, last response after {:.1} ms",
                    cold.cold.token_requests,
                    errors_text(&cold.cold.errors),
                    cold.cold.elapsed.as_secs_f64() * 1e3
                ),
                cold.cold.token_requests == 1
                    && cold.cold.errors.is_empty()
                    && cold.warm.errors.is_empty(),
            );
        }
        authed.stop().await;

        // --- 5. Memory ----------------------------------------------------------
        if !self.args.smoke && self.enabled("memory") {
            eprintln!("== memory (todo-server and todo-client binaries)");
            self.memory(&new_token).await?;
        }

        // --- Micro-benchmarks ---------------------------------------------------
        if let Some(dir) = self.args.criterion_dir.clone() {
            self.micro(&dir);
        }
        Ok(())
    }

    /// Get, List (page of 50), Create with 1 writer and with many, on one
    /// authenticated server; returns the two create runs.
    async fn store_scenarios(
        &mut self,
        table: &mut Table,
        store: &str,
        server: &ServerProcess,
        token: &SharedToken,
        ceiling_rps: f64,
    ) -> anyhow::Result<(LoadReport, LoadReport)> {
        let ids = Arc::new(seed(&server.url(), token, SEED).await?);
        let vs = |r: &LoadReport| Some((r.rps() / ceiling_rps, "ceiling"));
        let run = self
            .measure(
                &format!("{store} GetToDo"),
                &self.spec(server, Mix::only(Op::Get), &ids),
                token,
            )
            .await?;
        load_row(
            table,
            &format!("2. GetToDo, authenticated, {store}"),
            &run,
            vs(&run),
        );
        self.no_errors(&format!("{store} GetToDo"), &run);
        let run = self
            .measure(
                &format!("{store} ListToDos"),
                &self.spec(server, Mix::only(Op::List), &ids),
                token,
            )
            .await?;
        load_row(
            table,
            &format!("2. ListToDos (page of 50), authenticated, {store}"),
            &run,
            vs(&run),
        );
        self.no_errors(&format!("{store} ListToDos"), &run);

        let mut spec = self.spec(server, Mix::only(Op::Create), &ids);
        spec.connections = 1;
        spec.concurrency = 1;
        let one = self
            .measure(&format!("{store} CreateToDo ×1"), &spec, token)
            .await?;
        load_row(
            table,
            &format!("2. CreateToDo, durable, 1 writer, {store}"),
            &one,
            vs(&one),
        );
        self.no_errors(&format!("{store} CreateToDo ×1"), &one);
        let mut spec = self.spec(server, Mix::only(Op::Create), &ids);
        spec.concurrency = self.args.writers;
        let many = self
            .measure(
                &format!("{store} CreateToDo ×{}", self.args.writers),
                &spec,
                token,
            )
            .await?;
        load_row(
            table,
            &format!(
                "2. CreateToDo, durable, {} writers, {store} ({} × 1 writer)",
                self.args.writers,
                ratio(many.rps() / one.rps())
            ),
            &many,
            vs(&many),
        );
        self.no_errors(&format!("{store} CreateToDo ×{}", self.args.writers), &many);
        Ok((one, many))
    }

    fn no_errors(&mut self, name: &str, run: &LoadReport) {
        if self.args.smoke || run.errors() > 0 {
            self.check(
                format!("{name}: calls made, 0 errors"),
                format!("{} calls, errors {}", run.calls(), run.errors_by_code()),
                run.calls() > 0 && run.errors() == 0,
            );
        }
    }

    /// Writes with many writers, kills the server with SIGKILL mid-stream,
    /// then looks for every acknowledged id in the database file.
    async fn crash_check(
        &mut self,
        server: ServerProcess,
        db: &Path,
        token: &SharedToken,
    ) -> anyhow::Result<()> {
        eprintln!(
            "== SQLite crash check (SIGKILL under {} writers)",
            self.args.writers
        );
        let mut spec = self.spec(&server, Mix::only(Op::Create), &Arc::new(Vec::new()));
        spec.concurrency = self.args.writers;
        spec.warmup = Duration::ZERO;
        spec.duration = Duration::from_secs_f64((self.args.duration / 2.0).clamp(0.5, 2.0));
        spec.keep_created = true;
        let kill_after = spec.duration.mul_f64(0.6);
        let token = Arc::clone(token);
        let load = tokio::spawn(async move { load::run(&spec, &token).await });
        tokio::time::sleep(kill_after).await;
        server.kill().await;
        let report = load.await??;
        let acknowledged = report.created;
        let path = db.to_path_buf();
        let found: HashSet<i64> =
            tokio::task::spawn_blocking(move || -> anyhow::Result<HashSet<i64>> {
                let conn = rusqlite::Connection::open(&path)?;
                let mut stmt = conn.prepare("SELECT id FROM todos")?;
                let ids = stmt
                    .query_map([], |r| r.get::<_, i64>(0))?
                    .collect::<Result<_, _>>()?;
                Ok(ids)
            })
            .await??;
        let lost = acknowledged.iter().filter(|id| !found.contains(id)).count();
        let _ = writeln!(
            self.report,
            "\n### Durability: SIGKILL of the SQLite server during {} concurrent creates\n\n\
             Acknowledged creates before the kill: {}; found in the database file afterwards: {}; \
             lost: **{}**.",
            self.args.writers,
            acknowledged.len(),
            acknowledged.len() - lost,
            lost
        );
        self.check(
            "no acknowledged write lost (SIGKILL during group commit)",
            format!("{} acknowledged, {lost} lost", acknowledged.len()),
            lost == 0 && !acknowledged.is_empty(),
        );
        Ok(())
    }

    /// GetToDo under load while the authority rotates its signing key:
    /// clients move to a token signed by the new key, then the old key is
    /// retired. Returns the new token.
    async fn rollover(
        &mut self,
        table: &mut Table,
        server: &ServerProcess,
        ids: &Arc<Vec<i64>>,
        token: &SharedToken,
    ) -> anyhow::Result<String> {
        let mut spec = self.spec(server, Mix::only(Op::Get), ids);
        let steady = self
            .measure("steady (before rollover)", &spec, token)
            .await?;
        spec.duration = Duration::from_secs_f64(self.args.duration * 2.0);
        let rotate_at = spec.warmup + spec.duration / 3;
        let retire_at = spec.warmup + spec.duration * 2 / 3;
        spec.window = Some((
            spec.duration / 3,
            spec.duration / 3 + Duration::from_secs(1),
        ));
        let shared = load::shared_token(None)?;
        shared.store(token.load_full());
        let task = {
            let spec = spec.clone();
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { load::run(&spec, &shared).await })
        };
        let started = Instant::now();
        tokio::time::sleep(rotate_at).await;
        let rotation = self.authority.rotate_keys()?;
        let new_token = self.token()?;
        shared.store(Some(Arc::new(load::bearer(&new_token)?)));
        tokio::time::sleep(retire_at.saturating_sub(started.elapsed())).await;
        self.authority.retire_previous_keys()?;
        let run = task.await??;
        eprintln!("  rollover: {} ({rotation:?})", run.summary());
        let window_p99 = run
            .window
            .as_ref()
            .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
            .unwrap_or(f64::NAN);
        let window_max = run
            .window
            .as_ref()
            .map(|h| h.max() as f64 / 1000.0)
            .unwrap_or(f64::NAN);
        load_row(
            table,
            "3. GetToDo, authenticated, in-memory: steady (rollover baseline)",
            &steady,
            None,
        );
        load_row(
            table,
            &format!(
                "3. … same, key rotated at ⅓ and old key retired at ⅔ (first second after the switch: p99 {} ms, max {} ms)",
                ms(window_p99),
                ms(window_max)
            ),
            &run,
            Some((run.rps() / steady.rps(), "steady")),
        );
        self.check(
            "key rollover during load: 0 errors (p99 impact reported)",
            format!(
                "errors {}; p99 {} → {} ms ({}), first second after the switch p99 {} ms",
                run.errors_by_code(),
                ms(steady.quantile_ms(0.99)),
                ms(run.quantile_ms(0.99)),
                ratio(run.quantile_ms(0.99) / steady.quantile_ms(0.99)),
                ms(window_p99)
            ),
            run.errors() == 0 && run.calls() > 0,
        );
        Ok(new_token)
    }

    async fn h2load(
        &mut self,
        name: &str,
        server: &ServerProcess,
        token: Option<String>,
        id: i64,
    ) -> anyhow::Result<h2load::H2loadReport> {
        let request_file = self.dir.path().join("get-request.bin");
        h2load::write_get_request(&request_file, id)?;
        let streams = self.args.concurrency.div_ceil(self.args.connections.max(1));
        let spec = h2load::H2loadSpec {
            target: server.url(),
            token,
            request_file,
            connections: self.args.connections,
            streams,
            duration: Duration::from_secs_f64(self.args.duration),
            warmup: Duration::from_secs_f64(self.args.warmup),
            cpus: self.server_cpus.as_ref().map(|_| GENERATOR_CPUS.to_owned()),
            log_file: self.dir.path().join("h2load.log"),
        };
        // The server's CPU time over h2load's measured span (after its warm-up).
        let pid = server.pid().to_string();
        let (warmup, duration) = (spec.warmup, spec.duration);
        let sampler = tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            let before = procfs::cpu_time(&pid);
            tokio::time::sleep(duration).await;
            Some(procfs::cpu_time(&pid)?.saturating_sub(before?))
        });
        self.wait_quiet().await;
        let mut report = h2load::run(&spec).await?;
        let calls = report.succeeded + report.failed;
        report.server_us_per_call = sampler
            .await
            .ok()
            .flatten()
            .filter(|_| calls > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / calls as f64);
        eprintln!(
            "  h2load {name}: {:.0} req/s p50 {:.3} ms p99 {:.3} ms failed {} server {:.1} µs CPU/call",
            report.rps,
            report.quantile_ms(0.5),
            report.quantile_ms(0.99),
            report.failed,
            report.server_us_per_call.unwrap_or(f64::NAN)
        );
        self.h2load_command = Some(report.command.clone());
        Ok(report)
    }

    async fn peer(&self, peer: &str) -> anyhow::Result<ServerProcess> {
        let endpoints = self.authority.endpoints();
        let audience = format!("{0},api://{0}", self.api_client_id);
        let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
        let mut command = match peer {
            "node" => {
                let mut c = pinned(&self.args.node, self.server_cpus.as_deref());
                c.arg(self.args.peers_dir.join("node/server.mjs"))
                    .env("NODE_EXTRA_CA_CERTS", self.authority.ca_path());
                c
            }
            _ => {
                let python = self
                    .args
                    .python
                    .clone()
                    .unwrap_or_else(|| self.args.peers_dir.join("python/.venv/bin/python"));
                let mut c = pinned(python, self.server_cpus.as_deref());
                c.arg(self.args.peers_dir.join("python/server.py"))
                    .arg("--ca-file")
                    .arg(self.authority.ca_path());
                c
            }
        };
        command
            .arg("--issuer")
            .arg(&endpoints.issuer)
            .arg("--audience")
            .arg(audience)
            .arg("--jwks-uri")
            .arg(&endpoints.jwks_uri)
            .arg("--proto-dir")
            .arg(proto);
        ServerProcess::start(peer, command, &self.log_path(peer), Duration::from_secs(60))
            .await
            .with_context(|| {
                format!("starting the {peer} peer (did bench/run.sh install its dependencies?)")
            })
    }

    /// RSS of the production `todo-server` binary idle and under load, and
    /// of the daemon (`todo-client`) over its scripted run.
    async fn memory(&mut self, token_text: &str) -> anyhow::Result<()> {
        let sibling = |name: &str| self.exe.with_file_name(name);
        let server_bin = self
            .args
            .server_bin
            .clone()
            .unwrap_or_else(|| sibling("todo-server"));
        let client_bin = self
            .args
            .client_bin
            .clone()
            .unwrap_or_else(|| sibling("todo-client"));
        if !server_bin.is_file() {
            let _ = writeln!(
                self.report,
                "\n### Memory\n\nSkipped: {} not found (build it with `cargo build --release -p todo-server -p todo-client`).",
                server_bin.display()
            );
            return Ok(());
        }
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?.port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut command = pinned(&server_bin, self.server_cpus.as_deref());
        command
            .arg("--listen")
            .arg(&addr)
            .arg("--database")
            .arg(format!(
                "sqlite://{}",
                self.dir.path().join("memory.db").display()
            ))
            .arg("--authority")
            .arg(self.authority.authority_url())
            .arg("--client-id")
            .arg(&self.api_client_id)
            .arg("--authority-ca-file")
            .arg(self.authority.ca_path());
        let log = self.log_path("todo-server");
        let log_file = std::fs::File::create(&log)?;
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", server_bin.display()))?;
        let pid = child.id().unwrap_or(0).to_string();
        let url = format!("http://{addr}");
        let token = load::shared_token(Some(token_text))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let ids = loop {
            match seed(&url, &token, SEED).await {
                Ok(ids) => break ids,
                Err(e) if Instant::now() > deadline => {
                    let _ = child.kill().await;
                    return Err(e.context(format!(
                        "todo-server did not serve; see {}:\n{}",
                        log.display(),
                        tail(&log)
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (idle, _) = procfs::rss_kib(&pid).unwrap_or_default();

        let mut spec = LoadSpec::new(url.clone(), "get=90,create=10".parse()?);
        spec.connections = self.args.connections;
        spec.concurrency = self.args.concurrency;
        spec.duration = Duration::from_secs_f64(self.args.duration);
        spec.warmup = Duration::from_secs_f64(self.args.warmup);
        spec.ids = Arc::new(ids);
        spec.watch_pid = pid.parse().ok();
        let sampler = {
            let pid = pid.clone();
            let until = Instant::now() + spec.warmup + spec.duration;
            tokio::spawn(async move {
                let mut peak = 0;
                while Instant::now() < until {
                    if let Some((rss, _)) = procfs::rss_kib(&pid) {
                        peak = peak.max(rss);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                peak
            })
        };
        let run = self
            .measure(
                "todo-server binary: get 90 % / create 10 %, SQLite",
                &spec,
                &token,
            )
            .await?;
        let loaded = sampler.await.unwrap_or(0);
        let (after, hwm) = procfs::rss_kib(&pid).unwrap_or_default();

        // The daemon's scripted run against this server.
        let daemon = if client_bin.is_file() {
            Some(self.daemon_rss(&client_bin, &url).await?)
        } else {
            None
        };
        let _ = child.kill().await;

        let mut t = Table::new(&["process", "state", "VmRSS", "VmHWM (peak)"]);
        let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
        t.row(vec![
            "todo-server (SQLite)".into(),
            "idle, keys loaded, 100 to-dos".into(),
            mib(idle),
            String::new(),
        ]);
        t.row(vec![
            "todo-server (SQLite)".into(),
            format!(
                "under load: {} req/s (get 90 % / create 10 %), {} calls in flight",
                thousands(run.rps()),
                self.args.concurrency
            ),
            format!("{} (max sampled)", mib(loaded)),
            String::new(),
        ]);
        t.row(vec![
            "todo-server (SQLite)".into(),
            "after the load".into(),
            mib(after),
            mib(hwm),
        ]);
        if let Some((hwm, elapsed)) = daemon {
            t.row(vec![
                "todo-client (the daemon)".into(),
                format!(
                    "scripted run (token + CRUD), {:.0} ms",
                    elapsed.as_secs_f64() * 1e3
                ),
                String::new(),
                format!("{} (last sample before exit)", mib(hwm)),
            ]);
        }
        let _ = write!(
            self.report,
            "\n### Memory (separate processes, /proc/PID/status)\n\n{}",
            t.render()
        );
        self.no_errors("todo-server binary under load", &run);
        Ok(())
    }

    /// Runs the daemon's scripted run and samples its peak RSS.
    async fn daemon_rss(
        &self,
        client_bin: &Path,
        server_url: &str,
    ) -> anyhow::Result<(u64, Duration)> {
        let settings = self.authority.client_settings(defaults::DAEMON_CLIENT)?;
        let secret = settings.client_secret.as_ref().context("daemon secret")?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(client_bin)
            .env("TODO_SERVER", server_url)
            .env("TODO_AUTHORITY", &settings.authority)
            .env("TODO_CLIENT_ID", &settings.client_id)
            .env("TODO_SCOPE", &settings.scope)
            .env("TODO_CLIENT_SECRET", secret.expose())
            .env("TODO_AUTHORITY_CA_FILE", self.authority.ca_path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().unwrap_or(0).to_string();
        let mut hwm = 0;
        let status = loop {
            if let Some((_, peak)) = procfs::rss_kib(&pid) {
                hwm = hwm.max(peak);
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill().await;
                bail!("the daemon did not finish within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let elapsed = started.elapsed();
        if !status.success() {
            let output = child.wait_with_output().await?;
            bail!(
                "the daemon failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok((hwm, elapsed))
    }

    fn micro(&mut self, dir: &Path) {
        let get = |id: &str| criterion::median_ns(dir, id);
        let mut t = Table::new(&["micro-benchmark (criterion, median)", "time", "ratio"]);
        let raw = get(criterion::RAW_RSA);
        let cold = get(criterion::COLD);
        let cached = get(criterion::CACHED);
        let layer = get(criterion::LAYER);
        let fmt = |ns: Option<f64>| match ns {
            Some(ns) if ns >= 1000.0 => format!("{:.2} µs", ns / 1000.0),
            Some(ns) => format!("{ns:.0} ns"),
            None => "not run".into(),
        };
        let rel = |a: Option<f64>, b: Option<f64>, what: &str| match (a, b) {
            (Some(a), Some(b)) => format!("{} {what}", ratio(a / b)),
            _ => String::new(),
        };
        t.row(vec![
            "raw RS256 verify (jsonwebtoken + aws-lc-rs)".into(),
            fmt(raw),
            "1.00× raw".into(),
        ]);
        t.row(vec![
            "token validation, cold (no cache)".into(),
            fmt(cold),
            rel(cold, raw, "raw"),
        ]);
        t.row(vec![
            "token validation, cached".into(),
            fmt(cached),
            rel(cached, raw, "raw"),
        ]);
        t.row(vec![
            "auth layer call, cached token".into(),
            fmt(layer),
            rel(layer, cached, "cached validation"),
        ]);
        let bare = get(criterion::CALL_BARE);
        let bearer = get(criterion::CALL_BEARER);
        t.row(vec![
            "token provider: cached_token()".into(),
            fmt(get(criterion::PROVIDER_CACHED)),
            String::new(),
        ]);
        t.row(vec![
            "token provider: token() on a cached token".into(),
            fmt(get(criterion::PROVIDER_TOKEN)),
            String::new(),
        ]);
        t.row(vec![
            "service call without BearerLayer".into(),
            fmt(bare),
            String::new(),
        ]);
        t.row(vec![
            "service call through BearerLayer".into(),
            fmt(bearer),
            rel(bearer, bare, "without"),
        ]);
        let _ = write!(self.report, "\n### Micro-benchmarks\n\n{}", t.render());
        if let Some(cached) = cached {
            self.target(
                "cached validation ≤ 2 µs per call",
                fmt(Some(cached)),
                cached <= 2000.0,
            );
        }
        if let (Some(cold), Some(raw)) = (cold, raw) {
            self.target(
                "cold RS256 validation ≤ 1.2 × raw RSA verification",
                format!(
                    "{} ({} vs {})",
                    ratio(cold / raw),
                    fmt(Some(cold)),
                    fmt(Some(raw))
                ),
                cold / raw <= 1.2,
            );
        }
    }
}

/// The run with the median requests/s.
fn median_run(mut runs: Vec<LoadReport>) -> LoadReport {
    runs.sort_by(|a, b| a.rps().total_cmp(&b.rps()));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

fn load_table() -> Table {
    Table::new(&[
        "scenario",
        "req/s",
        "ratio",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "server CPU µs/call",
        "server cores",
        "generator cores",
        "other load (cores)",
    ])
}

fn load_row(table: &mut Table, name: &str, run: &LoadReport, vs: Option<(f64, &str)>) {
    let opt =
        |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_default();
    table.row(vec![
        name.to_owned(),
        thousands(run.rps()),
        vs.map(|(r, base)| format!("{} {base}", ratio(r)))
            .unwrap_or_default(),
        ms(run.quantile_ms(0.50)),
        ms(run.quantile_ms(0.90)),
        ms(run.quantile_ms(0.99)),
        ms(run.max_ms()),
        run.errors_by_code(),
        opt(run.server_us_per_call(), 1),
        opt(run.server_cores(), 2),
        opt(run.client_cores(), 2),
        opt(run.other_cores(), 2),
    ]);
}

fn h2_row(table: &mut Table, name: &str, report: &h2load::H2loadReport, base_rps: f64) {
    table.row(vec![
        name.to_owned(),
        "h2load".into(),
        thousands(report.rps),
        if base_rps.is_nan() {
            String::new()
        } else {
            ratio(report.rps / base_rps)
        },
        ms(report.quantile_ms(0.5)),
        ms(report.quantile_ms(0.99)),
        ms(report.latency.max() as f64 / 1000.0),
        format!("{} / {}", report.succeeded, report.failed),
        report
            .server_us_per_call
            .map(|us| format!("{us:.1}"))
            .unwrap_or_default(),
    ]);
}

fn errors_text(errors: &std::collections::BTreeMap<String, usize>) -> String {
    if errors.is_empty() {
        "0".into()
    } else {
        errors
            .iter()
            .map(|(code, n)| format!("{code}×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Creates `n` to-dos (retrying while the server is not ready) and returns
/// their ids.
pub(crate) async fn seed(target: &str, token: &SharedToken, n: usize) -> anyhow::Result<Vec<i64>> {
    let mut client = load::connect(target, 1).await?.remove(0);
    let mut ids = Vec::with_capacity(n);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids.len() < n {
        let message = CreateToDoRequest {
            todo: Some(ToDo {
                description: format!("seeded to-do {}", ids.len() + 1),
                ..Default::default()
            }),
            ..Default::default()
        };
        match client.create_to_do(load::request(message, token)).await {
            Ok(r) => ids.push(r.into_inner().id),
            Err(s) if s.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => bail!("seeding {target}: {s}"),
        }
    }
    Ok(ids)
}

/// A PostgreSQL schema of the suite's own, dropped at the end.
struct PgSchema {
    base: String,
    name: String,
}

impl PgSchema {
    async fn create(base: &str) -> anyhow::Result<Self> {
        let name = format!("todo_bench_{}", uuid::Uuid::new_v4().simple());
        let client = pg_connect(base).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await?;
        Ok(PgSchema {
            base: base.to_owned(),
            name,
        })
    }

    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }

    async fn drop(self) {
        match pg_connect(&self.base).await {
            Ok(client) => {
                if let Err(e) = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                    .await
                {
                    eprintln!("warning: dropping schema {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("warning: dropping schema {}: {e}", self.name),
        }
    }
}

async fn pg_connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}
