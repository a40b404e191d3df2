//! Messages to one destination leave in the order the service hands them
//! over, even when its queue is full. A service sends a numbered stream to
//! a slow reader through a tiny high-water mark and sends again whatever
//! the reactor hands back. libzmq frees room in the queue while the reader
//! reads, so without care a later message could be accepted right after an
//! earlier one was refused, and the reader would see the stream reordered
//! (for zgossip: an older value of a tuple overwriting a newer one).

use std::collections::VecDeque;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use zproto_runtime::reactor::{
    self, Outgoing, Reactor, Refused, RefusedReason, Service, SocketOptions, Sockets,
};
use zproto_runtime::Packet;

const MESSAGES: u64 = 100_000;
/// Messages handed over per flush: many flushes, each running into a full
/// queue.
const PER_FLUSH: usize = 500;

struct Numbered {
    /// Numbers to send, oldest first (refused ones go back to the front).
    pending: VecDeque<u64>,
    next: u64,
    connected: bool,
    refused: Sender<u64>,
}

impl Service for Numbered {
    type Command = String;

    fn command(&mut self, endpoint: String, sockets: &mut Sockets, _now: Instant) {
        sockets.set_options(SocketOptions {
            send_hwm: 4,
            receive_hwm: 4,
            ..SocketOptions::default()
        });
        sockets.connect(&endpoint).expect("connect");
        self.connected = true;
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
        let busy = self.connected && (!self.pending.is_empty() || self.next < MESSAGES);
        busy.then(|| Instant::now() + Duration::from_micros(200))
    }

    fn drain_outgoing(&mut self, send: &mut dyn FnMut(Outgoing) -> Result<(), Refused>) {
        if !self.connected {
            return;
        }
        while self.pending.len() < PER_FLUSH && self.next < MESSAGES {
            self.pending.push_back(self.next);
            self.next += 1;
        }
        let mut again = Vec::new();
        for n in self.pending.drain(..) {
            let outgoing = Outgoing::ToRemote {
                remote: 0,
                frames: Packet::from_frames(&[n.to_be_bytes()]),
            };
            match send(outgoing) {
                Ok(()) => {}
                Err(Refused {
                    reason: RefusedReason::Full,
                    ..
                }) => {
                    let _ = self.refused.send(n);
                    again.push(n);
                }
                Err(other) => panic!("unexpected refusal: {:?}", other.reason),
            }
        }
        self.pending.extend(again);
    }
}

#[test]
fn a_full_queue_never_reorders_a_destination_s_messages() {
    let reader = reactor::socket(zmq::ROUTER).expect("router");
    reader.set_linger(0).expect("linger");
    reader.set_rcvhwm(4).expect("hwm");
    reader.set_rcvtimeo(5000).expect("timeout");
    reader.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = reader
        .get_last_endpoint()
        .expect("endpoint")
        .expect("utf-8");

    let (refused, refusals) = mpsc::channel();
    let reactor = Reactor::start().expect("reactor");
    let id = reactor
        .add(Numbered {
            pending: VecDeque::new(),
            next: 0,
            connected: false,
            refused,
        })
        .expect("add");
    reactor.command(id, endpoint).expect("connect");

    for expected in 0..MESSAGES {
        let frames = reader
            .recv_multipart(0)
            .unwrap_or_else(|e| panic!("message {expected} never came: {e}"));
        let body: [u8; 8] = frames[1].as_slice().try_into().expect("8 bytes");
        assert_eq!(u64::from_be_bytes(body), expected, "out of order");
    }
    // The queue did fill up: the test exercised refusals.
    assert!(
        refusals.try_iter().count() > 0,
        "no message was ever refused"
    );
}
