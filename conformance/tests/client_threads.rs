//! Generated clients share a reactor thread: fifty echo clients on one
//! reactor, each with its DEALER, start no thread each. (A test binary of
//! its own, so that no other test's threads come and go meanwhile.)

use std::time::Duration;

use zproto_conformance::echo::{EchoClient, EchoServer};
use zproto_conformance::echo_client_engine::Client;
use zproto_conformance::echo_server_engine::Machine;
use zproto_runtime::host::ServerHandle;
use zproto_runtime::reactor::Reactor;

const WAIT: Duration = Duration::from_secs(10);

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn many_clients_share_one_reactor_thread() {
    let server =
        ServerHandle::<Machine<EchoServer>>::start("echo_server", EchoServer).expect("server");
    let port = server.bind("tcp://127.0.0.1:*").expect("bind");
    let address = format!("tcp://127.0.0.1:{port}");
    let reactor = Reactor::start().expect("reactor");
    let before = threads();
    let mut clients: Vec<Client<EchoClient>> = (0..50)
        .map(|_| Client::on(&reactor, EchoClient::default()).expect("client"))
        .collect();
    for (n, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.connect(&address, 2000, WAIT), Ok(0), "client {n}");
        let body = format!("client {n}");
        assert_eq!(client.echo(&body, WAIT).as_deref(), Ok(body.as_str()));
    }
    let grown = threads().saturating_sub(before);
    assert!(grown == 0, "50 clients started {grown} threads");
}
