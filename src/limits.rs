//! What a node accepts and how much it queues: the bounds that keep a
//! hostile or merely slow peer from growing the node without limit.
//!
//! Per connection, a node holds at most `hwm` messages each way in libzmq's
//! queues, each at most [`Limits::max_message`] bytes, plus its session (a
//! few dozen bytes and the routing id). Whatever peers send, the rest of the
//! node's memory is its tuples: at most `tuples` of them, each at most
//! 255 + `service` bytes.

// The fixed bounds, beside the settable ones.
#[cfg(feature = "reactor")]
pub use crate::api::{DELIVERY_QUEUE, PEER_EVENT_QUEUE};
pub use crate::early::{GRACE, MAX_EARLY};
pub use crate::plumtree::{
    GRAFT_ANSWER_BYTES, GRAFT_ANSWER_MAX, GRAFT_BYTES_PER_SECOND, MAX_MISSING, MAX_MISSING_PER_LINK,
};
pub use crate::server::MAX_GUARDED;

/// Limits of a node; all settable with `SET limits/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `limits/tuples`: most tuples a node stores. A new endpoint beyond it
    /// is refused (and counted); a new service for a known one is not.
    pub tuples: usize,
    /// `limits/service`: longest service, in bytes. A longer one is refused
    /// at ANNOUNCE, from the application or from a peer.
    pub service: usize,
    /// `limits/hwm`: messages queued per connection and direction. A peer
    /// that does not read is sent nothing more until it has room again.
    pub hwm: u32,
    /// `limits/slice`: tuples replayed to one peer (after HELLO) or one
    /// remote (when synchronising) before other work runs.
    pub slice: usize,
}

/// Longest endpoint: zgossip's `endpoint` is a short string on the wire.
pub const MAX_ENDPOINT: usize = 255;

impl Default for Limits {
    fn default() -> Self {
        Self {
            tuples: 1_000_000,
            service: 1024,
            hwm: 1000,
            slice: 256,
        }
    }
}

impl Limits {
    /// The largest frame a zgossip peer may send: an ANNOUNCE with the
    /// longest endpoint and service (signature 2, id 1, version 1, endpoint
    /// 1 + 255, service 4 + `service`, ttl 4, and the optional origin 8,
    /// revision 8, lease 4 and flags 1). libzmq drops a connection that
    /// sends more (`ZMQ_MAXMSGSIZE`) before buffering it.
    pub fn max_message(&self) -> i64 {
        let bytes = 2 + 1 + 1 + 1 + MAX_ENDPOINT + 4 + self.service + 4 + 8 + 8 + 4 + 1;
        i64::try_from(bytes).unwrap_or(i64::MAX)
    }

    /// The bytes of records a batch (ANNOUNCES) may carry: one no bigger
    /// than the largest ANNOUNCE, which holds the largest tuple's record.
    pub fn batch_budget(&self) -> usize {
        usize::try_from(self.max_message())
            .unwrap_or(usize::MAX)
            .saturating_sub(crate::batch::BATCH_OVERHEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Announce, ZgossipMsg};
    use zproto_runtime::Codec;

    #[test]
    fn the_largest_announce_fits_max_message_exactly() {
        let limits = Limits::default();
        let announce = ZgossipMsg::from(Announce {
            endpoint: "e".repeat(MAX_ENDPOINT),
            service: "s".repeat(limits.service),
            ttl: u32::MAX,
            origin: Some(u64::MAX),
            revision: Some(u64::MAX),
            lease: Some(u32::MAX),
            flags: Some(u8::MAX),
        });
        let frames = announce.encode().expect("encodes");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len() as i64, limits.max_message());
    }
}
