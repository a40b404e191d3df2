//! `malamute --metrics ADDR`: a scrape of the real broker process shows its
//! sessions, streams, mailboxes, bytes held and refusals by reason moving
//! as clients use it.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use malamute::client::MlmClient;
use support::{eventually, Scratch, WAIT};

use zproto_metrics_http::sample as value;

fn scrape(url: &str) -> String {
    ureq::get(url)
        .call()
        .expect("the metrics endpoint answers")
        .into_string()
        .expect("text")
}

#[test]
fn a_scrape_shows_sessions_mailboxes_bytes_and_refusals() {
    let scratch = Scratch::new("metrics");
    let endpoint = scratch.ipc("broker");
    let config = scratch.0.join("broker.cfg");
    std::fs::write(
        &config,
        format!(
            "server\n    timeout = 10000\nmlm_server\n    security\n        mechanism = null\n    bind\n        endpoint = {endpoint}\n"
        ),
    )
    .expect("config");
    let mut broker = Command::new(env!("CARGO_BIN_EXE_malamute"))
        .args(["--metrics", "127.0.0.1:0"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the broker starts");
    let mut line = String::new();
    BufReader::new(broker.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let url = line
        .trim()
        .strip_prefix("METRICS ")
        .unwrap_or_else(|| panic!("not the METRICS line: {line}"))
        .to_owned();
    let before = scrape(&url);
    assert_eq!(value(&before, "malamute_sessions"), Some(0.0), "{before}");
    assert!(before.ends_with("# EOF\n"));

    let mut sender = MlmClient::with_defaults().expect("client");
    assert_eq!(sender.connect(&endpoint, 5000, "sender", WAIT), Ok(0));
    sender
        .sendto_text("nobody", "hello", "", 0, &["a letter of some bytes"])
        .expect("sent");
    // An invalid pattern is refused, and counted under its reason.
    let mut reader = MlmClient::with_defaults().expect("client");
    assert_eq!(reader.connect(&endpoint, 5000, "reader", WAIT), Ok(0));
    assert_ne!(reader.set_consumer("weather", "(", WAIT), Ok(0));

    let mut after = String::new();
    assert!(
        eventually(|| {
            after = scrape(&url);
            value(&after, "malamute_mailboxes") == Some(1.0)
                && value(
                    &after,
                    "malamute_refusals_total{reason=\"invalid pattern\"}",
                ) == Some(1.0)
        }),
        "{after}"
    );
    assert_eq!(value(&after, "malamute_sessions"), Some(2.0), "{after}");
    assert_eq!(value(&after, "malamute_mail_waiting"), Some(1.0), "{after}");
    assert!(
        value(&after, "malamute_held_bytes").unwrap_or(0.0) > 20.0,
        "{after}"
    );
    assert!(
        value(&after, "malamute_messages_received_total").unwrap_or(0.0)
            > value(&before, "malamute_messages_received_total").unwrap_or(0.0)
    );
    // The operator's CLIENTLIST and STREAMLIST: a name cannot forge lines.
    let mut writer = MlmClient::with_defaults().expect("client");
    assert_eq!(writer.connect(&endpoint, 5000, "a\nforged", WAIT), Ok(0));
    assert_eq!(writer.set_producer("news", WAIT), Ok(0));
    let base = url.trim_end_matches("/metrics");
    assert_eq!(
        scrape(&format!("{base}/clients")),
        "a\\nforged\nreader\nsender\n"
    );
    assert_eq!(scrape(&format!("{base}/streams")), "news\n");
    let _ = broker.kill();
    let _ = broker.wait();
}
