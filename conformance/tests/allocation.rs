//! Decoding never allocates what the input merely claims: a frame that claims
//! gigabytes costs no more than its own size. Measured with a counting global
//! allocator (this test binary only).
// Needs the public models and golden frames (../shared); see shared_material.rs.
#![cfg(shared_models)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use zproto_conformance::golden::decode_hex;
use zproto_conformance::zproto_example::ZprotoExample;
use zproto_runtime::Codec;

/// The largest single allocation since the last reset.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn largest_allocation_decoding(hex: &[&str]) -> usize {
    let frames: Vec<Vec<u8>> = hex.iter().map(|h| decode_hex(h).unwrap()).collect();
    LARGEST.store(0, Ordering::Relaxed);
    let result = ZprotoExample::decode(&frames);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(result.is_err(), "{result:?}");
    largest
}

// One test function, so no other test thread allocates during a measurement.
#[test]
fn claimed_sizes_are_not_allocated() {
    // 4 billion list entries; 4 GiB chunk; 16 million hash entries; a list
    // of 1000 entries claimed, one present.
    let cases: &[&[&str]] = &[
        &["aaa002007bffffffff"],
        &["aaa003007b62333863ffffffff00", "", ""],
        &["aaa002007b00000000 00ffffff"],
        &["aaa002007b000003e8 0000000161"],
    ];
    for case in cases {
        let largest = largest_allocation_decoding(case);
        assert!(largest <= 256, "{case:?}: allocated {largest} bytes");
    }
}
