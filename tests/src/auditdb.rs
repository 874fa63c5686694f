//! Editing a stopped veil's audit log behind its back, with the `sled` crate, the way someone
//! tampering with it would: records are JSON values under 8-byte big-endian seq keys in the
//! tree `audit`.

use std::{
    fs::File,
    os::fd::AsRawFd,
    path::Path,
    thread,
    time::{Duration, Instant},
};

/// Opens the database at `db`, lets `edit` change the `audit` tree, flushes, closes it, and
/// waits until sled has let go of its lock, so that veil can open it next.
pub fn edit<T>(db: &Path, edit: impl FnOnce(&sled::Tree) -> T) -> T {
    wait_unlocked(db);
    let opened = sled::open(db).unwrap_or_else(|e| panic!("opening {}: {e}", db.display()));
    let tree = opened.open_tree("audit").expect("the audit tree");
    let result = edit(&tree);
    tree.flush().expect("flushing the audit tree");
    drop(tree);
    drop(opened);
    wait_unlocked(db);
    result
}

/// The sled key of `seq`.
pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The stored value at `seq` as text.
pub fn value(tree: &sled::Tree, seq: u64) -> String {
    let bytes = tree
        .get(key(seq))
        .expect("reading the audit tree")
        .unwrap_or_else(|| panic!("no record {seq}"));
    String::from_utf8(bytes.to_vec()).expect("a JSON record")
}

/// Waits until nobody holds the lock sled takes on the database (sled releases it from a
/// background thread shortly after the database is dropped).
fn wait_unlocked(db: &Path) {
    let lock_file = db.join("db");
    let Ok(file) = File::open(&lock_file) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // SAFETY: flock(2) on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            // SAFETY: as above; releases the lock just taken.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} stayed locked",
            lock_file.display()
        );
        thread::sleep(Duration::from_millis(10));
    }
}
