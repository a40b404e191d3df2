//! `malamute --metrics ADDR`: the broker's sessions, streams, mailboxes,
//! services, bytes held and refusals by reason, as OpenMetrics text for
//! Prometheus, served by [`zproto_metrics_http`] with its bounds (the same
//! endpoint as zgossip's); and for its operator, as the C broker's actor
//! answers CLIENTLIST and STREAMLIST, the connected clients' addresses at
//! `/clients` and the streams at `/streams`, one per line (escaped as Rust
//! escapes a string's characters, so that a name cannot forge lines).

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
pub use zproto_metrics_http::{Limits, MetricsServer, Page};
use zproto_runtime::host::{HostStats, ServerHandle};

use crate::broker::{Broker, BrokerMetrics};
use crate::mlm_server_engine::Machine;

/// The running broker, as the metrics server reads it.
pub type Handle = ServerHandle<Machine<Broker>>;

/// The OpenMetrics text of the host's counters and the broker's state.
pub fn render(host: &HostStats, broker: &BrokerMetrics) -> String {
    let mut registry = Registry::with_prefix("malamute");
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
    for (name, help, value) in [
        ("sessions", "Client sessions", host.sessions),
        ("streams", "Streams known", broker.streams),
        ("services", "Services known", broker.services),
        ("mailboxes", "Mailboxes holding mail", broker.mailboxes),
        (
            "mail_waiting",
            "Mail waiting in mailboxes",
            broker.mail_waiting,
        ),
        (
            "requests_waiting",
            "Service requests waiting for a worker",
            broker.requests_waiting,
        ),
        (
            "deliveries_held",
            "Deliveries held for clients out of credit",
            broker.deliveries_held,
        ),
        (
            "held_bytes",
            "Bytes of stored mail and requests (what the storage limit counts)",
            broker.bytes_held,
        ),
        (
            "storage_limit_bytes",
            "mlm_server/storage/size-limit",
            broker.storage_limit,
        ),
    ] {
        gauge(&mut registry, name, help, value);
    }
    for (name, help, value) in [
        ("messages_received", "Messages decoded", host.received),
        ("messages_sent", "Messages sent", host.sent),
        (
            "malformed_frames",
            "Frames that did not decode, dropped",
            host.malformed,
        ),
        (
            "refused_sends",
            "Messages a full client queue refused (dropped)",
            host.refused,
        ),
        (
            "peers_gone",
            "Sessions ended because the client went away",
            host.peers_gone,
        ),
    ] {
        counter(&mut registry, name, help, value);
    }
    let refusals = Family::<Vec<(String, String)>, Counter<u64>>::default();
    for (reason, count) in &broker.refusals {
        refusals
            .get_or_create(&vec![("reason".to_owned(), (*reason).to_owned())])
            .inc_by(*count);
    }
    registry.register(
        "refusals",
        "Commands refused and messages dropped, by reason",
        refusals,
    );
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry) {
        tracing::warn!("cannot encode metrics: {e}");
    }
    text
}

/// Serves the broker's metrics at `http://ADDRESS/metrics` until the
/// server is dropped. Each scrape asks the broker's reactor thread for a
/// snapshot, between messages.
pub fn serve(
    address: &str,
    broker: Arc<Handle>,
) -> Result<MetricsServer, zproto_metrics_http::Error> {
    let list = |broker: &Arc<Handle>, names: fn(&Broker) -> Vec<String>| {
        let broker = broker.clone();
        move || {
            let names = broker
                .with(move |broker: &mut Broker| names(broker))
                .map_err(|e| e.to_string())?;
            Ok(names_text(&names))
        }
    };
    let pages = vec![
        Page::new("/clients", list(&broker, Broker::client_list)),
        Page::new("/streams", list(&broker, Broker::stream_list)),
    ];
    MetricsServer::start_with_pages(
        address,
        Limits::default(),
        move || {
            let host = broker.stats().map_err(|e| e.to_string())?;
            let state = broker
                .with(|broker: &mut Broker| broker.metrics())
                .map_err(|e| e.to_string())?;
            Ok(render(&host, &state))
        },
        pages,
    )
}

/// Names one per line, each escaped (`\n`, `\u{7f}`...).
pub fn names_text(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("{}\n", name.escape_debug()))
        .collect()
}
