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
    start_with(&keyless_bin(), args, &[]).await
}

/// The `keyless` binary to benchmark: this build's, or `KEYLESS_BENCH_BIN` (another
/// build of it, to compare two changes in back-to-back runs).
pub fn keyless_bin() -> String {
    std::env::var("KEYLESS_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_keyless").to_owned())
}

/// Starts `program ARGS` (the binary, or a wrapper that runs it) like [`start`].
async fn start_with(program: &str, args: &[&str], envs: &[(&str, &str)]) -> (Child, String) {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
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
    let (user, system) = cpu_split(pid);
    user + system
}

/// User and system CPU seconds of process `pid` so far (from /proc), apart: on
/// loopback the system part also holds the peer's TCP receive path and its wake-up,
/// which the sender's `write` runs.
pub fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap() / 100.0;
    (ticks(11), ticks(12))
}

/// CPU time the calling thread has run so far (`/proc/thread-self/schedstat`, in ns):
/// time it was preempted, or the hypervisor ran something else, is not counted.
pub fn thread_cpu() -> std::time::Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    std::time::Duration::from_nanos(s.split_whitespace().next().unwrap().parse().unwrap())
}

/// The cost of one call of `op`, in thread CPU time like the server's CPU from `/proc`
/// (a wall clock would also count a preempted or stolen slice, which on this shared
/// machine inflated a bound up to 2x in one phase of a run): `rounds` rounds of `n`
/// calls each (`op(i)`, `i` in `0..n`), the median round.
pub fn crypto_bound(rounds: usize, n: usize, mut op: impl FnMut(usize)) -> std::time::Duration {
    let mut per: Vec<std::time::Duration> = (0..rounds)
        .map(|_| {
            let start = thread_cpu();
            for i in 0..n {
                op(i);
            }
            (thread_cpu() - start) / u32::try_from(n).unwrap()
        })
        .collect();
    per.sort();
    percentile(&per, 0.5)
}

/// Starts `keyless ARGS` confined to core `cpu` (`taskset -a -c CPU`, so every thread
/// the server starts stays there), like [`start`].
pub async fn start_pinned(cpu: usize, args: &[&str]) -> (Child, String) {
    start_pinned_with_env(cpu, args, &[]).await
}

/// [`start_pinned`] with extra environment variables (e.g. `KUBECONFIG`).
pub async fn start_pinned_with_env(
    cpu: usize,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, String) {
    let cpu = cpu.to_string();
    let bin = keyless_bin();
    let mut full = vec!["-a", "-c", cpu.as_str(), bin.as_str()];
    full.extend_from_slice(args);
    start_with("taskset", &full, envs).await
}

/// Confines this process (all its threads) to core `cpu`, so a client does not steal
/// the server's core. A client confined so runs one tokio worker
/// (`#[tokio::main(flavor = "multi_thread", worker_threads = 1)]`): two workers on one
/// core take turns in the scheduler's multi-millisecond slices, and a request parked
/// in the queue of the worker that is not running waits a slice, a client-side tail
/// that is not the server's.
pub fn pin_self(cpu: usize) {
    let status = std::process::Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "taskset failed");
}

/// The server's `admin.json` (tenant, subscription, client id and secret).
pub fn read_admin(data_dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(data_dir.join("admin.json")).unwrap()).unwrap()
}

/// A token for `scope` from `authority`, for the admin's client id and secret.
pub async fn admin_client_token(
    http: &reqwest::Client,
    authority: &str,
    admin: &serde_json::Value,
    scope: &str,
) -> String {
    let tenant = admin["tenantId"].as_str().unwrap();
    let token: serde_json::Value = http
        .post(format!("{authority}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", admin["clientId"].as_str().unwrap()),
            ("client_secret", admin["clientSecret"].as_str().unwrap()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_string()
}

/// The admin's management token: (tenant, bearer, admin.json).
pub async fn admin_token(
    http: &reqwest::Client,
    authority: &str,
    data_dir: &std::path::Path,
) -> (String, String, serde_json::Value) {
    let admin = read_admin(data_dir);
    let tenant = admin["tenantId"].as_str().unwrap().to_string();
    let scope = format!("{authority}/.default");
    let bearer = admin_client_token(http, authority, &admin, &scope).await;
    (tenant, bearer, admin)
}

/// `PUT authority+path` with a JSON body as the admin; panics unless it succeeds.
pub async fn put(
    http: &reqwest::Client,
    authority: &str,
    bearer: &str,
    path: String,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = http
        .put(format!("{authority}{path}"))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// The `q` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One line of a benchmark's result table.
pub struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    against: Against,
}

/// What a row's value is compared with.
enum Against {
    Nothing,
    /// value / bound should be at most max.
    Ratio {
        bound: f64,
        max: f64,
    },
    /// value should be at most this.
    Target(f64),
}

impl Row {
    /// A bound the other rows are divided by.
    pub fn bound(name: &str, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            against: Against::Nothing,
        }
    }
    /// A figure reported without a target.
    pub fn info(name: &str, value: f64, unit: &'static str) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            against: Against::Nothing,
        }
    }
    /// A figure whose ratio to `bound` should be at most `max_ratio`.
    pub fn ratio(name: &str, value: f64, unit: &'static str, bound: f64, max_ratio: f64) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            against: Against::Ratio {
                bound,
                max: max_ratio,
            },
        }
    }
    /// A figure that should be at most `target`.
    pub fn target(name: &str, value: f64, unit: &'static str, target: f64) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            against: Against::Target(target),
        }
    }
}

/// Prints rows as a Markdown table, one `| bench row |` per line (scripts/bench.sh
/// gathers them into one table): figure, value, bound or target, ratio, verdict.
pub fn print_rows(rows: &[Row]) {
    for r in rows {
        let (reference, ratio, verdict) = match r.against {
            Against::Nothing => (String::new(), String::new(), String::new()),
            Against::Target(reference) => (
                format!("≤ {reference:.2} {}", r.unit),
                format!("{:.2}", r.value / reference),
                if r.value <= reference { "ok" } else { "MISSED" }.to_string(),
            ),
            Against::Ratio {
                bound: reference,
                max,
            } => (
                format!("≤ {max}x {reference:.1} {}", r.unit),
                format!("{:.2}x", r.value / reference),
                if r.value <= reference * max {
                    "ok"
                } else {
                    "MISSED"
                }
                .to_string(),
            ),
        };
        println!(
            "| {} | {:.1} {} | {} | {} | {} |",
            r.name, r.value, r.unit, reference, ratio, verdict
        );
    }
}

/// Sends SIGINT to a child (e.g. `perf record`, which then writes its file) and waits.
pub fn interrupt_and_wait(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Deals `items` round-robin into `workers` piles (each worker's share, in order).
fn deal<T>(items: Vec<T>, workers: usize) -> Vec<Vec<T>> {
    let mut piles: Vec<Vec<T>> = (0..workers.max(1)).map(|_| Vec::new()).collect();
    let n = piles.len();
    for (i, item) in items.into_iter().enumerate() {
        piles[i % n].push(item);
    }
    piles
}

/// Closed loop: `workers` tasks (one connection each, for a pooled keep-alive client),
/// each sending its share of `items` back to back with `send`. Returns the wall time.
pub async fn closed_loop<T, F, Fut>(items: Vec<T>, workers: usize, send: F) -> std::time::Duration
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for pile in deal(items, workers) {
        let send = send.clone();
        tasks.push(tokio::spawn(async move {
            for item in pile {
                send(item).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// Open loop: requests arrive at `rate` per second, evenly spaced, whatever the
/// server's pace, and at most `workers` are in flight; a request that waits for a free
/// worker because earlier answers were slow is timed from its scheduled start (queueing
/// counts: no coordinated omission).
///
/// The arrivals are paced by a thread of their own with `std::thread::sleep`
/// (high-resolution timers): tokio's timer has a 1 ms granularity, so tasks sleeping
/// until their due times would wake together on each tick and send the requests of a
/// whole millisecond as one burst, which measures the burst, not the server.
pub async fn open_loop<T, F, Fut>(
    items: Vec<T>,
    workers: usize,
    rate: f64,
    send: F,
) -> Vec<std::time::Duration>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use std::time::{Duration, Instant};
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, T)>();
    let pacer = std::thread::spawn(move || {
        let t0 = Instant::now() + Duration::from_millis(20);
        for (i, item) in items.into_iter().enumerate() {
            let due = t0 + interval.mul_f64(i as f64);
            let now = Instant::now();
            // Ahead: sleep, and count from the wake-up (the sleep's own lateness is
            // the client's, not the server's). Behind: count from `due`.
            let start = if now < due {
                std::thread::sleep(due - now);
                Instant::now()
            } else {
                due
            };
            if tx.send((start, item)).is_err() {
                return;
            }
        }
    });
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (send, rx) = (send.clone(), rx.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let next = rx.lock().await.recv().await;
                let Some((start, item)) = next else { break };
                send(item).await;
                lat.push((start, start.elapsed()));
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    pacer.join().unwrap();
    // KEYLESS_BENCH_LATENCIES=FILE: every request's start (ms into the run) and latency
    // (µs), in start order, to see whether slow answers come alone or together.
    if let Ok(path) = std::env::var("KEYLESS_BENCH_LATENCIES") {
        all.sort_by_key(|(start, _)| *start);
        if let Some(&(first, _)) = all.first() {
            let lines: String = all
                .iter()
                .map(|(s, l)| {
                    format!(
                        "{:.3} {}\n",
                        (*s - first).as_secs_f64() * 1e3,
                        l.as_micros()
                    )
                })
                .collect();
            std::fs::write(path, lines).unwrap();
        }
    }
    let mut lat: Vec<Duration> = all.into_iter().map(|(_, l)| l).collect();
    lat.sort();
    lat
}

/// With `KEYLESS_BENCH_PERF=FILE` set, starts `perf record` (DWARF call graphs) of
/// process `pid` into FILE; stop it with [`interrupt_and_wait`] after the phase to
/// profile.
pub fn perf_record(pid: u32) -> Option<std::process::Child> {
    let out = std::env::var("KEYLESS_BENCH_PERF").ok()?;
    let pid = pid.to_string();
    let args = [
        "record",
        "--call-graph",
        "dwarf,32768",
        "-F",
        "4000",
        "-q",
        "-o",
        &out,
        "-p",
        &pid,
    ];
    Some(
        std::process::Command::new("perf")
            .args(args)
            .spawn()
            .unwrap(),
    )
}
