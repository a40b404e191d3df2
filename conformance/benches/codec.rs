//! Generated codecs beside two references measured in the same run: a
//! memcpy of the same frames, and prost (the codec Rust users would pick
//! instead) on equivalent messages.
//!
//! For ANNOUNCE (zgossip), LOG and STRUCTURES (zproto's example):
//! - `memcpy`: copy the encoded frames into new buffers (what any encoder
//!   must at least do: one allocation and copy per frame);
//! - `borrowed decode`: decode the view (`ZgossipMsgRef`), nothing copied;
//! - `encode+decode`: encode the owned message and decode it back, owned;
//! - `prost encode+decode`: the same for prost, from a message with the
//!   same fields and values (`map` as a `BTreeMap`, as ours).
//!
//! `cargo bench -p zproto-conformance --bench codec` prints the table that
//! docs/benchmarks.md quotes.

fn main() {
    #[cfg(shared_models)]
    with_shared::run();
    #[cfg(not(shared_models))]
    println!("codec bench: left out, the public models (../shared) were not found at build time");
}

/// The measures, over zproto's example model (in ../shared).
#[cfg(shared_models)]
mod with_shared {

    use std::collections::BTreeMap;
    use std::hint::black_box;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use criterion::{Criterion, Throughput};
    use zgossip::msg::{Announce, ZgossipMsg, ZgossipMsgRef};
    use zproto_conformance::zproto_example as ex;
    use zproto_runtime::Codec;

    /// prost's equivalents, written as prost-build would generate them.
    mod pb {
        use std::collections::BTreeMap;

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Announce {
            #[prost(string, tag = "1")]
            pub endpoint: String,
            #[prost(string, tag = "2")]
            pub service: String,
            #[prost(uint32, tag = "3")]
            pub ttl: u32,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Log {
            #[prost(uint32, tag = "1")]
            pub sequence: u32,
            #[prost(uint32, tag = "2")]
            pub version: u32,
            #[prost(uint32, tag = "3")]
            pub level: u32,
            #[prost(uint32, tag = "4")]
            pub event: u32,
            #[prost(uint32, tag = "5")]
            pub node: u32,
            #[prost(uint32, tag = "6")]
            pub peer: u32,
            #[prost(uint64, tag = "7")]
            pub time: u64,
            #[prost(string, tag = "8")]
            pub host: String,
            #[prost(string, tag = "9")]
            pub data: String,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Structures {
            #[prost(uint32, tag = "1")]
            pub sequence: u32,
            #[prost(string, repeated, tag = "2")]
            pub aliases: Vec<String>,
            #[prost(btree_map = "string, string", tag = "3")]
            pub headers: BTreeMap<String, String>,
        }
    }

    type Run = Box<dyn Fn() -> usize>;

    /// One message: its frames, and a closure per measure.
    struct Case {
        name: &'static str,
        frames: Vec<Vec<u8>>,
        prost_bytes: usize,
        measures: Vec<(&'static str, Run)>,
    }

    /// `view` decodes the view, passes it to `black_box` and returns its id.
    fn case<C, P>(name: &'static str, message: C, view: fn(&[Vec<u8>]) -> u8, prost: P) -> Case
    where
        C: Codec + PartialEq + std::fmt::Debug + 'static,
        P: prost::Message + Default + PartialEq + 'static,
    {
        let frames = message.encode().expect("encodes");
        assert_eq!(C::decode(&frames).as_ref(), Ok(&message));
        let prost_wire = prost.encode_to_vec();
        let prost_bytes = prost_wire.len();
        let copied = frames.clone();
        let viewed = frames.clone();
        let measures: Vec<(&'static str, Run)> = vec![
            (
                "memcpy",
                Box::new(move || {
                    let copy: Vec<Vec<u8>> =
                        black_box(&copied).iter().map(|f| f.to_vec()).collect();
                    black_box(copy).len()
                }),
            ),
            (
                "borrowed decode",
                Box::new(move || usize::from(view(black_box(&viewed)))),
            ),
            (
                "encode+decode",
                Box::new(move || {
                    let frames = black_box(&message).encode().expect("encodes");
                    let decoded = C::decode(black_box(&frames)).expect("decodes");
                    black_box(decoded);
                    frames.len()
                }),
            ),
            (
                "prost encode+decode",
                Box::new(move || {
                    let bytes = black_box(&prost).encode_to_vec();
                    let decoded = P::decode(black_box(&bytes[..]))
                        .map(|m| m == prost)
                        .expect("decodes");
                    black_box(decoded);
                    bytes.len()
                }),
            ),
        ];
        Case {
            name,
            frames,
            prost_bytes,
            measures,
        }
    }

    fn cases() -> Vec<Case> {
        let announce = Announce {
            endpoint: "tcp://192.168.55.12:31337".into(),
            service: "inproc://service-directory/v1".into(),
            ttl: 0,
            ..Default::default()
        };
        let announce_pb = pb::Announce {
            endpoint: announce.endpoint.clone(),
            service: announce.service.clone(),
            ttl: announce.ttl,
        };
        let log = ex::Log::test_value();
        let log_pb = pb::Log {
            sequence: log.sequence.into(),
            version: 3,
            level: log.level.into(),
            event: log.event.into(),
            node: log.node.into(),
            peer: log.peer.into(),
            time: log.time,
            host: log.host.clone(),
            data: log.data.clone(),
        };
        let structures = ex::Structures::test_value();
        let structures_pb = pb::Structures {
            sequence: structures.sequence.into(),
            aliases: structures.aliases.clone(),
            headers: structures
                .headers
                .clone()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
        };
        vec![
            case(
                "ANNOUNCE",
                ZgossipMsg::from(announce),
                |f| black_box(ZgossipMsgRef::decode(f).expect("decodes")).id(),
                announce_pb,
            ),
            case(
                "LOG",
                ex::ZprotoExample::from(log),
                |f| black_box(ex::ZprotoExampleRef::decode(f).expect("decodes")).id(),
                log_pb,
            ),
            case(
                "STRUCTURES",
                ex::ZprotoExample::from(structures),
                |f| black_box(ex::ZprotoExampleRef::decode(f).expect("decodes")).id(),
                structures_pb,
            ),
        ]
    }

    fn mean_ns(home: &Path, group: &str, function: &str) -> Option<f64> {
        let path = home.join(group).join(function).join("new/estimates.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        json["mean"]["point_estimate"].as_f64()
    }

    pub fn run() {
        let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion");
        // Read back below for the ratio table; set before Criterion reads it.
        std::env::set_var("CRITERION_HOME", &home);
        let mut criterion = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(50)
            .configure_from_args();
        let cases = cases();
        for case in &cases {
            let bytes: usize = case.frames.iter().map(Vec::len).sum();
            let mut group = criterion.benchmark_group(case.name);
            group.throughput(Throughput::Bytes(bytes as u64));
            for (measure, run) in &case.measures {
                group.bench_function(*measure, |b| b.iter(run));
            }
            group.finish();
        }
        criterion.final_summary();

        println!(
            "\n| message | bytes (ours / prost) | memcpy | borrowed decode | encode+decode | prost encode+decode |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for case in &cases {
            let ns = |measure| mean_ns(&home, case.name, measure);
            let (Some(copy), Some(view), Some(owned), Some(prost)) = (
                ns("memcpy"),
                ns("borrowed decode"),
                ns("encode+decode"),
                ns("prost encode+decode"),
            ) else {
                continue;
            };
            println!(
                "| {} | {} / {} | {copy:.0} ns | {view:.0} ns ({:.2}x memcpy) | {owned:.0} ns ({:.2}x memcpy, {:.2}x prost's time) | {prost:.0} ns ({:.2}x memcpy) |",
                case.name,
                case.frames[0].len(),
                case.prost_bytes,
                view / copy,
                owned / copy,
                owned / prost,
                prost / copy,
            );
        }
    }
}
