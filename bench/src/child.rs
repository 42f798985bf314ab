//! Servers under test as child processes: ours (`todo-bench serve`,
//! `todo-server`) and the peers (Node, Python). Each prints
//! `LISTENING <addr>` once it accepts calls; each is killed when its handle
//! is dropped, so no run leaves a server behind.

use std::{
    net::SocketAddr,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A running server process.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    /// What it is, for messages.
    pub(crate) name: String,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    child: Child,
}

impl ServerProcess {
    /// Starts `command` (stderr to `log`, stdin kept open) and waits up to
    /// `timeout` for its `LISTENING <addr>` line.
    pub(crate) async fn start(
        name: &str,
        mut command: Command,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let log_file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name} ({command:?})"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        let addr = loop {
            let line =
                tokio::time::timeout(timeout.saturating_sub(started.elapsed()), lines.next_line())
                    .await
                    .with_context(|| {
                        format!(
                            "{name} did not start within {timeout:?}; see {}",
                            log.display()
                        )
                    })??;
            match line {
                Some(line) => {
                    if let Some(addr) = line.trim().strip_prefix("LISTENING ") {
                        break addr
                            .trim()
                            .parse::<SocketAddr>()
                            .with_context(|| format!("{name} printed {line:?}"))?;
                    }
                }
                None => {
                    let status = child.wait().await?;
                    bail!(
                        "{name} exited ({status}) before listening; see {}:\n{}",
                        log.display(),
                        tail(log)
                    )
                }
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess {
            name: name.to_owned(),
            addr,
            child,
        })
    }

    /// `http://addr`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// SIGKILL, as a crash would.
    pub(crate) async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Asks it to stop (closes stdin; SIGKILL after 10 s).
    pub(crate) async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "warning: {} did not stop within 10 s; killing it",
                self.name
            );
            let _ = self.child.kill().await;
        }
    }
}

/// A command, pinned to `cpus` (a `taskset` list such as `0`) when given.
pub(crate) fn pinned(program: impl AsRef<std::ffi::OsStr>, cpus: Option<&str>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpus).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The last lines of a log file.
pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
