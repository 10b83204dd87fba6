//! `runretry serve` against clients that are slow, idle, huge or gone: every limit and timeout
//! of `docs/deployment.md` over raw loopback sockets, and a soak test with all of them at once
//! beside normal clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use runretry_serve::{ServeConfig, Server};
use serde_json::Value;

use crate::serve::{case_for, config, Client, ServeProcess};
use crate::support::{rss_mib, wait_for};

/// A config with short timeouts, so a test sees them fire.
fn short_timeouts(dir: &std::path::Path) -> ServeConfig {
    ServeConfig {
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        write_timeout: Duration::from_millis(800),
        ..config(dir)
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream
}

/// Whether the server closed the connection: a read ends (EOF or reset) before the read timeout.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an answer (408, say) may come first
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// One HTTP/1.1 answer read off the socket: its status and body.
fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut buf).expect("an answer");
        assert!(n > 0, "the connection closed before an answer: {:?}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        data.extend_from_slice(&buf[..n]);
    }
    (status, String::from_utf8_lossy(&data[head_end..head_end + length]).to_string())
}

#[test]
fn idle_slow_header_and_idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(short_timeouts(dir.path())).unwrap();
    // Connected, never a byte sent.
    let mut idle = connect(server.local_addr());
    assert!(closed_by_server(&mut idle), "an idle connection stays open");
    // A head sent a header line at a time, never finished.
    let mut slow = connect(server.local_addr());
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut writes_failed = false;
    while started.elapsed() < Duration::from_secs(10) {
        if slow.write_all(b"X-Slow: 1\r\n").is_err() {
            writes_failed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(writes_failed || closed_by_server(&mut slow), "a head that never ends keeps its connection");
    // A keep-alive connection idle after its answer.
    let mut kept = connect(server.local_addr());
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut kept).0, 200);
    assert!(closed_by_server(&mut kept), "an idle keep-alive connection stays open");
}

#[test]
fn a_stalled_body_is_408_and_an_oversized_content_length_413_before_any_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig { max_request_bytes: 1_000, ..short_timeouts(dir.path()) }).unwrap();
    let mut stalled = connect(server.local_addr());
    stalled.write_all(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n{\"run\": ").unwrap();
    let (status, body) = read_answer(&mut stalled);
    assert_eq!(status, 408, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["kind"], "request timeout");

    // Refused from the head alone: no `100 Continue`, and not a byte of the body read.
    let mut large = connect(server.local_addr());
    large
        .write_all(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let (status, body) = read_answer(&mut large);
    assert_eq!(status, 413, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["kind"], "request too large", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("100000 bytes (Content-Length)"), "{error}");
    // A chunked body (no length) is cut off at the limit too.
    let mut chunked = connect(server.local_addr());
    let chunk = " ".repeat(2_000);
    write!(
        chunked,
        "POST /v1/decide HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n{chunk}\r\n0\r\n\r\n"
    )
    .unwrap();
    assert_eq!(read_answer(&mut chunked).0, 413);
}

#[test]
fn at_the_connection_cap_the_health_checks_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig {
        max_connections: 2,
        header_timeout: Duration::from_secs(30),
        ..config(dir.path())
    })
    .unwrap();
    let held: Vec<TcpStream> = (0..2).map(|_| connect(server.local_addr())).collect();
    // The two full slots are taken by connections that send nothing: a new one gets a spare slot.
    let mut probe = connect(server.local_addr());
    probe.write_all(b"GET /health/ready HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut probe).0, 200, "a readiness probe must answer at the cap");
    let mut decide = connect(server.local_addr());
    let case = case_for("run-capped");
    write!(decide, "POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{case}", case.len()).unwrap();
    let (status, body) = read_answer(&mut decide);
    assert_eq!(status, 503, "a decision past the cap waits for room, it is not served: {body}");
    drop(held);
    wait_for("a full slot to be free again", || {
        Client::new(server.local_addr()).post("/v1/decide", case.as_bytes()).0 == 200
    });
}

/// Slow, idle, stalled and unread clients beside four normal ones, for a bounded time: normal
/// clients keep being answered promptly, memory stays under its ceiling while the bad clients
/// are there, and returns to its baseline once they are gone.
#[cfg(target_os = "linux")]
#[test]
fn soak_slow_idle_stalled_and_unread_clients_beside_normal_ones() {
    let server = ServeProcess::start(&[
        "--header-timeout-ms",
        "2000",
        "--body-timeout-ms",
        "3000",
        "--write-timeout-ms",
        "3000",
        "--max-buffered-bytes",
        &(64u64 << 20).to_string(),
    ]);
    let (addr, pid) = (server.addr, server.pid() as u32);
    let client = Client::new(addr);
    for i in 0..200 {
        assert_eq!(client.post("/v1/decide", case_for(&format!("warm-{i}")).as_bytes()).0, 200);
    }
    let baseline = rss_mib(pid);
    let stop_at = Instant::now() + Duration::from_secs(8);
    let (latencies, peak) = std::thread::scope(|scope| {
        // 40 idle connections and 10 that send their head a byte at a time.
        for i in 0..50 {
            scope.spawn(move || {
                let mut stream = connect(addr);
                while Instant::now() < stop_at {
                    if i % 5 == 0 && stream.write_all(b"X").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        // 20 uploads of 15 MiB of a 16 MB body that then stall.
        for _ in 0..20 {
            scope.spawn(move || {
                let mut stream = connect(addr);
                let head = "POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Length: 16000000\r\n\r\n";
                let _ = stream.write_all(head.as_bytes());
                let chunk = vec![b' '; 1 << 20];
                for _ in 0..15 {
                    if Instant::now() > stop_at || stream.write_all(&chunk).is_err() {
                        break;
                    }
                }
                while Instant::now() < stop_at {
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        // 5 batches of 1,000 cases whose answers are never read.
        for b in 0..5 {
            scope.spawn(move || {
                let lines: String = (0..1_000).map(|i| case_for(&format!("batch-{b}-{i}")) + "\n").collect();
                let mut stream = connect(addr);
                let head =
                    format!("POST /v1/decide/batch HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", lines.len());
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(lines.as_bytes()));
                while Instant::now() < stop_at {
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let peak = scope.spawn(move || {
            let mut peak: f64 = 0.0;
            while Instant::now() < stop_at {
                peak = peak.max(rss_mib(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        let normal: Vec<_> = (0..4)
            .map(|c| {
                scope.spawn(move || {
                    let client = Client::new(addr);
                    let mut latencies = Vec::new();
                    let mut i = 0;
                    while Instant::now() < stop_at {
                        let started = Instant::now();
                        let (status, body) = client.post("/v1/decide", case_for(&format!("normal-{c}-{i}")).as_bytes());
                        assert_eq!(status, 200, "{body}");
                        latencies.push(started.elapsed());
                        i += 1;
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies: Vec<Duration> = normal.into_iter().flat_map(|n| n.join().unwrap()).collect();
        latencies.sort();
        (latencies, peak.join().unwrap())
    });
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "soak: {} normal answers, p50 {:?}, p99 {:?}; RSS baseline {baseline:.0} MiB, peak {peak:.0} MiB",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99
    );
    assert!(latencies.len() >= 100, "normal clients were starved: {} answers in 8 s", latencies.len());
    // Generous for a loaded 2-core machine; starved clients wait seconds.
    assert!(p99 < Duration::from_secs(1), "normal clients' p99 is {p99:?}");
    // The body budget is 64 MiB; the unread answers are a few MiB each.
    assert!(peak < baseline + 200.0, "RSS peaked at {peak:.0} MiB from a baseline of {baseline:.0} MiB");
    let mut settled = f64::MAX;
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        settled = rss_mib(pid);
        if settled < baseline + 48.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(settled < baseline + 48.0, "RSS stays at {settled:.0} MiB from a baseline of {baseline:.0} MiB");
    eprintln!("soak: RSS after the clients left {settled:.0} MiB");
    assert_eq!(client.post("/v1/decide", case_for("after").as_bytes()).0, 200);
}

/// Issue #31: with the file limit at 256, 300 connections that never send a byte took every
/// slot (the spare ones too) and `/health` waited behind them in the backlog.
#[cfg(target_os = "linux")]
#[test]
fn health_answers_while_idle_connections_exhaust_the_file_limit() {
    raise_own_file_limit(1024);
    let server = ServeProcess::start_with_file_limit(&[], 256);
    let idle: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(server.addr).unwrap()).collect();
    let mut probe = TcpStream::connect(server.addr).unwrap();
    probe.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    probe.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut probe).0, 200, "/health must answer under connection exhaustion");
    drop(idle);
}

/// This test process needs a descriptor per connection it holds.
#[cfg(target_os = "linux")]
fn raise_own_file_limit(at_least: libc::rlim_t) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed in.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < at_least {
            limit.rlim_cur = at_least.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// Issue #31: a client that sends its whole (large) body before reading saw the connection
/// reset instead of the 401 or 403 the server answered from the head.
#[test]
fn a_refused_large_body_is_answered_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig { token: Some("s3cret".into()), ..config(dir.path()) }).unwrap();
    let body = vec![b' '; 12 << 20];
    for (method, path, status) in [("POST", "/v1/decide", 401), ("PUT", "/v1/policy", 401)] {
        let mut stream = connect(server.local_addr());
        stream.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(stream, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
        stream.write_all(&body).expect("the server reads and drops the body it refused");
        assert_eq!(read_answer(&mut stream).0, status, "{method} {path}");
    }
    let open = Server::start(config(dir.path())).unwrap();
    let mut stream = connect(open.local_addr());
    stream.set_write_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(stream, "PUT /v1/policy HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    stream.write_all(&body).expect("the server reads and drops the upload it refused");
    assert_eq!(read_answer(&mut stream).0, 403, "uploads are disabled");
}

/// Issue #31: HTTP/1.1 requires exactly one `Host` header; none or two were answered 200.
#[test]
fn a_missing_or_repeated_host_header_is_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    for head in [
        "GET /health HTTP/1.1\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /v1/policy HTTP/1.1\r\n\r\n",
    ] {
        let mut stream = connect(server.local_addr());
        stream.write_all(head.as_bytes()).unwrap();
        let (status, body) = read_answer(&mut stream);
        assert_eq!(status, 400, "{head:?}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["kind"], "bad input", "{body}");
    }
    // HTTP/1.0 has no Host requirement.
    let mut stream = connect(server.local_addr());
    stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut stream).0, 200);
}
