//! Socket options and security, applied to the sockets a service opens.

/// Options for the sockets a service opens ([`Sockets::set_options`](super::Sockets::set_options)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// `ZMQ_SNDHWM`: messages queued per connection before sends to it
    /// are refused ([`RefusedReason::Full`](super::RefusedReason::Full)). 0 means no limit.
    pub send_hwm: i32,
    /// `ZMQ_RCVHWM`: messages queued per connection before reading from
    /// the peer pauses. 0 means no limit.
    pub receive_hwm: i32,
    /// `ZMQ_MAXMSGSIZE`: a peer that sends a larger frame is disconnected
    /// before libzmq buffers it. -1 means no limit.
    pub max_message: i64,
    /// `ZMQ_HEARTBEAT_IVL`: ZMTP heartbeats on tcp and ipc connections, so
    /// that a peer that stopped answering (killed, stopped, partitioned) is
    /// disconnected. Zero turns them off.
    pub heartbeat: std::time::Duration,
    /// `ZMQ_HEARTBEAT_TIMEOUT` and `ZMQ_HEARTBEAT_TTL`: how long a silent
    /// connection lives.
    pub heartbeat_timeout: std::time::Duration,
    /// `ZMQ_RECONNECT_IVL_MAX`: a connection that fails or is lost is tried
    /// again after 100 ms, then twice as long each time up to this (Lazy
    /// Pirate's backoff, done by libzmq). Zero: every 100 ms.
    pub reconnect_max: std::time::Duration,
}

impl Default for SocketOptions {
    /// libzmq's defaults: 1000 messages, no size limit, no heartbeats, no
    /// reconnection backoff.
    fn default() -> Self {
        Self {
            send_hwm: 1000,
            receive_hwm: 1000,
            max_message: -1,
            heartbeat: std::time::Duration::ZERO,
            heartbeat_timeout: std::time::Duration::ZERO,
            reconnect_max: std::time::Duration::ZERO,
        }
    }
}

impl SocketOptions {
    pub(super) fn apply(&self, socket: &zmq::Socket) -> Result<(), zmq::Error> {
        let ms = |d: std::time::Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        socket.set_sndhwm(self.send_hwm.max(0))?;
        socket.set_rcvhwm(self.receive_hwm.max(0))?;
        socket.set_maxmsgsize(self.max_message)?;
        socket.set_linger(0)?;
        if !self.reconnect_max.is_zero() {
            socket.set_reconnect_ivl_max(ms(self.reconnect_max))?;
        }
        if !self.heartbeat.is_zero() {
            socket.set_heartbeat_ivl(ms(self.heartbeat))?;
            let timeout = self.heartbeat_timeout.max(self.heartbeat);
            socket.set_heartbeat_timeout(ms(timeout))?;
            // The TTL travels in deciseconds, at most 6553.5 s.
            socket.set_heartbeat_ttl(ms(timeout).min(6_553_500))?;
        }
        Ok(())
    }
}

/// How the ROUTER authenticates peers (see [`crate::zap`]), for
/// connections accepted after it is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Security {
    /// NULL: anyone, with no ZAP request.
    #[default]
    None,
    /// NULL, but ask the ZAP handler about `domain` (a policy must exist).
    Null {
        /// ZAP domain.
        domain: String,
    },
    /// PLAIN: username and password, checked by the ZAP handler's policy
    /// for `domain`.
    Plain {
        /// ZAP domain.
        domain: String,
    },
    /// CURVE: the ROUTER is a CURVE server with this secret key; clients'
    /// public keys are checked by the ZAP handler's policy for `domain`.
    Curve {
        /// ZAP domain.
        domain: String,
        /// Our secret key, Z85 (40 characters).
        secret_key: String,
    },
}
