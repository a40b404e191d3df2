//! `zgossip node --metrics ADDR`: the node's counters and gauges in the
//! OpenMetrics text format Prometheus scrapes, over HTTP.
//!
//! Encoded by `prometheus-client` (the OpenMetrics project's Rust client)
//! and served by [`zproto_metrics_http`], whose bounds keep abusive HTTP
//! clients from costing the node more than a few MiB or a scraper its
//! answer. Each scrape reads a snapshot of the node ([`Probe::metrics`]):
//! the reactor thread answers it between messages, as it answers STATS.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
pub use zproto_metrics_http::{Limits, MetricsServer};

use zgossip::MESSAGE_TYPES;
use zgossip::{Metrics, Probe};

/// The OpenMetrics text of `metrics`.
pub fn render(metrics: &Metrics) -> String {
    let s = &metrics.stats;
    let mut registry = Registry::with_prefix("zgossip");
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(name, help, g);
    };
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        registry.register(name, help, c);
    };
    gauge(
        &mut registry,
        "tuples",
        "Tuples the node knows (STATUS)",
        s.tuples,
    );
    gauge(
        &mut registry,
        "deliveries_waiting",
        "Deliveries waiting for the application",
        metrics.deliveries_waiting,
    );
    let sessions = Family::<Vec<(String, String)>, Gauge<i64>>::default();
    for (state, count) in &metrics.sessions_by_state {
        sessions
            .get_or_create(&vec![("state".to_owned(), (*state).to_owned())])
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    registry.register(
        "sessions",
        "Server sessions by state (\"replaying\": HELLO replays in progress)",
        sessions,
    );
    let remotes = Family::<Vec<(String, String)>, Gauge<i64>>::default();
    for (state, count) in [
        ("synced", metrics.remotes_synced),
        ("synchronising", metrics.remotes_synchronising),
    ] {
        remotes
            .get_or_create(&vec![("state".to_owned(), state.to_owned())])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
    registry.register("remotes", "Remotes by state", remotes);
    for (name, help, by_type) in [
        (
            "messages_received",
            "Messages received, by type",
            &s.received_by_type,
        ),
        ("messages_sent", "Messages sent, by type", &s.sent_by_type),
    ] {
        let family = Family::<Vec<(String, String)>, Counter<u64>>::default();
        for (kind, count) in MESSAGE_TYPES.iter().zip(by_type.iter()) {
            family
                .get_or_create(&vec![("type".to_owned(), (*kind).to_owned())])
                .inc_by(*count);
        }
        registry.register(name, help, family);
    }
    for (name, help, value) in [
        (
            "received_bytes",
            "Bytes of the messages received",
            s.bytes_received,
        ),
        ("sent_bytes", "Bytes of the messages sent", s.bytes_sent),
        (
            "malformed_frames",
            "Frames that did not decode, dropped",
            s.malformed,
        ),
        (
            "duplicates",
            "ANNOUNCEs of tuples already known",
            s.duplicates,
        ),
        (
            "resyncs",
            "Remote re-synchronisations after the first",
            s.resyncs,
        ),
        (
            "refused_tuples",
            "Tuples refused at a limit (limits/tuples, limits/service)",
            s.refused_tuples,
        ),
        (
            "refused_sends",
            "Messages a full peer queue refused (sent again later)",
            s.refused_sends,
        ),
        (
            "peers_gone",
            "Sessions ended because the peer went away",
            s.peers_gone,
        ),
        (
            "deliveries_dropped",
            "Deliveries dropped because the application's queue was full",
            s.deliveries_dropped,
        ),
        (
            "reactor_rounds",
            "Rounds of the reactor thread's loop",
            metrics.reactor.rounds,
        ),
    ] {
        counter(&mut registry, name, help, value);
    }
    let busy = Counter::<f64, std::sync::atomic::AtomicU64>::default();
    busy.inc_by(metrics.reactor.busy.as_secs_f64());
    registry.register(
        "reactor_busy_seconds",
        "Time the reactor thread spent in its rounds",
        busy,
    );
    let longest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    longest.set(metrics.reactor.longest.as_secs_f64());
    registry.register(
        "reactor_longest_round_seconds",
        "The longest round of the reactor thread",
        longest,
    );
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry) {
        tracing::warn!("cannot encode metrics: {e}");
    }
    text
}

/// Serves `probe`'s metrics at `http://ADDRESS/metrics` with the default
/// [`Limits`] of [`zproto_metrics_http`] until the server is dropped.
pub fn serve(address: &str, probe: Probe) -> Result<MetricsServer, zproto_metrics_http::Error> {
    MetricsServer::start(address, Limits::default(), move || {
        probe
            .metrics()
            .map(|metrics| render(&metrics))
            .map_err(|e| e.to_string())
    })
}
