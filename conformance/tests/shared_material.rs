//! Whether the reference material was there: the public models and golden
//! frames of `../shared` (or `$ZPROTO_SHARED_DIR`). Without it, the tests
//! that need it (golden, malformed, round_trip, allocation, node_wire, and
//! the public models' generated tests) are left out, and the one test here
//! says so by its name; with `ZPROTO_REQUIRE_SHARED=1` (as CI sets) the
//! build itself fails instead.

#[cfg(not(shared_models))]
#[test]
fn public_model_tests_did_not_run_because_shared_is_missing() {
    let required = std::env::var("ZPROTO_REQUIRE_SHARED").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "ZPROTO_REQUIRE_SHARED=1 but the reference material was not found at build time"
    );
}
