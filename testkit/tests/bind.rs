//! Bind endpoints resolved as CZMQ 4.2's `zsock_bind` resolves them (`*`
//! and `!`, with port ranges: `zproto_runtime::endpoint`), compared on the
//! same endpoints and the same busy ports with CZMQ itself: the small C
//! program `c/czmq_bind.c`, built against Debian's libczmq. Our
//! side binds through a zgossip node, the path `zgossip --bind`, the server
//! host's BIND and the Malamute broker's config share.

#[cfg(not(czmq))]
#[test]
fn bind_comparison_with_czmq_did_not_run_because_libczmq_dev_is_not_installed() {
    zgossip_testkit::libczmq_is_not_installed();
}

#[cfg(czmq)]
mod czmq {
    use std::collections::BTreeSet;
    use std::net::TcpListener;

    use zgossip::Node;

    /// What CZMQ's zsock_bind returns for `endpoint`: the port, 0 or -1.
    fn czmq(endpoint: &str) -> i32 {
        let out = std::process::Command::new(env!("CZMQ_BIND_BIN"))
            .arg(endpoint)
            .output()
            .expect("run czmq_bind");
        assert!(out.status.success(), "czmq_bind {endpoint}: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("czmq_bind prints a number")
    }

    /// What our node's BIND does with `endpoint`, as CZMQ counts it: the
    /// port bound (PORT), 0 for other transports, -1 on failure. The node
    /// and its socket are gone when this returns.
    fn ours(endpoint: &str) -> i32 {
        let node = Node::new("bind-test").expect("node");
        match node.bind(endpoint) {
            Ok(()) => node.port().expect("port"),
            Err(_) => -1,
        }
    }

    /// Ten consecutive free ports, all held by this test until it lets
    /// some go: nothing else takes them meanwhile.
    fn block_of_ten() -> (u16, Vec<Option<TcpListener>>) {
        for base in (61_000..64_000).step_by(10) {
            let held: Vec<_> = (base..base + 10)
                .map_while(|port| TcpListener::bind(("127.0.0.1", port)).ok())
                .map(Some)
                .collect();
            if held.len() == 10 {
                return (base, held);
            }
        }
        panic!("no ten free consecutive ports from 61000 to 64000");
    }

    #[test]
    fn star_takes_the_first_free_port_of_its_range_as_czmq_does() {
        let (base, mut held) = block_of_ten();
        // base and base + 1 stay busy.
        for listener in held.iter_mut().skip(2) {
            *listener = None;
        }
        let range = format!("tcp://127.0.0.1:*[{base}-{}]", base + 9);
        let expected = i32::from(base) + 2;
        assert_eq!(czmq(&range), expected);
        assert_eq!(ours(&range), expected);
        // An open-ended range starts there too.
        let open = format!("tcp://127.0.0.1:*[{base}-]");
        assert_eq!(czmq(&open), expected);
        assert_eq!(ours(&open), expected);
        // A numbered port is bound as given.
        let exact = format!("tcp://127.0.0.1:{}", base + 5);
        assert_eq!(
            (czmq(&exact), ours(&exact)),
            (i32::from(base) + 5, i32::from(base) + 5)
        );
        // Without a range: the first free port from 49152 (the dynamic
        // range), the same for both when nothing binds in between.
        let default = "tcp://127.0.0.1:*";
        let (c, o) = (czmq(default), ours(default));
        assert!(c >= 49_152, "{c}");
        assert_eq!(o, c);
    }

    #[test]
    fn bang_takes_a_random_free_port_of_its_range_as_czmq_does() {
        let (base, mut held) = block_of_ten();
        for listener in held.iter_mut().skip(2) {
            *listener = None;
        }
        let range = format!("tcp://127.0.0.1:![{base}-{}]", base + 9);
        let free = i32::from(base) + 2..=i32::from(base) + 9;
        let mut seen = (BTreeSet::new(), BTreeSet::new());
        for _ in 0..12 {
            let (c, o) = (czmq(&range), ours(&range));
            assert!(free.contains(&c), "czmq: {c}");
            assert!(free.contains(&o), "ours: {o}");
            seen.0.insert(c);
            seen.1.insert(o);
        }
        // Twelve draws of eight ports: one port every time would be chance
        // of 8^-11. (CZMQ seeds its generator with the time in seconds, so
        // processes started within one second pick alike: not checked.)
        assert!(seen.1.len() > 1, "{seen:?}");
        // Up to a last port only: from 49152.
        let upto = format!("tcp://127.0.0.1:![-{}]", base + 9);
        let (c, o) = (czmq(&upto), ours(&upto));
        for port in [c, o] {
            assert!((49_152..=i32::from(base) + 9).contains(&port), "{port}");
        }
    }

    #[test]
    fn a_range_with_no_free_port_and_malformed_forms_fail_for_both() {
        let (base, _held) = block_of_ten();
        for endpoint in [
            format!("tcp://127.0.0.1:*[{base}-{}]", base + 9),
            format!("tcp://127.0.0.1:![{base}-{}]", base + 9),
            // Not CZMQ's form, and not libzmq's either.
            "tcp://127.0.0.1:*[x-]".to_owned(),
            "tcp://127.0.0.1:!!".to_owned(),
        ] {
            assert_eq!((czmq(&endpoint), ours(&endpoint)), (-1, -1), "{endpoint}");
        }
        // An empty range: nothing to try. (CZMQ counts its attempts as
        // last - first + 1, negative here, and tries its first port until
        // that count wraps around: forever, while that port is busy.)
        assert_eq!(ours(&format!("tcp://127.0.0.1:*[{}-{base}]", base + 9)), -1);
        // Other transports: 0.
        assert_eq!(
            (czmq("inproc://bind-test"), ours("inproc://bind-test")),
            (0, 0)
        );
    }
}
