//! The reactor must not lose a socket's input when its own send eats the
//! descriptor's signal: libzmq processes a socket's pending commands when
//! it sends (at most every millisecond or so), and the command that says
//! "input arrived" is then consumed without the descriptor ever waking the
//! loop. The reactor looks again at every socket it sent on since a read
//! last found it empty; this test arranges exactly that interleaving.

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use zproto_runtime::reactor::{self, Outgoing, Reactor, Service, Sockets};

/// More than libzmq's throttle between two command checks on send
/// (`max_command_delay`, about a millisecond of TSC ticks).
const PAST_SEND_THROTTLE: Duration = Duration::from_millis(10);

enum Command {
    Connect(String),
    Send(&'static [u8]),
    /// Say so once running (the reactor thread is then busy here), wait
    /// until told, then send: the peer's message is queued by then.
    SendWhenTold {
        entered: Sender<()>,
        told: Receiver<()>,
        body: &'static [u8],
    },
}

struct Probe {
    received: Sender<Vec<u8>>,
    outgoing: Vec<Outgoing>,
}

impl Service for Probe {
    type Command = Command;

    fn command(&mut self, command: Command, sockets: &mut Sockets, _now: Instant) {
        let body = match command {
            Command::Connect(endpoint) => {
                sockets.connect(&endpoint).expect("connect");
                return;
            }
            Command::Send(body) => body,
            Command::SendWhenTold {
                entered,
                told,
                body,
            } => {
                entered.send(()).expect("entered");
                told.recv_timeout(Duration::from_secs(5)).expect("told");
                // Not synchronisation (the channel is): makes this send one
                // that libzmq lets process the socket's pending commands.
                std::thread::sleep(PAST_SEND_THROTTLE);
                body
            }
        };
        self.outgoing.push(Outgoing::ToRemote {
            remote: 0,
            frames: vec![body.to_vec()],
        });
    }

    fn on_peer(&mut self, _frames: &[&[u8]], _now: Instant) {}

    fn on_remote(&mut self, _remote: usize, frames: &[&[u8]], _now: Instant) {
        if let Some(body) = frames.first() {
            let _ = self.received.send(body.to_vec());
        }
    }

    fn on_remote_reconnected(&mut self, _remote: usize, _now: Instant) {}

    fn tick(&mut self, _now: Instant) {}

    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    fn drain_outgoing(&mut self, send: &mut dyn FnMut(Outgoing)) {
        for outgoing in self.outgoing.drain(..) {
            send(outgoing);
        }
    }
}

#[test]
fn input_whose_signal_a_send_consumed_is_still_read() {
    let endpoint = format!("inproc://reactor-signals-{}", std::process::id());
    let peer = reactor::socket(zmq::ROUTER).expect("router");
    peer.set_linger(0).expect("linger");
    peer.set_rcvtimeo(5000).expect("timeout");
    peer.bind(&endpoint).expect("bind");

    let (received, deliveries) = mpsc::channel();
    let reactor = Reactor::start().expect("reactor");
    let id = reactor
        .add(Probe {
            received,
            outgoing: Vec::new(),
        })
        .expect("add");
    reactor
        .command(id, Command::Connect(endpoint))
        .expect("connect");
    reactor.command(id, Command::Send(b"hello")).expect("send");
    let hello = peer.recv_multipart(0).expect("hello");
    assert_eq!(hello[1], b"hello");
    let routing_id = hello[0].clone();
    // Once this is delivered, the reactor has read the socket until empty
    // (in the same call), so libzmq signals the next message.
    peer.send_multipart([routing_id.clone(), b"first".to_vec()], 0)
        .expect("first");
    let first = deliveries
        .recv_timeout(Duration::from_secs(3))
        .expect("first delivered");
    assert_eq!(first, b"first");

    // The reactor thread waits inside a command; the peer's message arrives
    // meanwhile, and then the service sends on the same socket.
    let (entered, entering) = mpsc::channel();
    let (tell, told) = mpsc::channel();
    reactor
        .command(
            id,
            Command::SendWhenTold {
                entered,
                told,
                body: b"ping",
            },
        )
        .expect("send when told");
    entering
        .recv_timeout(Duration::from_secs(3))
        .expect("command running");
    peer.send_multipart([routing_id, b"news".to_vec()], 0)
        .expect("news");
    tell.send(()).expect("tell");
    assert_eq!(peer.recv_multipart(0).expect("ping")[1], b"ping");

    // Nothing else will ever signal that socket: the reactor must have
    // looked at it after its send.
    let news = deliveries
        .recv_timeout(Duration::from_secs(3))
        .expect("the message that arrived during the send is delivered");
    assert_eq!(news, b"news");
}
