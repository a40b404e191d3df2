//! The reactor must not lose a socket's input when its own use of the
//! socket eats the descriptor's signal: libzmq processes a socket's pending
//! commands on bind (always) and on send (at most every millisecond or so),
//! and the command that says "input arrived" is then consumed without the
//! descriptor ever waking the loop. The reactor looks again at every socket
//! it used since a read last found it empty; this test arranges exactly that
//! interleaving, with a bind, which needs no timing.

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use zproto_runtime::reactor::{self, Outgoing, Reactor, Refused, Service, Sockets};

enum Command {
    Bind(String),
    /// Say so once running (the reactor thread is then busy here), wait
    /// until told, then bind: the peer's message is queued by then.
    BindWhenTold {
        entered: Sender<()>,
        told: Receiver<()>,
        endpoint: String,
    },
}

struct Probe {
    received: Sender<Vec<u8>>,
}

impl Service for Probe {
    type Command = Command;

    fn command(&mut self, command: Command, sockets: &mut Sockets, _now: Instant) {
        let endpoint = match command {
            Command::Bind(endpoint) => endpoint,
            Command::BindWhenTold {
                entered,
                told,
                endpoint,
            } => {
                entered.send(()).expect("entered");
                told.recv_timeout(Duration::from_secs(5)).expect("told");
                endpoint
            }
        };
        sockets.bind(&endpoint).expect("bind");
    }

    fn on_peer(&mut self, frames: &[&[u8]], _now: Instant) {
        // Routing id first.
        if let Some(body) = frames.get(1) {
            let _ = self.received.send(body.to_vec());
        }
    }

    fn on_remote(
        &mut self,
        _remote: usize,
        _frames: &[&[u8]],
        _sockets: &mut Sockets,
        _now: Instant,
    ) {
    }

    fn tick(&mut self, _sockets: &mut Sockets, _now: Instant) {}

    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    fn drain_outgoing(&mut self, _send: &mut dyn FnMut(Outgoing) -> Result<(), Refused>) {}
}

#[test]
fn input_whose_signal_a_bind_consumed_is_still_read() {
    let endpoint = |n: u32| format!("inproc://reactor-signals-{}-{n}", std::process::id());
    let (received, deliveries) = mpsc::channel();
    let reactor = Reactor::start().expect("reactor");
    let id = reactor.add(Probe { received }).expect("add");
    reactor
        .command(id, Command::Bind(endpoint(1)))
        .expect("bind");

    let peer = reactor::socket(zmq::DEALER).expect("dealer");
    peer.set_linger(0).expect("linger");
    peer.connect(&endpoint(1)).expect("connect");
    // Once this is delivered, the reactor has read the socket until empty
    // (in the same call), so libzmq signals the next message.
    peer.send(&b"first"[..], 0).expect("first");
    let first = deliveries
        .recv_timeout(Duration::from_secs(3))
        .expect("first delivered");
    assert_eq!(first, b"first");

    // The reactor thread waits inside a command; the peer's message arrives
    // meanwhile, and then the service binds the same socket again.
    let (entered, entering) = mpsc::channel();
    let (tell, told) = mpsc::channel();
    reactor
        .command(
            id,
            Command::BindWhenTold {
                entered,
                told,
                endpoint: endpoint(2),
            },
        )
        .expect("bind when told");
    entering
        .recv_timeout(Duration::from_secs(3))
        .expect("command running");
    peer.send(&b"news"[..], 0).expect("news");
    tell.send(()).expect("tell");

    // Nothing else will ever signal that socket: the reactor must have
    // looked at it after the bind.
    let news = deliveries
        .recv_timeout(Duration::from_secs(3))
        .expect("the message that arrived during the bind is delivered");
    assert_eq!(news, b"news");
}
