//! `zgossip node --metrics ADDR`: a real HTTP client scrapes the endpoint
//! while a small cluster runs, and the numbers move as they should.

use zgossip_testkit as support;

use support::Running;

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");

fn scrape(url: &str) -> String {
    ureq::get(url)
        .call()
        .expect("the metrics endpoint answers")
        .into_string()
        .expect("text")
}

/// The value of the sample `name` (with its labels, as written).
fn value(text: &str, name: &str) -> f64 {
    zproto_metrics_http::sample(text, name).unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

#[test]
fn a_scrape_shows_tuples_sessions_and_messages_moving() {
    let path = std::env::temp_dir().join(format!("zgossip-metrics-{}.ipc", std::process::id()));
    let endpoint = format!("ipc://{}", path.display());
    let mut a = Running::start(
        BIN,
        &["node", "--metrics", "127.0.0.1:0", "--bind", &endpoint],
    );
    let line = a.expect_line("METRICS", |l| l.starts_with("METRICS "));
    let url = line.trim_start_matches("METRICS ").to_owned();
    a.expect(&format!("BOUND {endpoint} PORT 0"));
    let before = scrape(&url);
    assert_eq!(value(&before, "zgossip_tuples"), 0.0);
    assert!(
        before.contains("# TYPE zgossip_messages_received counter"),
        "{before}"
    );
    assert!(before.ends_with("# EOF\n"), "OpenMetrics ends with EOF");

    // A second node connects and announces two tuples.
    let mut b = Running::start(
        BIN,
        &[
            "node",
            "--connect",
            &endpoint,
            "--announce",
            "tcp://b:1=one",
        ],
    );
    a.expect("DELIVER tcp://b:1 one");
    b.send("ANNOUNCE tcp://b:2 two");
    a.expect("DELIVER tcp://b:2 two");
    // The endpoint answers with the same text for `reuse_for` (20 ms), so
    // a scrape that soon after the first may still show it: scrape until
    // the tuples show, within a bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let after = loop {
        let text = scrape(&url);
        if value(&text, "zgossip_tuples") != 0.0 || std::time::Instant::now() > deadline {
            break text;
        }
    };
    assert_eq!(value(&after, "zgossip_tuples"), 2.0);
    assert!(value(&after, "zgossip_messages_received_total{type=\"HELLO\"}") >= 1.0);
    // Between our nodes tuples go in batches: the first in the
    // synchronisation's, the second pushed in one of its own.
    assert!(
        value(
            &after,
            "zgossip_messages_received_total{type=\"ANNOUNCES\"}"
        ) >= 2.0
    );
    assert!(
        value(&after, "zgossip_received_bytes_total")
            > value(&before, "zgossip_received_bytes_total")
    );
    assert_eq!(value(&after, "zgossip_sessions{state=\"connected\"}"), 1.0);
    assert!(
        value(&after, "zgossip_reactor_rounds_total")
            > value(&before, "zgossip_reactor_rounds_total")
    );
    assert_eq!(value(&after, "zgossip_malformed_frames_total"), 0.0);

    // Other paths and methods get HTTP errors, not metrics.
    let missing = ureq::get(&url.replace("/metrics", "/other")).call();
    assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
    a.send("$TERM");
    a.expect_exit();
    b.send("$TERM");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_metrics_address_that_cannot_be_had_is_a_clear_error() {
    let out = std::process::Command::new(BIN)
        .args([
            "node",
            "--no-stdin",
            "--for",
            "1",
            "--metrics",
            "not-an-address",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot serve metrics"));
}
