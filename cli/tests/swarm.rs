//! The swarm, scaled down to run in seconds: convergence under churn, every
//! topology, the timeout path, and the curve outputs.

use std::time::Duration;

use zgossip_cli::swarm::{self, SwarmConfig, Topology};

fn config(nodes: usize, tuples: usize, topology: Topology, churn: f64) -> SwarmConfig {
    SwarmConfig {
        nodes,
        tuples,
        topology,
        churn,
        timeout: Duration::from_secs(60),
        ..SwarmConfig::default()
    }
}

#[test]
fn three_hundred_nodes_converge_under_ten_percent_churn() {
    let config = config(300, 300, Topology::Tree, 0.1);
    let mut samples = 0;
    let report = swarm::run(&config, |_| samples += 1);
    assert!(
        report.converged,
        "{} incomplete: {:?}",
        report.incomplete_count, report.incomplete
    );
    assert_eq!(report.churned, 30);
    assert_eq!(report.incomplete_count, 0);
    assert!(samples > 0 && report.curve.len() == samples);
    let last = report.curve.last().unwrap();
    assert_eq!((last.complete, last.live), (300, 300));
    // Flooding stops at duplicates: about one message per tuple per node.
    let per = report.messages_per_tuple_per_node(&config);
    assert!(per < 3.0, "{per} messages per tuple per node");
}

/// Plumtree on a redundant graph (four links per node): tuples pushed on
/// a tree, ids on the other links. Nothing is lost, with or without churn,
/// and the messages stay near one per tuple per node, where flooding every
/// link costs about seven.
#[test]
fn a_redundant_graph_spreads_over_a_tree_with_and_without_churn() {
    use zgossip::MESSAGE_TYPES;
    let count = |report: &swarm::SwarmReport, name: &str| {
        let i = MESSAGE_TYPES.iter().position(|t| *t == name).unwrap();
        report.sent_by_type[i]
    };
    // Simulated time (2 us a message, a release build's pace): how many
    // keepalives, IHAVE batches and GRAFTs fall due depends on the
    // messages, not on what else the machine runs (on the wall clock, a
    // loaded debug build sent 1.56 messages per tuple per node).
    let simulated = |churn| SwarmConfig {
        simulated_time: Some(Duration::from_micros(2)),
        ..config(300, 300, Topology::Graph(4), churn)
    };
    let quiet = simulated(0.0);
    let report = swarm::run(&quiet, |_| {});
    assert!(report.converged, "{:?}", report.incomplete);
    let per = report.messages_per_tuple_per_node(&quiet);
    eprintln!("graph k=4, 300 nodes: {per:.3} messages per tuple per node");
    assert!(per <= 1.5, "{per} messages per tuple per node");
    assert!(count(&report, "PRUNE") > 0 && count(&report, "IHAVE") > 0);
    // Lazy links carry ids only: ANNOUNCEs stay within 5% of one per
    // tuple per node.
    let announces = count(&report, "ANNOUNCE") as f64 / (300.0 * 300.0);
    assert!(announces < 1.05, "{announces} ANNOUNCEs per tuple per node");

    let churned = simulated(0.1);
    let report = swarm::run(&churned, |_| {});
    assert!(
        report.converged,
        "{} incomplete: {:?}",
        report.incomplete_count, report.incomplete
    );
    assert_eq!(report.churned, 30);
    let per = report.messages_per_tuple_per_node(&churned);
    eprintln!("with 10% churn: {per:.3} messages per tuple per node");
    assert!(per <= 3.0, "{per} messages per tuple per node under churn");
}

#[test]
fn every_topology_converges() {
    for topology in [
        Topology::Chain,
        Topology::Star,
        Topology::Graph(3),
        Topology::Tree,
    ] {
        let report = swarm::run(&config(60, 30, topology, 0.0), |_| {});
        assert!(report.converged, "{topology:?}: {:?}", report.incomplete);
    }
}

#[test]
fn the_curve_only_rises_without_churn() {
    let report = swarm::run(&config(200, 200, Topology::Tree, 0.0), |_| {});
    assert!(report.converged);
    for pair in report.curve.windows(2) {
        assert!(pair[1].complete >= pair[0].complete, "{pair:?}");
        assert!(pair[1].elapsed >= pair[0].elapsed, "{pair:?}");
    }
}

#[test]
fn the_timeout_stops_the_run_and_says_what_is_missing() {
    let mut config = config(400, 400, Topology::Chain, 0.0);
    config.timeout = Duration::ZERO;
    let report = swarm::run(&config, |_| {});
    assert!(!report.converged);
    assert!(report.incomplete_count > 0);
    assert!(!report.incomplete.is_empty() && report.incomplete.len() <= 10);
}

#[test]
fn csv_and_svg_describe_the_curve() {
    let report = swarm::run(&config(50, 50, Topology::Tree, 0.0), |_| {});
    let csv = report.csv();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("elapsed_ms,complete,live,share"));
    assert_eq!(lines.count(), report.curve.len());
    assert!(csv.trim_end().ends_with(",50,50,1.0000"), "{csv}");
    let svg = report.svg("50 <nodes>");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<polyline") && svg.contains("50 &lt;nodes&gt;"));
}

#[test]
fn a_swarm_over_inproc_sockets_converges() {
    let mut config = config(100, 100, Topology::Tree, 0.0);
    config.transport = swarm::Transport::Inproc;
    let report = swarm::run_any(&config, |_| {}).unwrap();
    assert!(report.converged, "{:?}", report.incomplete);
    assert!(report.messages > 0);
}

#[test]
fn a_swarm_over_tcp_converges_under_churn() {
    let mut config = config(60, 60, Topology::Tree, 0.1);
    config.transport = swarm::Transport::Tcp;
    let report = swarm::run_any(&config, |_| {}).unwrap();
    assert!(report.converged, "{:?}", report.incomplete);
    assert_eq!(report.churned, 6);
}

#[test]
fn impossible_socket_swarms_are_refused_up_front() {
    let mut config = config(100_000, 10, Topology::Tree, 0.0);
    config.transport = swarm::Transport::Tcp;
    let err = swarm::run_any(&config, |_| {}).unwrap_err();
    assert!(err.to_string().contains("file descriptors"), "{err}");
    let mut config = config_small_inproc_churn();
    config.transport = swarm::Transport::Inproc;
    assert_eq!(
        swarm::run_any(&config, |_| {}).unwrap_err(),
        swarm::SwarmError::ChurnOverInproc
    );
}

fn config_small_inproc_churn() -> SwarmConfig {
    config(10, 10, Topology::Chain, 0.5)
}
