//! Each bound of the metrics server, shown against a client that tries to
//! get past it, with a well-behaved scrape answered beside it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zproto_metrics_http::{Limits, MetricsServer};

fn server(limits: Limits) -> MetricsServer {
    MetricsServer::start("127.0.0.1:0", limits, || {
        Ok("# a metric\nm 1\n# EOF\n".into())
    })
    .expect("the server starts")
}

/// One scrape on a new connection: its status and body.
fn scrape(address: SocketAddr, path: &str) -> (u16, String) {
    match ureq::get(&format!("http://{address}{path}"))
        .timeout(Duration::from_secs(5))
        .call()
    {
        Ok(response) => (200, response.into_string().expect("text")),
        Err(ureq::Error::Status(code, response)) => {
            (code, response.into_string().unwrap_or_default())
        }
        Err(e) => panic!("scrape failed: {e}"),
    }
}

/// Waits (bounded) until the server has closed `stream`: a read sees EOF
/// or a reset. Bytes the server sent first (an error response) are
/// returned.
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!(
                "the server kept the connection for {:?}: {e}",
                start.elapsed()
            ),
        }
        assert!(start.elapsed() < within, "the server kept the connection");
    }
}

#[test]
fn a_scrape_gets_the_text_and_other_requests_get_http_errors() {
    let server = server(Limits::default());
    let (status, text) = scrape(server.address(), "/metrics");
    assert_eq!((status, text.as_str()), (200, "# a metric\nm 1\n# EOF\n"));
    assert_eq!(scrape(server.address(), "/other").0, 404);
    let post = ureq::post(&format!("http://{}/metrics", server.address())).send_string("x");
    assert!(matches!(post, Err(ureq::Error::Status(405, _))));
}

#[test]
fn a_failed_render_is_a_503_with_the_reason() {
    let server = MetricsServer::start("127.0.0.1:0", Limits::default(), || {
        Err("the node has stopped".into())
    })
    .expect("starts");
    let (status, text) = scrape(server.address(), "/metrics");
    assert_eq!(status, 503);
    assert!(text.contains("the node has stopped"), "{text}");
}

#[test]
fn an_endless_request_line_is_cut_at_the_head_bound() {
    let server = server(Limits::default());
    let mut attacker = TcpStream::connect(server.address()).expect("connects");
    attacker
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    let mut refused = false;
    // Without a bound this would go on for 64 MiB.
    for _ in 0..1024 {
        match attacker.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "the server took {sent} bytes of one request line");
    assert!(sent < 8 * 1024 * 1024, "{sent} bytes before the cut");
    assert_eq!(scrape(server.address(), "/metrics").0, 200);
    assert!(server.stats().cut >= 1);
}

#[test]
fn too_many_headers_get_431_and_the_connection_closed() {
    let server = server(Limits::default());
    let mut attacker = TcpStream::connect(server.address()).expect("connects");
    let mut head = String::from("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        head.push_str(&format!("X-{i}: y\r\n"));
    }
    head.push_str("\r\n");
    attacker.write_all(head.as_bytes()).expect("sends");
    let answer = closed_by_server(&mut attacker, Duration::from_secs(5));
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn a_head_sent_too_slowly_is_cut_at_the_head_timeout() {
    let limits = Limits {
        head_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = server(limits);
    let mut attacker = TcpStream::connect(server.address()).expect("connects");
    let start = Instant::now();
    attacker
        .write_all(b"GET /metrics HTTP/1.1\r\n")
        .expect("sends");
    let mut cut = false;
    // One byte every 50 ms: progress, but never a whole head.
    while start.elapsed() < Duration::from_secs(5) {
        if attacker.write_all(b"X").is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cut, "a slow head kept its connection for 5 s");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = server(limits);
    let mut idle = TcpStream::connect(server.address()).expect("connects");
    let start = Instant::now();
    closed_by_server(&mut idle, Duration::from_secs(5));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn connections_beyond_the_bound_push_out_idle_ones_and_a_scraper_always_gets_in() {
    let limits = Limits {
        max_connections: 16,
        ..Limits::default()
    };
    let server = server(limits);
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(server.address()).expect("connects"))
        .collect();
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(scrape(server.address(), "/metrics").0, 200);
        assert!(start.elapsed() < Duration::from_millis(500));
    }
    let stats = server.stats();
    assert!(stats.open <= 16, "{stats:?}");
    assert!(stats.evicted >= 200 - 16, "{stats:?}");
    drop(idle);
}

#[test]
fn a_client_that_never_reads_its_responses_is_cut_at_the_write_timeout() {
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        // Render each time: the responses must be big enough to fill the
        // socket buffers.
        reuse_for: Duration::ZERO,
        ..Limits::default()
    };
    let big = "m 1\n".repeat(16 * 1024);
    let server =
        MetricsServer::start("127.0.0.1:0", limits, move || Ok(big.clone())).expect("starts");
    let mut attacker = TcpStream::connect(server.address()).expect("connects");
    attacker
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100);
    let start = Instant::now();
    let mut cut = false;
    while start.elapsed() < Duration::from_secs(10) {
        if attacker.write_all(&request).is_err() {
            cut = true;
            break;
        }
        assert_eq!(scrape(server.address(), "/metrics").0, 200);
    }
    assert!(cut, "a client that never reads kept its connection");
    // The server counts the cut after hyper has closed the socket, so the
    // client may see the reset first: wait for the count, boundedly.
    let counted = Instant::now() + Duration::from_secs(5);
    while server.stats().cut == 0 && Instant::now() < counted {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(server.stats().cut >= 1, "{:?}", server.stats());
}

#[test]
fn a_crowd_of_scrapes_costs_one_render_per_reuse_period() {
    let renders = Arc::new(AtomicU64::new(0));
    let counted = renders.clone();
    let limits = Limits {
        reuse_for: Duration::from_secs(60),
        ..Limits::default()
    };
    let server = MetricsServer::start("127.0.0.1:0", limits, move || {
        counted.fetch_add(1, Ordering::Relaxed);
        Ok("m 1\n".into())
    })
    .expect("starts");
    for _ in 0..50 {
        assert_eq!(scrape(server.address(), "/metrics").0, 200);
    }
    assert_eq!(renders.load(Ordering::Relaxed), 1);
    assert_eq!(server.stats().responses, 50);
}

#[test]
fn dropping_the_server_closes_its_port_and_connections() {
    let server = server(Limits::default());
    let address = server.address();
    let mut open = TcpStream::connect(address).expect("connects");
    drop(server);
    closed_by_server(&mut open, Duration::from_secs(5));
    assert!(TcpStream::connect(address).is_err());
}

#[test]
fn an_address_that_cannot_be_had_is_an_error_naming_it() {
    let e = MetricsServer::start("not-an-address", Limits::default(), || Ok(String::new()))
        .expect_err("refused");
    assert!(e.to_string().contains("not-an-address"), "{e}");
}
