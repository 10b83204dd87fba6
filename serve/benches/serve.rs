//! `cargo bench -p runretry-serve --bench serve`: decisions over loopback HTTP (`POST /v1/decide`,
//! keep-alive clients) next to the same decision made in-process, measured in one run: requests
//! per second, p50 and p99 latency, and their ratios. A load benchmark rather than criterion:
//! what matters is latency under concurrency, which criterion's one-closure loop does not model.
//!
//! Knobs (environment): `RUNRETRY_BENCH_REQUESTS` (default 20,000 per measurement),
//! `RUNRETRY_BENCH_CLIENTS` (default 16). Loopback only; bounded by the request count.

use std::time::{Duration, Instant};

use runretry::{Case, Sandbox, SandboxConfig};
use runretry_serve::{ServeConfig, Server};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Latencies sorted, and the wall time they took.
struct Run {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Run {
    fn new(mut latencies: Vec<Duration>, wall: Duration) -> Self {
        latencies.sort();
        Run { latencies, wall }
    }

    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index]
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {:.0} | {:.1} µs | {:.1} µs |",
            self.per_second(),
            self.percentile(0.50).as_secs_f64() * 1e6,
            self.percentile(0.99).as_secs_f64() * 1e6
        )
    }
}

/// `clients` threads, each with its own keep-alive connection, send `requests` in all.
fn over_http(addr: std::net::SocketAddr, body: &str, clients: usize, requests: usize) -> Run {
    let url = format!("http://{addr}/v1/decide");
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let (url, body) = (&url, body);
                scope.spawn(move || {
                    let agent = ureq::Agent::new_with_defaults();
                    let mine = requests / clients + usize::from(c < requests % clients);
                    let mut latencies = Vec::with_capacity(mine);
                    for _ in 0..mine {
                        let sent = Instant::now();
                        let mut response = agent.post(url).send(body).expect("the server answers");
                        let text = response.body_mut().read_to_string().expect("a body");
                        latencies.push(sent.elapsed());
                        assert!(text.contains("\"decision\""), "{text}");
                    }
                    latencies
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    Run::new(latencies, started.elapsed())
}

/// What the server does per request, in-process: parse the JSON, decide, serialise.
fn in_process(policy: &runretry::Policy, body: &str, threads: usize, requests: usize) -> Run {
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mine = requests / threads + usize::from(t < requests % threads);
                    let mut latencies = Vec::with_capacity(mine);
                    for _ in 0..mine {
                        let sent = Instant::now();
                        let case = Case::from_json("bench", body).unwrap();
                        let decision = policy.decide(&case).unwrap();
                        std::hint::black_box(serde_json::to_string(&decision).unwrap());
                        latencies.push(sent.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    Run::new(latencies, started.elapsed())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument other than "serve" skips this bench.
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"serve".contains(a.as_str())) {
        return;
    }
    let requests = env_number("RUNRETRY_BENCH_REQUESTS", 20_000);
    let clients = env_number("RUNRETRY_BENCH_CLIENTS", 16);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let body = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/conformance/examples/01-failed-run-no-tags-instance-default-2.json"),
    )
    .unwrap();
    let server = Server::start(ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        poll_interval: None,
        ..ServeConfig::default()
    })
    .expect("the server starts");
    let addr = server.local_addr();
    let policy = Sandbox::new(SandboxConfig::default()).unwrap().load_default().unwrap();
    // Warm up both paths (connections, pooled instance slots, page faults).
    over_http(addr, &body, clients, 1_000);
    in_process(&policy, &body, cores, 1_000);

    let one_client = over_http(addr, &body, 1, requests / 4);
    let many_clients = over_http(addr, &body, clients, requests);
    let one_thread = in_process(&policy, &body, 1, requests / 4);
    let all_cores = in_process(&policy, &body, cores, requests);

    println!("serve benchmark: POST /v1/decide (example 01) vs parse + decide + serialise in-process");
    println!("{requests} requests per concurrent measurement, {clients} clients, {cores} cores\n");
    println!("| measurement | per second | p50 | p99 |\n|---|---:|---:|---:|");
    println!("{}", one_client.row("HTTP, 1 client"));
    println!("{}", many_clients.row(&format!("HTTP, {clients} clients")));
    println!("{}", one_thread.row("in-process, 1 thread"));
    println!("{}", all_cores.row(&format!("in-process, {cores} threads")));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "\nratios: p50 latency HTTP (1 client) / in-process (1 thread) = {:.1}x; \
         throughput HTTP ({clients} clients) / in-process ({cores} threads) = {:.2}",
        ratio(one_client.percentile(0.5), one_thread.percentile(0.5)),
        many_clients.per_second() / all_cores.per_second()
    );
    drop(server);
}
