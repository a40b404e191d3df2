//! `malamute [-v] [CONFIG]`: the Malamute broker, as upstream's command
//! runs it: settings and binds from a ZPL config file (default
//! `malamute.cfg`, created with upstream's defaults if missing), until
//! SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use malamute::broker::Broker;
use malamute::mlm_server_engine::Machine;
use zproto_runtime::host::ServerHandle;

/// Where upstream binds when the config file names nothing.
const DEFAULT_ENDPOINT: &str = "ipc://@/malamute";

#[derive(Parser)]
#[command(
    name = "malamute",
    version,
    about = "The Malamute broker, rebuilt with zproto-rs"
)]
struct Cli {
    /// Log every state, event and action.
    #[arg(short)]
    verbose: bool,
    /// Stay in the foreground (always so here; accepted as upstream's).
    #[arg(short)]
    foreground: bool,
    /// The config file (ZPL).
    #[arg(default_value = "malamute.cfg")]
    config: PathBuf,
    /// Serve metrics (OpenMetrics text, as Prometheus scrapes) at
    /// http://ADDR/metrics, e.g. 127.0.0.1:9101 (not in upstream).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
}

fn main() -> ExitCode {
    give_large_blocks_back();
    let cli = Cli::parse();
    // Colours for a terminal only, never in a log file.
    tracing_subscriber::fmt()
        .with_env_filter(if cli.verbose { "debug" } else { "info" })
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Block the stop signals before any thread starts, so that every
    // thread inherits the mask and `sigwait` below takes them.
    let signals = stop_signals();
    if !cli.config.exists() {
        let defaults = format!(
            "server\n    timeout = 5000\n    background = 0\n    workdir = .\n    verbose = 0\n\
             mlm_server\n    security\n        mechanism = null\n    bind\n        endpoint = {DEFAULT_ENDPOINT}\n"
        );
        tracing::info!(
            "{} not found: writing upstream's defaults",
            cli.config.display()
        );
        if let Err(e) = std::fs::write(&cli.config, defaults) {
            eprintln!("malamute: cannot write {}: {e}", cli.config.display());
            return ExitCode::FAILURE;
        }
    }
    let server = match ServerHandle::<Machine<Broker>>::start("mlm_server", Broker::default()) {
        Ok(server) => std::sync::Arc::new(server),
        Err(e) => {
            eprintln!("malamute: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.verbose {
        let _ = server.verbose();
    }
    // Dead or unreachable clients are found by ZMTP heartbeats (a second
    // apart, four missed end the connection and the session); the config
    // file may say otherwise.
    if let Err(e) = server.set("server/heartbeat", "1000") {
        eprintln!("malamute: {e}");
        return ExitCode::FAILURE;
    }
    // No message larger than a client's share of storage (upstream has no
    // bound: one 256 MiB message took 1 GB): libzmq drops the connection
    // of a peer that sends one. The config file may say otherwise.
    let max_message = malamute::broker::CLIENT_SHARE.to_string();
    if let Err(e) = server.set("server/max-message", &max_message) {
        eprintln!("malamute: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = server.load(&cli.config) {
        eprintln!("malamute: {e}");
        return ExitCode::FAILURE;
    }
    let _metrics = match &cli.metrics {
        Some(address) => match malamute::metrics::serve(address, server.clone()) {
            Ok(metrics) => {
                println!("METRICS http://{}/metrics", metrics.address());
                Some(metrics)
            }
            Err(e) => {
                eprintln!("malamute: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    tracing::info!("malamute broker running ({})", cli.config.display());
    wait(&signals);
    tracing::info!("malamute broker stopping");
    ExitCode::SUCCESS
}

/// Messages live in libzmq's queues, allocated by the C library's malloc.
/// glibc serves blocks over its mmap threshold (128 KiB) with mmap and
/// gives them back on free, but raises that threshold to the largest such
/// block freed (up to 32 MiB): after a burst of large messages, the next
/// ones come from the heap, and the heap keeps what they took when they
/// are freed (68 MB stayed after a 256 MB burst's clients left). Setting
/// the threshold fixes it at 128 KiB.
fn give_large_blocks_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any
    // other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// SIGINT and SIGTERM, blocked in this thread (and the threads it starts).
fn stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Wait for one of `signals`.
fn wait(signals: &libc::sigset_t) {
    let mut signal = 0;
    // SAFETY: `signals` is a valid set; `signal` outlives the call.
    unsafe { libc::sigwait(signals, &mut signal) };
}
