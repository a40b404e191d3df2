//! The async client against the blocking one, same server, same run:
//! echo round trips over tcp and inproc, best of 5, the sides taking turns.
//!
//! - **sequential**: one caller, one call at a time. Goal: async within
//!   10% of blocking.
//! - **pipelined, 100 clients**: 100 callers with a client each, so 100
//!   calls are in flight (tokio tasks against threads). Goal: async at
//!   1.0x or more.
//! - **100 callers, one client**: 100 tokio tasks share one `&self` async
//!   client; 100 threads share one blocking client behind a mutex. The
//!   protocol has no call ids, so one client's calls run one at a time
//!   either way; this shows what the queue on the reactor thread costs.
//!
//! `cargo bench -p zproto-async-example --bench clients` (`-- --quick` for
//! a shorter run).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zproto_conformance::echo::{EchoClient, EchoServer};
use zproto_conformance::echo_client_engine::{AsyncClient, Client};
use zproto_conformance::echo_server_engine::Machine;
use zproto_runtime::host::ServerHandle;

const WAIT: Duration = Duration::from_secs(30);
const CALLERS: usize = 100;

type EchoHost = ServerHandle<Machine<EchoServer>>;

fn server(transport: &str, run: usize) -> (EchoHost, String) {
    let host = EchoHost::start("echo_server", EchoServer).expect("server");
    host.set("server/timeout", "600000").expect("set");
    match transport {
        "inproc" => {
            let at = format!("inproc://clients-bench-{run}");
            host.bind(&at).expect("bind");
            (host, at)
        }
        _ => {
            let port = host.bind("tcp://127.0.0.1:*").expect("bind");
            (host, format!("tcp://127.0.0.1:{port}"))
        }
    }
}

fn blocking_client(at: &str) -> Client<EchoClient> {
    let mut client = Client::new(EchoClient::default()).expect("client");
    assert_eq!(client.connect(at, 5000, WAIT), Ok(0));
    client
}

async fn async_client(at: &str) -> AsyncClient<EchoClient> {
    let client = AsyncClient::new(EchoClient::default()).expect("client");
    assert_eq!(client.connect(at, 5000, WAIT).await, Ok(0));
    client
}

/// Nanoseconds for `calls` sequential calls on one blocking client.
fn blocking_sequential(at: &str, calls: usize) -> u128 {
    let mut client = blocking_client(at);
    let started = Instant::now();
    for _ in 0..calls {
        client.echo("x", WAIT).expect("echo");
    }
    started.elapsed().as_nanos()
}

async fn async_sequential(at: &str, calls: usize) -> u128 {
    let client = async_client(at).await;
    let started = Instant::now();
    for _ in 0..calls {
        client.echo("x", WAIT).await.expect("echo");
    }
    started.elapsed().as_nanos()
}

/// Nanoseconds for `calls` calls from [`CALLERS`] threads, each with a
/// client of its own.
fn blocking_pipelined(at: &str, calls: usize) -> u128 {
    let clients: Vec<_> = (0..CALLERS).map(|_| blocking_client(at)).collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for mut client in clients {
            scope.spawn(move || {
                for _ in 0..calls / CALLERS {
                    client.echo("x", WAIT).expect("echo");
                }
            });
        }
    });
    started.elapsed().as_nanos()
}

async fn async_pipelined(at: &str, calls: usize) -> u128 {
    let mut clients = Vec::new();
    for _ in 0..CALLERS {
        clients.push(async_client(at).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                for _ in 0..calls / CALLERS {
                    client.echo("x", WAIT).await.expect("echo");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    started.elapsed().as_nanos()
}

/// [`CALLERS`] threads sharing one blocking client (its methods take
/// `&mut self`, so behind a mutex).
fn blocking_shared(at: &str, calls: usize) -> u128 {
    let client = Mutex::new(blocking_client(at));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CALLERS {
            scope.spawn(|| {
                for _ in 0..calls / CALLERS {
                    let mut client = client.lock().expect("lock");
                    client.echo("x", WAIT).expect("echo");
                }
            });
        }
    });
    started.elapsed().as_nanos()
}

async fn async_shared(at: &str, calls: usize) -> u128 {
    let client = Arc::new(async_client(at).await);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..calls / CALLERS {
                    client.echo("x", WAIT).await.expect("echo");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    started.elapsed().as_nanos()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (calls, rounds) = if quick { (2_000, 3) } else { (20_000, 5) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("echo calls: the async client (tokio, 2 workers) against the blocking one");
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "calls", "async", "blocking", "ratio"
    );
    let mut run = 0;
    for transport in ["tcp", "inproc"] {
        for kind in [
            "sequential",
            "pipelined, 100 clients",
            "100 callers, one client",
        ] {
            let (mut async_best, mut blocking_best) = (u128::MAX, u128::MAX);
            for _ in 0..rounds {
                run += 1;
                let (host, at) = server(transport, run);
                async_best = async_best.min(runtime.block_on(async {
                    match kind {
                        "sequential" => async_sequential(&at, calls).await,
                        "pipelined, 100 clients" => async_pipelined(&at, calls).await,
                        _ => async_shared(&at, calls).await,
                    }
                }));
                drop(host);
                run += 1;
                let (host, at) = server(transport, run);
                blocking_best = blocking_best.min(match kind {
                    "sequential" => blocking_sequential(&at, calls),
                    "pipelined, 100 clients" => blocking_pipelined(&at, calls),
                    _ => blocking_shared(&at, calls),
                });
                drop(host);
            }
            let rate = |ns: u128| calls as f64 * 1e9 / ns as f64;
            println!(
                "{:<34} {:>8.1} k/s {:>8.1} k/s {:>7.2}x",
                format!("{transport} {kind}"),
                rate(async_best) / 1e3,
                rate(blocking_best) / 1e3,
                rate(async_best) / rate(blocking_best)
            );
        }
    }
}
