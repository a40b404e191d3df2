//! zgossip's `AsyncNode` from async code, on tokio and on smol: commands
//! awaited (BIND, PORT, CONNECT, SET, STATUS), deliveries and removals as
//! a stream, and peer events as another.

use std::time::Duration;

use futures_util::StreamExt;
use zgossip::{AsyncNode, Delivery};

const WAIT: Duration = Duration::from_secs(10);

/// Two nodes: what one announces and unpublishes, the other hears, in
/// order, as a stream.
async fn announce_and_unpublish_reach_the_other_node() {
    let a = AsyncNode::new("a").expect("node a");
    let b = AsyncNode::new("b").expect("node b");
    // A SET is awaited, and refused settings are errors.
    a.set("server/timeout", "5000").await.expect("set");
    assert!(a.set("server/no-such-thing", "1").await.is_err());
    a.bind("tcp://127.0.0.1:*").await.expect("bind");
    let port = a.port().await.expect("port");
    assert!(port > 0);
    b.connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let mut peers = a.peer_events();
    a.announce("tcp://10.0.0.1:5555", "printer")
        .expect("announce");
    let mut heard = b.deliveries();
    assert_eq!(
        heard.next().await,
        Some(Delivery {
            endpoint: "tcp://10.0.0.1:5555".into(),
            service: "printer".into(),
            removed: false
        })
    );
    assert_eq!(b.status().await, Ok(1));
    a.unpublish("tcp://10.0.0.1:5555").await.expect("unpublish");
    assert_eq!(
        heard.next().await,
        Some(Delivery {
            endpoint: "tcp://10.0.0.1:5555".into(),
            service: "printer".into(),
            removed: true
        })
    );
    // b's session with a began: a's peer events say so.
    let peer = peers.next().await.expect("a peer event");
    assert!(peer.up, "{peer:?}");
    assert_eq!(a.stats().await.map(|s| s.sessions), Ok(1));
}

#[test]
fn on_tokio() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            tokio::time::timeout(WAIT, announce_and_unpublish_reach_the_other_node())
                .await
                .expect("in time");
        });
}

#[test]
fn on_smol() {
    smol::block_on(async {
        let within = async {
            announce_and_unpublish_reach_the_other_node().await;
            true
        };
        let late = async {
            smol::Timer::after(WAIT).await;
            false
        };
        assert!(smol::future::or(within, late).await, "in time");
    });
}
