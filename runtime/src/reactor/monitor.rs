//! Connection monitors: peers admitted and gone on the ROUTER, refused
//! handshakes logged.

use super::*;

/// `zmq_socket_monitor(3)` with a null endpoint: stop monitoring `socket`.
pub(super) fn stop_monitor(socket: &mut zmq::Socket) {
    // SAFETY: `socket` is an open socket owned by the caller; a null
    // endpoint with no events is how zmq_socket_monitor(3) says to stop.
    let rc = unsafe { zmq_sys::zmq_socket_monitor(socket.as_mut_ptr(), std::ptr::null(), 0) };
    if rc != 0 {
        tracing::warn!("could not stop a socket monitor");
    }
}

/// Start monitoring `socket` for `events` on a new inproc PAIR, which is
/// returned. It listens before the caller connects or binds the socket, so
/// that no event is missed.
pub(super) fn monitor(target: &zmq::Socket, events: u16) -> Result<zmq::Socket, zmq::Error> {
    static MONITORS: AtomicU64 = AtomicU64::new(0);
    let address = format!(
        "inproc://zproto-monitor-{}",
        MONITORS.fetch_add(1, Ordering::Relaxed)
    );
    target.monitor(&address, i32::from(events))?;
    let pair = socket(zmq::PAIR)?;
    pair.set_linger(0)?;
    pair.connect(&address)?;
    Ok(pair)
}

/// The monitor events of a handshake that failed: a peer refused (by ZAP,
/// or for speaking another security mechanism), or refusing us.
pub(super) const HANDSHAKE_FAILURES: u16 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL as u16
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as u16
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH as u16;

/// Why a handshake failed, in words, if `event` says it did.
pub(super) fn handshake_failure(event: u16, value: u32) -> Option<String> {
    let event = u32::from(event);
    if event == zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH {
        return Some(format!("authentication refused (ZAP status {value})"));
    }
    if event == zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL {
        // Typically the other side closed the connection mid-handshake:
        // a server that expects a security mechanism we do not use.
        return Some(format!(
            "handshake failed ({}; does the other side require CURVE or PLAIN?)",
            std::io::Error::from_raw_os_error(i32::try_from(value).unwrap_or(0))
        ));
    }
    if event != zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL {
        return None;
    }
    Some(match value {
        zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH => {
            "security mechanism mismatch (one side uses CURVE or PLAIN, the other does not)".into()
        }
        zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
        | zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE => {
            "CURVE handshake failed (a wrong server key, or a forged handshake)".into()
        }
        v if v & 0xffff_0000 == zmq_sys::ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED => {
            format!("the ZAP handler failed (protocol error 0x{v:x})")
        }
        v => format!("ZMTP protocol error 0x{v:x}"),
    })
}

/// Logs a failed handshake (rate-limited): who failed, and why.
pub(super) fn log_refusal(
    throttle: &mut crate::throttle::Throttle,
    what: std::fmt::Arguments<'_>,
    now: Instant,
) {
    if let Some(suppressed) = throttle.allow(now) {
        if suppressed > 0 {
            tracing::warn!("{what} ({suppressed} more refusals not logged)");
        } else {
            tracing::warn!("{what}");
        }
    }
}

/// The endpoint a monitor event names (its second frame).
pub(super) fn monitor_endpoint(frames: &[Vec<u8>]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(frames.get(1).map_or(&[][..], Vec::as_slice))
}

/// One monitor event: its number and value (zmq_socket_monitor(3): frame 0
/// holds the event as a native u16 and the value as a native u32).
pub(super) fn monitor_event(frames: &[Vec<u8>]) -> Option<(u16, u32)> {
    let first = frames.first()?;
    let event = u16::from_ne_bytes(first.get(0..2)?.try_into().ok()?);
    let value = u32::from_ne_bytes(first.get(2..6)?.try_into().ok()?);
    Some((event, value))
}

/// A message from a peer on the ROUTER: if its routing id is new, find
/// whether its connection will report its end (tcp and ipc messages carry
/// the connection's descriptor as metadata, which is what `ZMQ_SRCFD`
/// reads), and tell the service.
pub(super) fn admit_peer<S: Service>(h: &mut Hosted<S>, parts: &mut [zmq::Message], now: Instant) {
    let Some((first, rest)) = parts.split_first_mut() else {
        return;
    };
    let routing_id: &[u8] = first;
    if h.sockets.peer_fds.contains_key(routing_id) {
        return;
    }
    let fd = rest
        .last_mut()
        .and_then(|m| m.gets("__fd"))
        .and_then(|fd| fd.parse::<i32>().ok())
        .unwrap_or(-1);
    if fd >= 0 && h.sockets.fd_peers.contains_key(&fd) {
        // The descriptor was closed and reused; libzmq reported the old
        // connection's end before accepting the new one: read it first.
        read_router_monitor(h, now);
        if let Some(old) = h.sockets.forget_fd(fd) {
            h.service.on_peer_disconnected(&old, now);
        }
    }
    h.sockets.peer_fds.insert(routing_id.to_vec(), fd);
    if fd >= 0 {
        h.sockets.fd_peers.insert(fd, routing_id.to_vec());
        h.service.on_peer_connected(routing_id, now);
    }
}

/// Disconnections reported by the ROUTER's monitor.
pub(super) fn read_router_monitor<S: Service>(h: &mut Hosted<S>, now: Instant) {
    let disconnected = zmq::SocketEvent::DISCONNECTED.to_raw();
    loop {
        let Some(Ok(frames)) = h
            .sockets
            .router_monitor
            .as_ref()
            .map(|m| m.recv_multipart(zmq::DONTWAIT))
        else {
            return;
        };
        match monitor_event(&frames) {
            Some((event, fd)) if event == disconnected => {
                let Ok(fd) = i32::try_from(fd) else { continue };
                if let Some(routing_id) = h.sockets.forget_fd(fd) {
                    h.service.on_peer_disconnected(&routing_id, now);
                }
            }
            Some((event, value)) => {
                if let Some(why) = handshake_failure(event, value) {
                    // libzmq's monitor names our endpoint only; the ZAP
                    // handler logs the peer's address when it refuses.
                    log_refusal(
                        &mut h.sockets.refusals,
                        format_args!("a peer on {} was refused: {why}", monitor_endpoint(&frames)),
                        now,
                    );
                }
            }
            None => {}
        }
    }
}
