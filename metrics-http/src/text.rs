//! Building the OpenMetrics text a [`crate::MetricsServer`] serves, with
//! `prometheus-client` (the OpenMetrics project's Rust client) doing the
//! encoding: what every service's renderer would otherwise write again.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// One scrape's worth of samples, all under one prefix.
pub struct OpenMetrics {
    registry: Registry,
}

impl std::fmt::Debug for OpenMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenMetrics")
    }
}

/// A count as a gauge's value (which is signed), saturating.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl OpenMetrics {
    /// Samples named `prefix_...`.
    pub fn new(prefix: &str) -> Self {
        Self {
            registry: Registry::with_prefix(prefix),
        }
    }

    /// A gauge: a value that goes up and down.
    pub fn gauge(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        let gauge = Gauge::<i64>::default();
        gauge.set(signed(value));
        self.registry.register(name, help, gauge);
        self
    }

    /// A gauge in seconds (or any other fractional unit).
    pub fn gauge_f64(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        let gauge = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        gauge.set(value);
        self.registry.register(name, help, gauge);
        self
    }

    /// A counter: a total that only grows (`_total` is appended).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        self.registry.register(name, help, counter);
        self
    }

    /// A counter of seconds (or any other fractional unit).
    pub fn counter_f64(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        let counter = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        counter.inc_by(value);
        self.registry.register(name, help, counter);
        self
    }

    /// One gauge per value of `label`.
    pub fn gauges<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> &mut Self {
        let family = Family::<Vec<(String, String)>, Gauge<i64>>::default();
        for (key, value) in values {
            family
                .get_or_create(&vec![(label.to_owned(), key.to_owned())])
                .set(signed(value));
        }
        self.registry.register(name, help, family);
        self
    }

    /// One counter per value of `label`.
    pub fn counters<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> &mut Self {
        let family = Family::<Vec<(String, String)>, Counter<u64>>::default();
        for (key, value) in values {
            family
                .get_or_create(&vec![(label.to_owned(), key.to_owned())])
                .inc_by(value);
        }
        self.registry.register(name, help, family);
        self
    }

    /// The text, ending with `# EOF`.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            tracing::warn!("cannot encode metrics: {e}");
        }
        text
    }
}

/// The value of the sample `name` (its labels included, as written:
/// `x_total{reason="a"}`) in an OpenMetrics `text`, if it is there: for
/// tests and scripts that read a scrape.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|value| value.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_encoded_and_read_back() {
        let mut metrics = OpenMetrics::new("svc");
        metrics
            .gauge("items", "Items", 3)
            .counter("seen", "Seen", 7)
            .counters("refusals", "Refusals", "reason", [("full", 2), ("bad", 1)])
            .gauge_f64("longest_seconds", "Longest", 0.5);
        let text = metrics.text();
        assert_eq!(sample(&text, "svc_items"), Some(3.0));
        assert_eq!(sample(&text, "svc_seen_total"), Some(7.0));
        assert_eq!(
            sample(&text, "svc_refusals_total{reason=\"full\"}"),
            Some(2.0)
        );
        assert_eq!(sample(&text, "svc_longest_seconds"), Some(0.5));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(sample(&text, "svc_missing"), None);
    }
}
