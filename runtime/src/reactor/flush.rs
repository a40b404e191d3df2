//! Frames in and out: receiving into reusable messages, sending a
//! service's packets, and what a refused send means.

use super::*;

/// `zmq_send(3)`: one frame, copied into a new libzmq message.
pub(super) fn send_copy(
    socket: &mut zmq::Socket,
    frame: &[u8],
    flags: i32,
) -> Result<(), zmq::Error> {
    // SAFETY: `socket` is an open socket used only by this thread, and the
    // buffer is valid for `frame.len()` bytes for the duration of the call.
    let rc = unsafe {
        zmq_sys::zmq_send(
            socket.as_mut_ptr(),
            frame.as_ptr().cast(),
            frame.len(),
            flags,
        )
    };
    if rc < 0 {
        // SAFETY: reads this thread's libzmq error number.
        Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
    } else {
        Ok(())
    }
}

/// Receive one multipart message into `parts`, reusing their buffers.
pub(super) fn receive(
    socket: &zmq::Socket,
    parts: &mut Vec<zmq::Message>,
) -> Result<(), zmq::Error> {
    let mut count = 0;
    loop {
        if parts.len() == count {
            parts.push(zmq::Message::new());
        }
        // After the first part the rest of the message is already here.
        let flags = if count == 0 { zmq::DONTWAIT } else { 0 };
        socket.recv(&mut parts[count], flags)?;
        count += 1;
        if !parts[count - 1].get_more() {
            break;
        }
    }
    parts.truncate(count);
    Ok(())
}

/// Call `f` with the bytes of `parts`, without allocating for the usual
/// few frames.
pub(super) fn with_slices<R>(parts: &[zmq::Message], f: impl FnOnce(&[&[u8]]) -> R) -> R {
    const INLINE: usize = 4;
    if parts.len() <= INLINE {
        let mut slices: [&[u8]; INLINE] = [&[]; INLINE];
        for (slice, part) in slices.iter_mut().zip(parts) {
            *slice = part;
        }
        f(&slices[..parts.len()])
    } else {
        f(&parts.iter().map(|m| &m[..]).collect::<Vec<&[u8]>>())
    }
}

/// Where an outgoing message goes: a remote's DEALER or a ROUTER peer.
#[derive(Debug)]
pub(super) enum Destination {
    Remote(usize),
    Peer(Vec<u8>),
}

impl Destination {
    fn of(outgoing: &Outgoing) -> Option<Self> {
        match outgoing {
            Outgoing::ToRemote { remote, .. } => Some(Self::Remote(*remote)),
            Outgoing::ToPeer(frames) => frames.first().map(|id| Self::Peer(id.to_vec())),
        }
    }

    fn is(&self, outgoing: &Outgoing) -> bool {
        match (self, outgoing) {
            (Self::Remote(a), Outgoing::ToRemote { remote, .. }) => a == remote,
            (Self::Peer(a), Outgoing::ToPeer(frames)) => frames.first() == Some(a.as_slice()),
            _ => false,
        }
    }
}

/// Send what the service has to send; returns how many messages.
///
/// Once a destination's queue refuses a message, every later message to it
/// in the same flush is refused too, without trying: libzmq may free room
/// in between, and a later message must never overtake one the service
/// will send again (a newer value would then be overwritten by an older).
pub(super) fn flush<S: Service>(h: &mut Hosted<S>) -> usize {
    let sockets = &mut h.sockets;
    let mut sent = 0;
    let mut full: Vec<Destination> = Vec::new();
    h.service.drain_outgoing(&mut |outgoing| {
        sent += 1;
        if !full.is_empty() && full.iter().any(|to| to.is(&outgoing)) {
            return Err(Refused {
                reason: RefusedReason::Full,
                outgoing,
            });
        }
        let result = sockets.send(outgoing);
        if let Err(Refused {
            reason: RefusedReason::Full,
            outgoing,
        }) = &result
        {
            full.extend(Destination::of(outgoing));
        }
        if let Err(Refused {
            reason: RefusedReason::Unreachable,
            outgoing: Outgoing::ToPeer(frames),
        }) = &result
        {
            // Gone: an inproc peer's entry goes here (tcp and ipc peers'
            // go with their connection).
            if let Some(routing_id) = frames.first() {
                if sockets.peer_fds.get(routing_id) == Some(&-1) {
                    sockets.peer_fds.remove(routing_id);
                }
            }
        }
        result
    });
    sent
}
