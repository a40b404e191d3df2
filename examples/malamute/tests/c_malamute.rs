//! Whether the comparisons with the C Malamute ran (`brokers.rs` runs each
//! test against both brokers, `c_clients.rs` the C clients against ours).
//! They need the C broker's sources (`../shared/anchors/malamute`) and
//! CZMQ; without them, the C half of each is left out, and the test here
//! says so by its name. Under `ZPROTO_REQUIRE_SHARED=1` (as `.ci/run` sets)
//! that is a failure.

#[cfg(not(c_malamute))]
#[test]
fn c_broker_and_c_client_comparisons_did_not_run_without_shared_anchors_and_czmq() {
    assert!(
        std::env::var("ZPROTO_REQUIRE_SHARED").map_or(true, |v| v != "1"),
        "ZPROTO_REQUIRE_SHARED=1, but the C Malamute's sources or CZMQ were not found at build time"
    );
}

#[cfg(c_malamute)]
mod support;

#[cfg(c_malamute)]
#[test]
fn the_c_malamute_builds_for_the_comparisons() {
    assert!(
        support::c_malamute("the_c_malamute_builds_for_the_comparisons").is_some(),
        "the C Malamute did not build"
    );
}
