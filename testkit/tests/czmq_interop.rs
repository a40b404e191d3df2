//! Interoperability with CZMQ 4.2's zgossip (Debian's libczmq), in both
//! directions. The CZMQ node runs as a process of its own: the small C
//! program `c/czmq_node.c`, which the build script compiles when
//! pkg-config finds libczmq. Without libczmq this suite compiles to a single
//! test whose name says so (CI installs libczmq-dev and sets
//! `ZGOSSIP_REQUIRE_CZMQ=1`, which makes its absence an error).

#[cfg(not(czmq))]
#[test]
fn czmq_interop_suite_did_not_run_because_libczmq_dev_is_not_installed() {
    zgossip_testkit::libczmq_is_not_installed();
}

#[cfg(czmq)]
mod interop {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use zgossip::msg::ZgossipMsg;
    use zgossip::{Codec, Node, Settings};
    use zproto_runtime::reactor;

    use zgossip_testkit::{Running, WAIT};

    const CZMQ_NODE: &str = env!("CZMQ_NODE_BIN");

    /// A CZMQ zgossip node in its own process.
    struct Czmq {
        process: Running,
        delivered: BTreeSet<(String, String)>,
    }

    impl Czmq {
        fn start(name: &str) -> Self {
            let process = Running::start(CZMQ_NODE, &[name]);
            process.expect("READY");
            Self {
                process,
                delivered: BTreeSet::new(),
            }
        }

        /// BIND on tcp loopback; returns the endpoint.
        fn bind_tcp(&mut self) -> String {
            self.process.send("BIND tcp://127.0.0.1:*");
            self.process.send("PORT");
            let line = self
                .process
                .expect_line("PORT n", |l| l.starts_with("PORT "));
            let port: u16 = line[5..].trim().parse().expect("port");
            format!("tcp://127.0.0.1:{port}")
        }

        fn command(&mut self, line: &str) {
            self.process.send(line);
        }

        /// Wait until it has delivered all of `tuples`.
        fn wait_for(&mut self, tuples: &[(&str, &str)]) {
            for (e, s) in tuples {
                let wanted = ((*e).to_owned(), (*s).to_owned());
                while !self.delivered.contains(&wanted) {
                    let line = self
                        .process
                        .expect_line(&format!("DELIVER {e} {s}"), |l| l.starts_with("DELIVER "));
                    let mut parts = line.splitn(3, ' ').skip(1);
                    let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    self.delivered.insert((k.to_owned(), v.to_owned()));
                }
            }
        }

        /// STATUS, which also proves the actor is alive (a malformed frame
        /// would have stopped it).
        fn status(&mut self) -> usize {
            self.process.send("STATUS");
            let line = self
                .process
                .expect_line("STATUS n", |l| l.starts_with("STATUS "));
            line[7..].trim().parse().expect("status")
        }
    }

    impl Drop for Czmq {
        fn drop(&mut self) {
            if self.process.is_running() {
                self.process.send("$TERM");
            }
        }
    }

    /// Wait until our node has delivered all of `tuples`.
    fn wait_ours(node: &Node, tuples: &[(&str, &str)]) {
        let want: BTreeSet<(String, String)> = tuples
            .iter()
            .map(|(e, s)| ((*e).into(), (*s).into()))
            .collect();
        let mut got = BTreeSet::new();
        let deadline = Instant::now() + WAIT;
        while !want.is_subset(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            let d = node.recv_delivery(left).unwrap_or_else(|| {
                panic!(
                    "timed out; missing {:?}; node counters {:?}",
                    want.difference(&got).collect::<Vec<_>>(),
                    node.stats()
                )
            });
            assert!(
                got.insert((d.endpoint.clone(), d.service.clone())),
                "{d:?} delivered twice"
            );
        }
    }

    fn ours_on_tcp() -> (Node, String) {
        let node = Node::new("ours").unwrap();
        node.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = format!("tcp://127.0.0.1:{}", node.port().unwrap());
        (node, endpoint)
    }

    #[test]
    fn our_server_with_czmq_clients() {
        let (ours, endpoint) = ours_on_tcp();
        let mut a = Czmq::start("czmq-a");
        let mut b = Czmq::start("czmq-b");
        a.command(&format!("CONNECT {endpoint}"));
        b.command(&format!("CONNECT {endpoint}"));
        a.command("PUBLISH tcp://a:1 from-a");
        b.command("PUBLISH tcp://b:1 from-b");
        ours.announce("tcp://ours:1", "from-ours").unwrap();
        let all = [
            ("tcp://a:1", "from-a"),
            ("tcp://b:1", "from-b"),
            ("tcp://ours:1", "from-ours"),
        ];
        wait_ours(&ours, &all);
        a.wait_for(&all);
        b.wait_for(&all);
        assert_eq!((a.status(), b.status(), ours.status().unwrap()), (3, 3, 3));
    }

    /// CZMQ clients never PING: one quiet for three of our session
    /// timeouts (10 s) still receives new tuples, for as long as its
    /// connection lives. (The 30 s of silence is the scenario, not a wait
    /// for something to happen.)
    #[test]
    fn an_idle_czmq_client_still_receives_new_tuples() {
        let (ours, endpoint) = ours_on_tcp();
        let mut czmq = Czmq::start("czmq-idle");
        czmq.command(&format!("CONNECT {endpoint}"));
        ours.announce("tcp://ours:1", "before").unwrap();
        czmq.wait_for(&[("tcp://ours:1", "before")]);
        std::thread::sleep(3 * Settings::default().timeout);
        assert_eq!(ours.stats().unwrap().sessions, 1, "the session lives");
        ours.announce("tcp://ours:2", "after 30 s").unwrap();
        czmq.wait_for(&[("tcp://ours:2", "after 30 s")]);
        assert_eq!(czmq.status(), 2);
    }

    #[test]
    fn czmq_server_with_our_clients_past_its_session_timeout() {
        let mut server = Czmq::start("czmq-server");
        let endpoint = server.bind_tcp();
        let x = Node::new("x").unwrap();
        let y = Node::new("y").unwrap();
        x.connect(&endpoint).unwrap();
        y.connect(&endpoint).unwrap();
        x.announce("tcp://x:1", "from-x").unwrap();
        server.command("PUBLISH tcp://server:1 from-server");
        y.announce("tcp://y:1", "from-y").unwrap();
        let first = [
            ("tcp://x:1", "from-x"),
            ("tcp://server:1", "from-server"),
            ("tcp://y:1", "from-y"),
        ];
        wait_ours(&x, &first);
        wait_ours(&y, &first);
        server.wait_for(&first);
        // Three of CZMQ's 1000 ms session timeouts pass; our PINGs keep the
        // sessions. Nothing new may be delivered meanwhile.
        assert_eq!(x.recv_delivery(Duration::from_millis(3000)), None);
        x.announce("tcp://x:2", "later").unwrap();
        server.command("PUBLISH tcp://server:2 later-too");
        let later = [("tcp://x:2", "later"), ("tcp://server:2", "later-too")];
        wait_ours(&y, &later);
        server.wait_for(&later[..1]);
        wait_ours(&x, &later[1..]);
        assert_eq!(
            server.status(),
            5,
            "the CZMQ node is alive and holds every tuple"
        );
    }

    #[test]
    fn alternating_chain_converges() {
        // ours0 <- czmq1 <- ours2 <- czmq3 <- ours4: each connects to the one
        // before it and announces one tuple.
        let (ours0, e0) = ours_on_tcp();
        let mut czmq1 = Czmq::start("czmq1");
        let e1 = czmq1.bind_tcp();
        czmq1.command(&format!("CONNECT {e0}"));
        let (ours2, e2) = ours_on_tcp();
        ours2.connect(&e1).unwrap();
        let mut czmq3 = Czmq::start("czmq3");
        czmq3.bind_tcp();
        czmq3.command(&format!("CONNECT {e2}"));
        let ours4 = Node::new("ours4").unwrap();
        let e3 = {
            czmq3.command("PORT");
            let line = czmq3
                .process
                .expect_line("PORT n", |l| l.starts_with("PORT "));
            format!("tcp://127.0.0.1:{}", line[5..].trim())
        };
        ours4.connect(&e3).unwrap();
        ours0.announce("tcp://n0:1", "s0").unwrap();
        czmq1.command("PUBLISH tcp://n1:1 s1");
        ours2.announce("tcp://n2:1", "s2").unwrap();
        czmq3.command("PUBLISH tcp://n3:1 s3");
        ours4.announce("tcp://n4:1", "s4").unwrap();
        let all = [
            ("tcp://n0:1", "s0"),
            ("tcp://n1:1", "s1"),
            ("tcp://n2:1", "s2"),
            ("tcp://n3:1", "s3"),
            ("tcp://n4:1", "s4"),
        ];
        for node in [&ours0, &ours2, &ours4] {
            wait_ours(node, &all);
        }
        czmq1.wait_for(&all);
        czmq3.wait_for(&all);
        assert_eq!((czmq1.status(), czmq3.status()), (5, 5));
    }

    #[test]
    fn over_ipc_too() {
        let path = std::env::temp_dir().join(format!("zgossip-interop-{}.ipc", std::process::id()));
        let endpoint = format!("ipc://{}", path.display());
        let mut server = Czmq::start("czmq-ipc");
        server.command(&format!("BIND {endpoint}"));
        server.command("PORT");
        server.process.expect("PORT 0");
        let ours = Node::new("ours").unwrap();
        ours.connect(&endpoint).unwrap();
        ours.announce("ipc://ours", "here").unwrap();
        server.command("PUBLISH ipc://czmq there");
        ours.bind(&format!("{endpoint}-ours")).unwrap();
        let mut client = Czmq::start("czmq-ipc-client");
        client.command(&format!("CONNECT {endpoint}-ours"));
        let all = [("ipc://ours", "here"), ("ipc://czmq", "there")];
        wait_ours(&ours, &all[1..]);
        server.wait_for(&all);
        client.wait_for(&all);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(format!("{}-ours", path.display()));
    }

    /// A CZMQ remote never PINGs, so its session with us expires; it then
    /// publishes, gets INVALID and answers with a bare HELLO. We keep the
    /// tuple it sent, and the HELLO gets it everything it missed.
    #[test]
    fn a_czmq_remote_whose_session_expired_loses_nothing() {
        let ours = Node::on(
            &zgossip::Reactor::start().unwrap(),
            "ours",
            Settings::default(),
        )
        .unwrap();
        ours.set("server/timeout", "300").unwrap();
        ours.bind("tcp://127.0.0.1:*").unwrap();
        let endpoint = format!("tcp://127.0.0.1:{}", ours.port().unwrap());
        let mut czmq = Czmq::start("czmq-quiet");
        czmq.command(&format!("CONNECT {endpoint}"));
        czmq.command("PUBLISH tcp://czmq:1 first");
        wait_ours(&ours, &[("tcp://czmq:1", "first")]);
        // The CZMQ session expires; meanwhile we learn a tuple it misses.
        assert_eq!(ours.recv_delivery(Duration::from_millis(1000)), None);
        ours.announce("tcp://ours:1", "while-you-slept").unwrap();
        czmq.command("PUBLISH tcp://czmq:2 second");
        wait_ours(&ours, &[("tcp://czmq:2", "second")]);
        czmq.wait_for(&[("tcp://ours:1", "while-you-slept")]);
        assert_eq!(czmq.status(), 3);
    }

    /// A redundant graph of our nodes and CZMQ nodes: ours use Plumtree
    /// among themselves (IHAVE, PRUNE on their lazy links), CZMQ peers get
    /// plain tuples on every link, never a message they do not know (one
    /// would stop them), and every node ends with every tuple.
    #[test]
    fn a_mixed_graph_with_plumtree_among_ours_converges() {
        let node = |name: &str| {
            let node = Node::new(name).unwrap();
            node.bind("tcp://127.0.0.1:*").unwrap();
            let endpoint = format!("tcp://127.0.0.1:{}", node.port().unwrap());
            (node, endpoint)
        };
        let (a, a_ep) = node("a");
        let (b, b_ep) = node("b");
        let (c, c_ep) = node("c");
        let (d, _) = node("d");
        let mut z1 = Czmq::start("z1");
        let z1_ep = z1.bind_tcp();
        let mut z2 = Czmq::start("z2");
        let z2_ep = z2.bind_tcp();
        // Ours: first link on the tree, the others lazy where both are ours.
        b.connect(&a_ep).unwrap();
        b.connect(&c_ep).unwrap();
        c.connect(&a_ep).unwrap();
        c.connect(&z1_ep).unwrap();
        d.connect(&z2_ep).unwrap();
        d.connect(&b_ep).unwrap();
        a.connect(&z2_ep).unwrap();
        z1.command(&format!("CONNECT {b_ep}"));
        z2.command(&format!("CONNECT {c_ep}"));
        let all = [
            ("tcp://a:1", "A"),
            ("tcp://b:1", "B"),
            ("tcp://c:1", "C"),
            ("tcp://d:1", "D"),
            ("tcp://z1:1", "Z1"),
            ("tcp://z2:1", "Z2"),
        ];
        a.announce("tcp://a:1", "A").unwrap();
        b.announce("tcp://b:1", "B").unwrap();
        c.announce("tcp://c:1", "C").unwrap();
        d.announce("tcp://d:1", "D").unwrap();
        z1.command("PUBLISH tcp://z1:1 Z1");
        z2.command("PUBLISH tcp://z2:1 Z2");
        for ours in [&a, &b, &c, &d] {
            wait_ours(ours, &all);
        }
        z1.wait_for(&all);
        z2.wait_for(&all);
        assert_eq!(z1.status(), 6, "z1 alive and complete");
        assert_eq!(z2.status(), 6, "z2 alive and complete");
        // Plumtree ran between ours: b's and d's second links went lazy.
        let pruned: u64 = [&a, &b, &c, &d]
            .iter()
            .map(|n| n.stats().unwrap().sent_by_type[7])
            .sum();
        assert!(pruned >= 2, "{pruned} PRUNEs");
    }

    /// What a CZMQ peer sees of the tuple lifecycle: our tuples arrive
    /// plain (no extension bytes), UNPUBLISH sends it nothing (its protocol
    /// has no removal, and a tombstone would look like a new tuple), so it
    /// keeps its copy; when it replays that copy to any of our nodes, the
    /// tombstone there keeps it out.
    #[test]
    fn czmq_peers_keep_removed_tuples_but_cannot_bring_them_back() {
        let (a, a_endpoint) = ours_on_tcp();
        let (b, b_endpoint) = ours_on_tcp();
        b.connect(&a_endpoint).unwrap();
        let mut czmq = Czmq::start("czmq-stale");
        czmq.command(&format!("CONNECT {a_endpoint}"));
        a.announce("tcp://gone:1", "old").unwrap();
        czmq.wait_for(&[("tcp://gone:1", "old")]);
        wait_ours(&b, &[("tcp://gone:1", "old")]);
        a.unpublish("tcp://gone:1").unwrap();
        let d = b.recv_delivery(WAIT).expect("the removal");
        assert!(d.removed && d.endpoint == "tcp://gone:1", "{d:?}");
        assert_eq!(czmq.status(), 1, "CZMQ keeps its copy");
        // CZMQ replays its table to b: HELLO and the stale copy, refused.
        let before = b.stats().unwrap().duplicates;
        czmq.command(&format!("CONNECT {b_endpoint}"));
        let deadline = Instant::now() + WAIT;
        while b.stats().unwrap().duplicates == before {
            assert!(Instant::now() < deadline, "the replay never came");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(b.status().unwrap(), 0);
        assert_eq!(a.status().unwrap(), 0);
        assert_eq!(b.recv_delivery(Duration::from_millis(300)), None);
        assert_eq!(czmq.status(), 1, "and it is still alive");
    }

    /// The frames our node sends are the frames CZMQ's node sends, captured
    /// live from both on a raw ROUTER that answers PINGs as a CZMQ server
    /// does (a plain PONG). Ours sends one thing more, first: the PING that
    /// offers our extensions, which a CZMQ server answers like any PING.
    #[test]
    fn our_frames_equal_czmqs_on_the_wire() {
        /// Messages, each its frames.
        type Messages = Vec<Vec<Vec<u8>>>;
        /// The PINGs, then HELLO and the one tuple (routing ids stripped).
        fn capture(connect: impl FnOnce(&str)) -> (Messages, Messages) {
            let router = reactor::socket(zmq::ROUTER).unwrap();
            router.set_linger(0).unwrap();
            router.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
            router.bind("tcp://127.0.0.1:*").unwrap();
            let endpoint = router.get_last_endpoint().unwrap().unwrap();
            connect(&endpoint);
            let (mut pings, mut rest) = (Vec::new(), Vec::new());
            while rest.len() < 2 {
                let mut frames = router.recv_multipart(0).expect("a frame");
                let id = frames.remove(0);
                if matches!(ZgossipMsg::decode(&frames), Ok(ZgossipMsg::Ping(_))) {
                    let pong = ZgossipMsg::from(zgossip::msg::Pong::default());
                    let mut reply = vec![id];
                    reply.extend(pong.encode().unwrap());
                    router.send_multipart(reply, 0).unwrap();
                    pings.push(frames);
                } else {
                    rest.push(frames);
                }
            }
            (pings, rest)
        }
        let mut czmq = Czmq::start("czmq-wire");
        czmq.command("PUBLISH inproc://alpha-1 service1");
        czmq.wait_for(&[("inproc://alpha-1", "service1")]);
        let (their_pings, theirs) = capture(|e| czmq.command(&format!("CONNECT {e}")));
        let ours = Node::new("ours").unwrap();
        ours.announce("inproc://alpha-1", "service1").unwrap();
        let (my_pings, mine) = capture(|e| ours.connect(e).unwrap());
        assert_eq!(mine, theirs);
        assert_eq!(theirs[0], vec![vec![0xaa, 0xa0, 0x01, 0x01]], "HELLO");
        assert!(their_pings.is_empty(), "a CZMQ remote never PINGs");
        // The probe: PING with extensions 15 (versioned tuples, Plumtree,
        // liveness per node, batches).
        assert_eq!(my_pings[0], vec![vec![0xaa, 0xa0, 0x03, 0x01, 0, 0, 0, 15]]);
    }

    /// Our server answers a raw DEALER exactly as CZMQ's does: INVALID to a
    /// second HELLO; PONG to PING; INVALID to PONG and to ANNOUNCE before
    /// HELLO.
    #[test]
    fn our_server_replies_equal_czmqs() {
        fn dealer(endpoint: &str) -> zmq::Socket {
            let dealer = reactor::socket(zmq::DEALER).unwrap();
            dealer.set_linger(0).unwrap();
            dealer.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
            dealer.connect(endpoint).unwrap();
            dealer
        }
        fn replies(endpoint: &str) -> Vec<Vec<u8>> {
            let hello = b"\xaa\xa0\x01\x01";
            let mut out = Vec::new();
            // An empty node answers HELLO with nothing; a second HELLO is out
            // of place.
            let first = dealer(endpoint);
            first.send(&hello[..], 0).unwrap();
            first.send(&hello[..], 0).unwrap();
            out.push(first.recv_bytes(0).expect("a reply"));
            let second = dealer(endpoint);
            let announce = b"\xaa\xa0\x02\x01\x01k\x00\x00\x00\x01v\x00\x00\x00\x00";
            for frame in [&b"\xaa\xa0\x03\x01"[..], b"\xaa\xa0\x04\x01", announce] {
                second.send(frame, 0).unwrap();
                out.push(second.recv_bytes(0).expect("a reply"));
            }
            out
        }
        let mut czmq = Czmq::start("czmq-replies");
        let theirs = replies(&czmq.bind_tcp());
        let (_ours, endpoint) = ours_on_tcp();
        let mine = replies(&endpoint);
        assert_eq!(mine, theirs);
        let (pong, invalid) = (vec![0xaa, 0xa0, 0x04, 0x01], vec![0xaa, 0xa0, 0x05, 0x01]);
        assert_eq!(
            theirs,
            vec![invalid.clone(), pong, invalid.clone(), invalid]
        );
        czmq.status();
    }

    /// In one process: CURVE between our nodes, NULL to a CZMQ server. The
    /// hub is a CURVE server for its friend and a NULL client of CZMQ;
    /// tuples cross both.
    #[test]
    fn curve_between_ours_and_null_to_czmq_at_once() {
        use zgossip::cert::Certificate;
        use zgossip::Security;
        let (hub_cert, friend_cert) = (
            Certificate::generate().unwrap(),
            Certificate::generate().unwrap(),
        );
        let mut czmq = Czmq::start("czmq");
        let czmq_endpoint = czmq.bind_tcp();
        let hub = Node::new("hub").unwrap();
        hub.secure(Security {
            cert: hub_cert.clone(),
            allowed: Some(vec![friend_cert.public.clone()]),
            domain: None,
        })
        .unwrap();
        hub.bind("tcp://127.0.0.1:*").unwrap();
        let hub_endpoint = format!("tcp://127.0.0.1:{}", hub.port().unwrap());
        hub.connect(&czmq_endpoint).unwrap();
        let friend = Node::new("friend").unwrap();
        friend
            .secure(Security {
                cert: friend_cert,
                allowed: Some(vec![]),
                domain: None,
            })
            .unwrap();
        friend
            .connect_curve(&hub_endpoint, &hub_cert.public)
            .unwrap();
        czmq.command("PUBLISH tcp://czmq:1 from-czmq");
        friend.announce("tcp://friend:1", "from-friend").unwrap();
        wait_ours(&friend, &[("tcp://czmq:1", "from-czmq")]);
        czmq.wait_for(&[("tcp://friend:1", "from-friend")]);
        czmq.status();
    }

    /// Certificates cross both ways: CZMQ's zcert_save loads here (both
    /// halves), ours load in CZMQ's zcert_load (both halves).
    #[test]
    fn certificates_load_in_both_directions() {
        use zgossip::cert::Certificate;
        let dir = tempfile::tempdir().unwrap();
        let mut czmq = Czmq::start("czmq");
        let theirs = dir.path().join("theirs.cert");
        czmq.command(&format!("CERT-SAVE {}", theirs.display()));
        let line = czmq.process.expect_line("CERT", |l| l.starts_with("CERT "));
        let cert = Certificate::load(&theirs).expect("CZMQ's certificate loads");
        assert_eq!(line, format!("CERT {}", cert.public));
        assert!(cert.secret.is_some(), "with its secret file");

        let ours = dir.path().join("ours.cert");
        let cert = Certificate::generate().unwrap();
        cert.save(&ours).unwrap();
        czmq.command(&format!("CERT-LOAD {}", ours.display()));
        czmq.process.expect(&format!("CERT {}", cert.public));
        czmq.process.expect("CERT-SECRET yes");
    }

    /// The CZMQ side of the benchmark's swarm row (`c/czmq_swarm.c`)
    /// converges, on a tree and on a redundant graph, and says so in the
    /// line the benchmark reads.
    #[test]
    fn czmq_swarm_program_converges_small_swarms() {
        for (topology, links) in [("tree", "1"), ("graph", "3")] {
            let out = std::process::Command::new(env!("CZMQ_SWARM_BIN"))
                .args(["40", topology, links, "7", "30"])
                .output()
                .expect("czmq_swarm runs");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{topology}: {text}");
            assert!(
                text.starts_with("converged=1 ") && text.contains(" complete=40 "),
                "{topology}: {text}"
            );
        }
        // Bad arguments: a usage error, not a crash.
        let out = std::process::Command::new(env!("CZMQ_SWARM_BIN"))
            .args(["0", "tree", "1", "1", "1"])
            .output()
            .expect("czmq_swarm runs");
        assert_eq!(out.status.code(), Some(2));
    }
}
