//! Encode+decode throughput of generated codecs, beside a memcpy of the same
//! bytes measured in the same run, and the ratio between the two.
//!
//! `cargo bench -p zproto-conformance --bench codec`

fn main() {
    #[cfg(shared_models)]
    with_shared::run();
    #[cfg(not(shared_models))]
    println!("codec bench: left out, the public models (../shared) were not found at build time");
}

/// The measures, over zproto's example model (in ../shared).
#[cfg(shared_models)]
mod with_shared {

    use std::hint::black_box;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use criterion::{Criterion, Throughput};
    use zproto_conformance::zproto_example as ex;
    use zproto_runtime::Codec;

    /// A message name, a closure that encodes and decodes it, and its frames.
    type Case = (&'static str, Box<dyn Fn() -> usize>, Vec<Vec<u8>>);

    fn cases() -> Vec<Case> {
        fn case<C: Codec + 'static>(message: C) -> (Box<dyn Fn() -> usize>, Vec<Vec<u8>>) {
            let frames = message.encode().expect("encodes");
            let run = move || {
                let frames = black_box(&message).encode().expect("encodes");
                let decoded = C::decode(black_box(&frames)).expect("decodes");
                black_box(decoded);
                frames.len()
            };
            (Box::new(run), frames)
        }
        let announce = zgossip::msg::Announce {
            endpoint: "tcp://192.168.55.12:31337".into(),
            service: "inproc://service-directory/v1".into(),
            ttl: 0,
        };
        let (a, af) = case(zgossip::msg::ZgossipMsg::from(announce));
        let (l, lf) = case(ex::ZprotoExample::from(ex::Log::test_value()));
        let (s, sf) = case(ex::ZprotoExample::from(ex::Structures::test_value()));
        vec![("ANNOUNCE", a, af), ("LOG", l, lf), ("STRUCTURES", s, sf)]
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
        for (name, run, frames) in &cases {
            let bytes: usize = frames.iter().map(Vec::len).sum();
            let mut group = criterion.benchmark_group(*name);
            group.throughput(Throughput::Bytes(bytes as u64));
            group.bench_function("encode+decode", |b| b.iter(run));
            // The reference: copy the same frames into new buffers, as encoding
            // must (one allocation and copy per frame).
            group.bench_function("memcpy", |b| {
                b.iter(|| {
                    let copy: Vec<Vec<u8>> = black_box(frames).iter().map(|f| f.to_vec()).collect();
                    black_box(copy)
                })
            });
            group.finish();
        }
        criterion.final_summary();

        println!("\n| message | body bytes | encode+decode | memcpy | ratio |");
        println!("|---|---:|---:|---:|---:|");
        for (name, _, frames) in &cases {
            let ours = mean_ns(&home, name, "encode+decode");
            let copy = mean_ns(&home, name, "memcpy");
            if let (Some(ours), Some(copy)) = (ours, copy) {
                let mb_s = |ns: f64| frames[0].len() as f64 / ns * 1e3;
                println!(
                "| {name} | {} | {ours:.0} ns ({:.0} MB/s) | {copy:.0} ns ({:.0} MB/s) | {:.1}x |",
                frames[0].len(),
                mb_s(ours),
                mb_s(copy),
                ours / copy
            );
            }
        }
    }
}
