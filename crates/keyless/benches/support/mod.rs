//! What the benchmarks share: starting the `keyless` binary and reading a process's
//! CPU time. Included by each bench with `#[path = "support/mod.rs"] mod support;`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The flags that switch every request rate limit off (a benchmark is one client
/// sending thousands of requests a second).
pub const LIMITS_OFF: [&str; 6] = [
    "--rate-limit-per-client",
    "0",
    "--rate-limit-failures-per-address",
    "0",
    "--rate-limit-per-principal",
    "0",
];

/// Starts `keyless ARGS` and waits for its `... ready at URL` line; returns the child
/// (killed on drop) and the URL. Its stdout keeps being drained; stderr is dropped.
pub async fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyless"))
        .args(args)
        .env("KEYLESS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("exited before ready");
        if let Some((_, url)) = line.split_once("ready at ") {
            break url.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// User + system CPU seconds of process `pid` so far (from /proc).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
}
