//! A value without a complete placeholder costs no allocation, counted per thread.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use super::{engine, table_entries};
use crate::inject::Target;

/// The system allocator, counting allocations on the calling thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Ignored when the thread-local is gone (thread teardown): nothing is measured then.
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_during(run: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    run();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn no_complete_placeholder_no_allocation() {
    let engine = engine(table_entries(false));
    let tls = Target::VerifiedTls {
        host: "api.github.com",
    };
    let headers: &[(&str, &[u8])] = &[
        ("user-agent", b"curl/8.5.0"),
        (
            "x-token",
            b"IRONSH_PROXY_gh-other IRONSH_PROXY_ IRONSH_PROXY_GH",
        ),
        ("authorization", b"Bearer abc.def"),
        ("authorization", b"Basic dXNlcjpwYXNzd29yZA=="),
        ("authorization", b"Basic !!!"),
        ("x-empty", b""),
    ];
    for &(name, value) in headers {
        for target in [tls, Target::Unverified] {
            let count = allocations_during(|| {
                let outcome = engine.rewrite_header(name, value, &target.into());
                assert!(outcome.value().is_none() && outcome.events().is_empty());
            });
            assert_eq!(count, 0, "{name}: {}", String::from_utf8_lossy(value));
        }
    }
    for request_target in [b"/p?k=v&IRONSH_PROXY_gh=1".as_slice(), b"/IRONSH_PROXY_q"] {
        let count = allocations_during(|| {
            let outcome = engine.rewrite_query(request_target, &tls.into());
            assert!(outcome.value().is_none() && outcome.events().is_empty());
        });
        assert_eq!(count, 0);
    }
}
