//! Malamute: our broker and client against the C ones, in one run.
//!
//! Stream throughput as upstream's `mlm_perftest.c` measures it (one
//! writer sends N `temp.*` and N `rain.*` messages, one reader consumes
//! `temp.`, then an END), and mailbox round trips between two clients, on
//! the four combinations of broker (C, ours) and clients (C through
//! `tests/c/mlm_bench.c` on libmlm.a, ours). Brokers are processes with the
//! same config file, over tcp loopback; best of several rounds, the
//! combinations taking turns.
//!
//! `cargo bench -p zproto-malamute` (`-- --quick` for a shorter run).
//! Without the C Malamute (../shared, libczmq) it says so and measures
//! nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use malamute::client::MlmClient;
use malamute::mlm_proto::MlmProto;
use support::{Broker, Kind, Scratch};

const WAIT: Duration = Duration::from_secs(10);

/// A tcp endpoint on a free loopback port.
fn endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    format!("tcp://127.0.0.1:{port}")
}

/// (messages or round trips done, seconds) of a C run of mlm_bench.
fn c_run(c: &Path, endpoint: &str, what: &str, count: usize) -> (usize, f64) {
    let out = Command::new(c.join("mlm_bench"))
        .args([endpoint, what, &count.to_string()])
        .output()
        .expect("mlm_bench");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("received="))
        .unwrap_or_else(|| panic!("mlm_bench said: {text}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("received=") as usize, field("usec=") as f64 / 1e6)
}

fn connect(endpoint: &str, address: &str) -> MlmClient {
    let mut client = MlmClient::with_defaults().expect("client");
    assert_eq!(client.connect(endpoint, 5000, address, WAIT), Ok(0));
    client
}

/// Our clients: the same stream run as mlm_bench's.
fn rust_stream(endpoint: &str, count: usize) -> (usize, f64) {
    let mut reader = connect(endpoint, "bench-reader");
    let mut writer = connect(endpoint, "bench-writer");
    assert_eq!(writer.set_producer("weather", WAIT), Ok(0));
    assert_eq!(reader.set_consumer("weather", "temp.", WAIT), Ok(0));
    let start = Instant::now();
    let consumer = std::thread::spawn(move || {
        let mut received = 0;
        while let Ok(message) = reader.recv(Duration::from_secs(5)) {
            if let MlmProto::StreamDeliver(m) = message {
                if m.subject == "temp.signal" {
                    break;
                }
                received += 1;
            }
        }
        received
    });
    for _ in 0..count {
        writer.send_text("temp.moscow", &["10"]).expect("send");
        writer.send_text("rain.moscow", &["0"]).expect("send");
    }
    writer.send_text("temp.signal", &["END"]).expect("send");
    let received = consumer.join().expect("reader");
    (received, start.elapsed().as_secs_f64())
}

/// Our clients: mailbox round trips.
fn rust_mailbox(endpoint: &str, count: usize) -> (usize, f64) {
    let ping = connect(endpoint, "bench-ping");
    let pong = connect(endpoint, "bench-pong");
    let start = Instant::now();
    let mut done = 0;
    for _ in 0..count {
        ping.sendto_text("bench-pong", "ping", "", 0, &["x"])
            .expect("sendto");
        if pong.recv(Duration::from_secs(5)).is_err() {
            break;
        }
        pong.sendto_text("bench-ping", "pong", "", 0, &["x"])
            .expect("sendto");
        if ping.recv(Duration::from_secs(5)).is_err() {
            break;
        }
        done += 1;
    }
    (done, start.elapsed().as_secs_f64())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (stream_count, mailbox_count, rounds) = if quick {
        (20_000, 1_000, 2)
    } else {
        (100_000, 5_000, 3)
    };
    let Some(c) = support::c_malamute("the Malamute benchmark") else {
        return;
    };
    let scratch = Scratch::new("bench");
    let brokers = [Kind::C(c.clone()), Kind::Ours];
    let clients = ["C", "ours"];
    // Best rate per (broker, clients, test).
    let mut best = std::collections::HashMap::<(usize, usize, &str), f64>::new();
    let mut lost = Vec::new();
    for _ in 0..rounds {
        for (b, broker_kind) in brokers.iter().enumerate() {
            for (k, client_kind) in clients.iter().enumerate() {
                let at = endpoint();
                // Room for a reader that falls behind a fast broker (the
                // C broker ignores the key; upstream's perftest sets no
                // high-water marks at all).
                let _broker = Broker::start_with(
                    broker_kind,
                    &scratch,
                    &at,
                    None,
                    "    backlog = 1000000\n    backlog-bytes = 1000000000\n",
                );
                for (test, count) in [("stream", stream_count), ("mailbox", mailbox_count)] {
                    let (done, secs) = match (*client_kind, test) {
                        ("C", _) => c_run(&c, &at, test, count),
                        (_, "stream") => rust_stream(&at, count),
                        _ => rust_mailbox(&at, count),
                    };
                    if done < count {
                        lost.push(format!(
                            "{} broker, {client_kind} clients, {test}: {done} of {count}",
                            broker_kind.name()
                        ));
                    }
                    let rate = done as f64 / secs.max(1e-9);
                    let entry = best.entry((b, k, test)).or_insert(0.0);
                    *entry = entry.max(rate);
                }
            }
        }
    }
    println!(
        "Malamute, best of {rounds}: stream = {stream_count} temp + {stream_count} rain messages, \
         reader on temp. (delivered/s); mailbox = {mailbox_count} round trips (/s)"
    );
    println!(
        "{:<10} {:<8} {:>14} {:>14}",
        "broker", "clients", "stream /s", "mailbox RT/s"
    );
    for (b, broker_kind) in brokers.iter().enumerate() {
        for (k, client_kind) in clients.iter().enumerate() {
            println!(
                "{:<10} {:<8} {:>14.0} {:>14.0}",
                broker_kind.name(),
                client_kind,
                best[&(b, k, "stream")],
                best[&(b, k, "mailbox")]
            );
        }
    }
    for test in ["stream", "mailbox"] {
        for (k, client_kind) in clients.iter().enumerate() {
            println!(
                "{test}: our broker / C broker, {client_kind} clients: {:.2}x",
                best[&(1, k, test)] / best[&(0, k, test)]
            );
        }
        for (b, broker_kind) in brokers.iter().enumerate() {
            println!(
                "{test}: our clients / C clients, {} broker: {:.2}x",
                broker_kind.name(),
                best[&(b, 1, test)] / best[&(b, 0, test)]
            );
        }
    }
    for line in &lost {
        println!("LOST: {line}");
    }
}
