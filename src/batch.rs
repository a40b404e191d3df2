//! Batches (extension 8): several tuples in one ANNOUNCES message, for
//! replays and synchronisations between nodes that agreed it, where one
//! ANNOUNCE per tuple costs a message each. A batch is never bigger than
//! the largest ANNOUNCE (`Limits::max_message`), so libzmq's maximum
//! message size and every memory bound stated per message hold as they
//! are. CZMQ peers never see one.

use crate::msg::{Alive, Alives, Announce, Announces, ZgossipMsg};
use crate::server::{announce_of, flags_of, lease_ms, replayed, FLAG_REPLAY};
use crate::tuples::{Tuple, Tuples};

/// Extension bit: ANNOUNCES carries several tuples.
pub const BATCHES: u32 = 8;

/// An ANNOUNCES message's bytes besides its records: signature (2), id,
/// version, the chunk's length (4).
pub const BATCH_OVERHEAD: usize = 2 + 1 + 1 + 4;

/// A record's bytes besides its endpoint and service: their lengths (1
/// and 4), origin, revision (8 each), lease (4), flags (1).
const RECORD_OVERHEAD: usize = 1 + 4 + 8 + 8 + 4 + 1;

/// The bytes of `tuple`'s record.
pub fn record_len(tuple: &Tuple) -> usize {
    RECORD_OVERHEAD + tuple.endpoint.len() + tuple.service.len()
}

/// Records for one ANNOUNCES, filled up to a byte budget.
#[derive(Debug, Default)]
pub struct Batch {
    records: Vec<u8>,
    count: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `tuple` (marked replayed if `replay`: a synchronisation's, not
    /// news pushed, which Plumtree tells apart) if its record fits in
    /// `budget` bytes of records in all; whether it did. An endpoint over
    /// 255 bytes never fits (no ANNOUNCE can carry it either).
    pub fn push(&mut self, tuple: &Tuple, replay: bool, budget: usize) -> bool {
        if self.records.len() + record_len(tuple) > budget {
            return false;
        }
        let (Ok(endpoint_len), Ok(service_len)) = (
            u8::try_from(tuple.endpoint.len()),
            u32::try_from(tuple.service.len()),
        ) else {
            return false;
        };
        // What `announce_of(tuple, true)` carries, written in place.
        let (origin, revision, lease, flags) = match tuple.stamp {
            Some(stamp) => (
                stamp.origin,
                stamp.version,
                lease_ms(tuple),
                flags_of(tuple) | if replay { FLAG_REPLAY } else { 0 },
            ),
            None => (0, 0, 0, 0),
        };
        let r = &mut self.records;
        r.push(endpoint_len);
        r.extend_from_slice(tuple.endpoint.as_bytes());
        r.extend_from_slice(&service_len.to_be_bytes());
        r.extend_from_slice(tuple.service.as_bytes());
        r.extend_from_slice(&origin.to_be_bytes());
        r.extend_from_slice(&revision.to_be_bytes());
        r.extend_from_slice(&lease.to_be_bytes());
        r.push(flags);
        self.count += 1;
        true
    }

    #[cfg(test)]
    /// Tuples in it.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Its records, for ANNOUNCES.
    pub fn into_records(self) -> Vec<u8> {
        self.records
    }

    /// The ANNOUNCES of what it holds, leaving it empty; `None` if empty.
    pub fn take(&mut self) -> Option<Announces> {
        if self.count == 0 {
            return None;
        }
        self.count = 0;
        Some(Announces {
            records: std::mem::take(&mut self.records),
        })
    }

    /// Add `tuple` as [`Batch::push`] does; if it does not fit, what the
    /// batch held comes back, to be sent now, and it starts the next one.
    /// A tuple too big for any batch comes back after it, as its ANNOUNCE.
    pub fn add(&mut self, tuple: &Tuple, replay: bool, budget: usize) -> Vec<ZgossipMsg> {
        if self.push(tuple, replay, budget) {
            return Vec::new();
        }
        let mut out: Vec<ZgossipMsg> = self.take().into_iter().map(Into::into).collect();
        if !self.push(tuple, replay, budget) {
            // Never with the budget of `Limits::batch_budget`, which holds
            // the largest tuple an ANNOUNCE can carry.
            let announce = announce_of(tuple, true);
            out.push(if replay { replayed(announce) } else { announce }.into());
        }
        out
    }
}

/// Where a refused ANNOUNCE or ANNOUNCES must be sent again from: the
/// lowest table position among its tuples (a flood's batch holds them in
/// the order they came, not by position). `None`: no tuple of it is in
/// the table (or it is neither).
pub fn first_position(message: &ZgossipMsg, tuples: &Tuples) -> Option<usize> {
    match message {
        ZgossipMsg::Announce(a) => tuples.position(&a.endpoint),
        ZgossipMsg::Announces(batch) => unpack(&batch.records)?
            .iter()
            .filter_map(|a| tuples.position(&a.endpoint))
            .min(),
        _ => None,
    }
}

fn take<'a>(records: &'a [u8], at: &mut usize, len: usize) -> Option<&'a [u8]> {
    let bytes = records.get(*at..at.checked_add(len)?)?;
    *at += len;
    Some(bytes)
}

fn number<const N: usize>(records: &[u8], at: &mut usize) -> Option<[u8; N]> {
    take(records, at, N)?.try_into().ok()
}

/// The tuples of an ANNOUNCES, as ANNOUNCEs; `None` if any record is cut
/// short or not UTF-8 (the whole message is then refused).
pub fn unpack(records: &[u8]) -> Option<Vec<Announce>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let endpoint_len = usize::from(number::<1>(records, &mut at)?[0]);
        let endpoint = std::str::from_utf8(take(records, &mut at, endpoint_len)?).ok()?;
        let service_len = usize::try_from(u32::from_be_bytes(number(records, &mut at)?)).ok()?;
        let service = std::str::from_utf8(take(records, &mut at, service_len)?).ok()?;
        let origin = u64::from_be_bytes(number(records, &mut at)?);
        let revision = u64::from_be_bytes(number(records, &mut at)?);
        let lease = u32::from_be_bytes(number(records, &mut at)?);
        let flags = number::<1>(records, &mut at)?[0];
        let mut announce = Announce {
            endpoint: endpoint.to_owned(),
            service: service.to_owned(),
            ..Announce::default()
        };
        if origin != 0 {
            announce.origin = Some(origin);
            announce.revision = Some(revision);
            announce.lease = Some(lease);
            announce.flags = Some(flags);
        }
        out.push(announce);
    }
    Some(out)
}

/// An ALIVES record's bytes: node, clock (8 each), lifetime (4).
pub const ALIVE_RECORD: usize = 8 + 8 + 4;

/// Heartbeats as messages for one peer: ALIVES of as many records as fit
/// in `budget` bytes each (at least one) if it agreed batches, else one
/// ALIVE each.
pub fn alive_messages(alives: Vec<Alive>, batches: bool, budget: usize) -> Vec<ZgossipMsg> {
    if !batches {
        return alives.into_iter().map(Into::into).collect();
    }
    let per = (budget / ALIVE_RECORD).max(1);
    alives
        .chunks(per)
        .map(|chunk| {
            let mut records = Vec::with_capacity(chunk.len() * ALIVE_RECORD);
            for alive in chunk {
                records.extend_from_slice(&alive.node.to_be_bytes());
                records.extend_from_slice(&alive.clock.to_be_bytes());
                records.extend_from_slice(&alive.lifetime.to_be_bytes());
            }
            Alives { records }.into()
        })
        .collect()
}

/// The heartbeats of an ALIVES message; `None` if its records are not a
/// whole number of records.
pub fn unpack_alives(records: &[u8]) -> Option<Vec<Alive>> {
    if records.len() % ALIVE_RECORD != 0 {
        return None;
    }
    records
        .chunks_exact(ALIVE_RECORD)
        .map(|r| {
            Some(Alive {
                node: u64::from_be_bytes(r.get(0..8)?.try_into().ok()?),
                clock: u64::from_be_bytes(r.get(8..16)?.try_into().ok()?),
                lifetime: u32::from_be_bytes(r.get(16..20)?.try_into().ok()?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_go_in_batches_that_fit_and_come_back_as_they_went() {
        let alives: Vec<Alive> = (1..=7)
            .map(|n| Alive {
                node: n,
                clock: 1_000 + n,
                lifetime: 30_000,
            })
            .collect();
        let messages = alive_messages(alives.clone(), true, 3 * ALIVE_RECORD);
        assert_eq!(messages.len(), 3);
        let back: Vec<Alive> = messages
            .iter()
            .flat_map(|m| match m {
                ZgossipMsg::Alives(a) => unpack_alives(&a.records).expect("whole records"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, alives);
        // Without batches agreed: one ALIVE each.
        let plain = alive_messages(alives, false, 3 * ALIVE_RECORD);
        assert_eq!(plain.len(), 7);
        assert!(plain.iter().all(|m| matches!(m, ZgossipMsg::Alive(_))));
        // A torn record is refused.
        assert_eq!(unpack_alives(&[0; ALIVE_RECORD + 1]), None);
    }
    use crate::tuples::Stamp;
    use std::sync::Arc;
    use std::time::Duration;

    fn tuple(endpoint: &str, service: &str, stamp: Option<Stamp>) -> Tuple {
        Tuple {
            endpoint: Arc::from(endpoint),
            service: Arc::from(service),
            stamp,
            removed: false,
            contested: false,
            expired: false,
            lease: Some(Duration::from_millis(1500)),
        }
    }

    #[test]
    fn records_carry_what_announces_carry_within_their_budget() {
        let stamp = Some(Stamp {
            version: 1_800_000_000_000,
            origin: 7,
        });
        let tuples = [
            tuple("tcp://10.0.0.1:5555", "svc", stamp),
            Tuple {
                removed: true,
                ..tuple("tcp://10.0.0.2:5555", "é", stamp)
            },
            tuple("tcp://czmq:1", "plain", None),
        ];
        let mut batch = Batch::new();
        let budget: usize = tuples.iter().map(record_len).sum();
        for t in &tuples {
            assert!(batch.push(t, t.stamp.is_some(), budget));
        }
        assert!(!batch.push(&tuples[0], true, budget), "over the budget");
        assert_eq!(batch.len(), 3);
        let announces = unpack(&batch.into_records()).expect("well formed");
        let expected: Vec<Announce> = tuples
            .iter()
            .map(|t| {
                let a = announce_of(t, true);
                if t.stamp.is_some() {
                    replayed(a)
                } else {
                    a
                }
            })
            .collect();
        assert_eq!(announces, expected);
    }

    #[test]
    fn a_refused_batch_is_sent_again_from_its_lowest_position() {
        let mut table = Tuples::default();
        let now = std::time::Instant::now();
        for i in 0..3 {
            let endpoint = format!("tcp://a:{i}");
            table.offer(
                &crate::tuples::Offer::unversioned(&endpoint, "s"),
                usize::MAX,
                now,
            );
        }
        // Flooded in the order they changed, not by position.
        let mut batch = Batch::new();
        for i in [2, 0, 1] {
            batch.push(
                &tuple(&format!("tcp://a:{i}"), "s", None),
                false,
                usize::MAX,
            );
        }
        let message = ZgossipMsg::from(batch.take().expect("a batch"));
        assert_eq!(first_position(&message, &table), Some(0));
    }

    #[test]
    fn a_record_cut_short_or_not_utf8_refuses_the_batch() {
        let mut batch = Batch::new();
        batch.push(&tuple("tcp://a:1", "s", None), false, usize::MAX);
        let records = batch.into_records();
        for cut in 0..records.len() {
            assert_eq!(
                unpack(&records[..cut]).map(|a| a.len()),
                (cut == 0).then_some(0)
            );
        }
        let mut bad = records.clone();
        bad[2] = 0xff;
        assert_eq!(unpack(&bad), None);
        // A length past the end.
        let mut long = records;
        long[0] = 200;
        assert_eq!(unpack(&long), None);
    }
}
