//! `async-echo`: what a tokio application built on zproto-rs looks like.
//!
//! - A generated server (the echo protocol) runs in the runtime's host,
//!   bound to a loopback port.
//! - Two zgossip nodes: one announces the server's endpoint, the other
//!   discovers it from its stream of deliveries.
//! - The generated async client connects to what was discovered, and many
//!   tasks call it at once.
//! - `tokio::select!` waits on the calls, the deliveries and Ctrl-C; on
//!   Ctrl-C (or when the calls are done, with `--once`) everything shuts
//!   down in order, and the program says what it did.
//!
//! Nothing here blocks an executor thread: the reactor threads wake the
//! futures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use tokio::task::JoinSet;
use zgossip::AsyncNode;
use zproto_conformance::echo::{EchoClient, EchoServer};
use zproto_conformance::echo_client_engine::AsyncClient;
use zproto_conformance::echo_server_engine::Machine;
use zproto_runtime::host::AsyncServerHandle;

/// How long a call waits for its reply.
const WAIT: Duration = Duration::from_secs(10);
/// The service name the server is announced under.
const SERVICE: &str = "echo";

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A tokio program on zproto-rs: echo calls over a discovered endpoint"
)]
struct Args {
    /// Tasks calling the client at once.
    #[arg(long, default_value_t = 100)]
    tasks: usize,
    /// Calls each task makes.
    #[arg(long, default_value_t = 10)]
    calls: usize,
    /// Exit once the calls are done, instead of waiting for Ctrl-C.
    #[arg(long)]
    once: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();

    // The server, in the host, on a port the system picks.
    let server = AsyncServerHandle::<Machine<EchoServer>>::start("echo_server", EchoServer)?;
    let port = server.bind("tcp://127.0.0.1:*").await?;
    let endpoint = format!("tcp://127.0.0.1:{port}");

    // Discovery: the announcer gossips the endpoint to the watcher.
    let announcer = AsyncNode::new("announcer")?;
    announcer.bind("tcp://127.0.0.1:*").await?;
    let gossip_port = announcer.port().await?;
    let watcher = AsyncNode::new("watcher")?;
    watcher
        .connect(&format!("tcp://127.0.0.1:{gossip_port}"))
        .await?;
    announcer.announce(&endpoint, SERVICE)?;
    let mut deliveries = watcher.deliveries();
    let discovered = loop {
        let delivery = tokio::time::timeout(WAIT, deliveries.next())
            .await
            .map_err(|_| "nothing was discovered in time")?
            .ok_or("the watcher stopped")?;
        if delivery.service == SERVICE && !delivery.removed {
            break delivery.endpoint;
        }
    };
    println!("discovered {SERVICE} at {discovered}");

    // The client, shared by every task: calls take `&self`.
    let client = Arc::new(AsyncClient::new(EchoClient::default())?);
    client.connect(&discovered, 2000, WAIT).await?;
    let started = Instant::now();
    let mut calls = JoinSet::new();
    for task in 0..args.tasks {
        let client = client.clone();
        let count = args.calls;
        calls.spawn(async move {
            for call in 0..count {
                let body = format!("task {task} call {call}");
                let echoed = client.echo(&body, WAIT).await?;
                if echoed != body {
                    return Err(format!("asked {body:?}, got {echoed:?}").into());
                }
            }
            Ok::<usize, Box<dyn std::error::Error + Send + Sync>>(count)
        });
    }
    // Ctrl-C's handler is installed when its future is first polled: poll
    // it once now, so that a Ctrl-C from here on is ours to handle.
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    if futures_util::future::poll_immediate(&mut ctrl_c)
        .await
        .is_some()
    {
        return Err("cannot listen for Ctrl-C".into());
    }
    println!("ready: {} tasks calling; Ctrl-C stops", args.tasks);

    let mut answered = 0;
    let mut calls_done = false;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                println!("Ctrl-C: shutting down");
                break;
            }
            finished = calls.join_next(), if !calls_done => match finished {
                Some(Ok(Ok(n))) => answered += n,
                Some(Ok(Err(e))) => return Err(e.to_string().into()),
                Some(Err(e)) => return Err(e.into()),
                None => {
                    calls_done = true;
                    println!(
                        "{answered} calls answered in {:.0} ms",
                        started.elapsed().as_secs_f64() * 1000.0
                    );
                    if args.once {
                        break;
                    }
                }
            },
            delivery = deliveries.next() => match delivery {
                Some(d) => println!("gossip: {} {} {}", if d.removed { "removed" } else { "learned" }, d.endpoint, d.service),
                None => break,
            },
        }
    }

    // In order: stop calling, say goodbye, stop discovery, stop serving.
    calls.shutdown().await;
    let _ = client.destructor(Duration::from_secs(1)).await;
    drop(deliveries);
    drop((client, watcher, announcer));
    let stats = server.stats().await?;
    println!(
        "stopped: {answered} calls answered, {} messages served",
        stats.received
    );
    Ok(())
}
