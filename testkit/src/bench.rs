//! The raw DEALER driver the benchmarks share: each side is driven the
//! same way, so that the driver's own cost is the same for every side.

use std::time::Instant;

use zproto_runtime::reactor;

/// zgossip's PING.
pub const PING: [u8; 4] = [0xaa, 0xa0, 0x03, 0x01];

pub fn dealer(endpoint: &str) -> zmq::Socket {
    let d = reactor::socket(zmq::DEALER).expect("dealer");
    d.set_linger(0).expect("linger");
    d.set_sndhwm(0).expect("hwm");
    d.set_rcvhwm(0).expect("hwm");
    d.connect(endpoint).expect("connect");
    d
}

/// Receive one message into a buffer on the stack, as the C driver does:
/// the driver's own cost is the same for every side.
pub fn recv(d: &zmq::Socket) {
    let mut buffer = [0u8; 512];
    let size = d.recv_into(&mut buffer, 0).expect("receive");
    assert!(size >= 4, "a message of {size} bytes");
}

/// Round trips: `window` PINGs in flight; nanoseconds for `count`.
pub fn pingpong(endpoint: &str, count: usize, window: usize) -> u128 {
    let d = dealer(endpoint);
    d.send(&PING[..], 0).expect("send");
    recv(&d);
    let start = Instant::now();
    let mut sent = 0;
    while sent < window.min(count) {
        d.send(&PING[..], 0).expect("send");
        sent += 1;
    }
    for _ in 0..count {
        recv(&d);
        if sent < count {
            d.send(&PING[..], 0).expect("send");
            sent += 1;
        }
    }
    start.elapsed().as_nanos()
}
