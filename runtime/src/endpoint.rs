//! Bind endpoints as CZMQ reads them.
//!
//! CZMQ's servers bind through `zsock_bind`, which gives tcp endpoints two
//! port forms of its own beside libzmq's:
//!
//! | port | binds |
//! |---|---|
//! | `*` | the first free port from 49152 (0xc000) up to 65535 |
//! | `!` | a free port from a random place in 49152-65535, scanning on |
//! | `*[first-last]`, `![first-last]` | the same within `first`-`last` |
//!
//! Either end of a range may be left out (`*[60000-]`, `![-50000]`): it is
//! then the dynamic range's. A scan that reaches `last` goes on from
//! `first`, and gives up once it tried every port of the range once.
//!
//! The point of `*` is that it is predictable: a server restarted on the
//! same endpoint comes back on the same port, if nothing took it in
//! between, so its clients reconnect by themselves. libzmq's own `*` asks
//! the kernel for any free port instead, a different one each time.
//! Every other endpoint (a numbered port, ipc, inproc) is bound as given.

/// The start of the dynamic port range (IANA): where `*` starts.
pub const DYNAMIC_FIRST: u32 = 0xc000;
/// The end of the dynamic port range.
pub const DYNAMIC_LAST: u32 = 0xffff;

/// How to bind an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindPlan<'a> {
    /// As given: libzmq reads it.
    AsGiven(&'a str),
    /// Try `tcp://host:port` for ports from `start`, one after the other,
    /// wrapping from `last` to `first`, until one binds.
    Scan {
        /// Everything before the port's colon, `tcp://` included.
        prefix: &'a str,
        /// The range's first port.
        first: u32,
        /// The range's last port (included).
        last: u32,
        /// `!`: start at a random port of the range, not at `first`.
        random: bool,
    },
}

impl<'a> BindPlan<'a> {
    /// Read `endpoint` as `zsock_bind` does.
    pub fn of(endpoint: &'a str) -> Self {
        scan(endpoint).unwrap_or(BindPlan::AsGiven(endpoint))
    }

    /// The endpoints to try, in order; `random` picks the start of a `!`
    /// scan (any number: it is reduced to the range). Ports past 65535,
    /// which no bind takes, are left out; an empty range yields nothing.
    /// At most 65,536 candidates.
    pub fn candidates(&self, random: u64) -> Box<dyn Iterator<Item = String> + 'a> {
        match *self {
            BindPlan::AsGiven(endpoint) => Box::new(std::iter::once(endpoint.to_owned())),
            BindPlan::Scan {
                prefix,
                first,
                last,
                random: pick,
            } => {
                // Ports past 65535 never bind: leaving them out changes
                // no outcome (a scan passes over them to the next).
                let last = last.min(65_535);
                if first > last {
                    return Box::new(std::iter::empty());
                }
                let span = u64::from(last - first) + 1;
                let start = if pick {
                    first + u32::try_from(random % span).unwrap_or(0)
                } else {
                    first
                };
                let ports = (start..=last).chain(first..start);
                Box::new(ports.map(move |port| format!("{prefix}:{port}")))
            }
        }
    }
}

/// `tcp://host:*`, `tcp://host:!`, each with an optional `[first-last]`.
fn scan(endpoint: &str) -> Option<BindPlan<'_>> {
    endpoint.strip_prefix("tcp://")?;
    let (head, range) = match endpoint.strip_suffix(']') {
        Some(open) => {
            let at = open.rfind('[')?;
            (&open[..at], Some(&open[at + 1..]))
        }
        None => (endpoint, None),
    };
    let random = match head.as_bytes().last()? {
        b'*' => false,
        b'!' => true,
        _ => return None,
    };
    let prefix = head[..head.len() - 1].strip_suffix(':')?;
    let (mut first, mut last) = (DYNAMIC_FIRST, DYNAMIC_LAST);
    if let Some(range) = range {
        let (low, high) = range.split_once('-')?;
        if let Some(low) = number(low)? {
            first = low;
        }
        if let Some(high) = number(high)? {
            last = high;
        }
    }
    Some(BindPlan::Scan {
        prefix,
        first,
        last,
        random,
    })
}

/// `None`: not digits; `Some(None)`: empty. Numbers past `u32` saturate
/// (no port is that high either way).
fn number(text: &str) -> Option<Option<u32>> {
    if text.is_empty() {
        return Some(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Some(text.parse().unwrap_or(u32::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(endpoint: &str) -> (u32, u32, bool) {
        match BindPlan::of(endpoint) {
            BindPlan::Scan {
                first,
                last,
                random,
                ..
            } => (first, last, random),
            other => panic!("{endpoint}: {other:?}"),
        }
    }

    #[test]
    fn czmq_port_forms_read_as_ranges() {
        assert_eq!(scan_of("tcp://127.0.0.1:*"), (49152, 65535, false));
        assert_eq!(scan_of("tcp://127.0.0.1:!"), (49152, 65535, true));
        assert_eq!(scan_of("tcp://127.0.0.1:*[60000-]"), (60000, 65535, false));
        assert_eq!(scan_of("tcp://127.0.0.1:![-60000]"), (49152, 60000, true));
        assert_eq!(scan_of("tcp://*:![55000-55999]"), (55000, 55999, true));
        assert_eq!(scan_of("tcp://[::1]:*[-]"), (49152, 65535, false));
        match BindPlan::of("tcp://[::1]:*") {
            BindPlan::Scan { prefix, .. } => assert_eq!(prefix, "tcp://[::1]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_endpoints_are_bound_as_given() {
        for endpoint in [
            "tcp://127.0.0.1:5555",
            "tcp://127.0.0.1:0",
            "ipc:///tmp/x*",
            "inproc://*",
            "tcp://127.0.0.1:*[a-]",
            "tcp://127.0.0.1:*[1-2-3]",
            "tcp://127.0.0.1:**",
            "tcp://:*x",
            "udp://127.0.0.1:*",
        ] {
            assert_eq!(BindPlan::of(endpoint), BindPlan::AsGiven(endpoint));
        }
    }

    #[test]
    fn a_scan_tries_each_port_of_its_range_once_wrapping_at_the_end() {
        let plan = BindPlan::of("tcp://h:![10-14]");
        let ports: Vec<String> = plan.candidates(7).collect();
        assert_eq!(
            ports,
            [
                "tcp://h:12",
                "tcp://h:13",
                "tcp://h:14",
                "tcp://h:10",
                "tcp://h:11"
            ]
        );
        let from_first: Vec<String> = BindPlan::of("tcp://h:*[10-12]").candidates(7).collect();
        assert_eq!(from_first, ["tcp://h:10", "tcp://h:11", "tcp://h:12"]);
        assert_eq!(BindPlan::of("tcp://h:*").candidates(0).count(), 16_384);
        // Empty or unbindable ranges try nothing.
        assert_eq!(BindPlan::of("tcp://h:*[20-10]").candidates(0).count(), 0);
        assert_eq!(BindPlan::of("tcp://h:*[70000-]").candidates(0).count(), 0);
        assert_eq!(
            BindPlan::of("tcp://h:*[65535-99999999999]")
                .candidates(0)
                .count(),
            1
        );
    }
}
