//! The audit-log fixtures every test shares: reading the log (`veil audit --json`), waiting
//! for records, checking `veil audit verify`, and editing a stopped veil's database behind its
//! back, with the `sled` crate, the way someone tampering with it would: records are JSON
//! objects in the tree `audit`, each group commit's joined by newlines in one value under the
//! 8-byte big-endian seq of its newest record.

use std::{
    fs::File,
    os::fd::AsRawFd,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{eventually, Instance};

impl Instance {
    /// The audit log as JSON values (`veil audit --json`).
    pub fn audit(&self) -> Vec<Value> {
        self.audit_json(&[])
    }

    /// `veil audit --json ARGS`, parsed.
    pub fn audit_json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run_veil(&[&["audit", "--json"], args].concat());
        assert!(
            out.status.success(),
            "veil audit {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    /// The seqs `veil audit --json ARGS` prints.
    pub fn seqs(&self, args: &[&str]) -> Vec<u64> {
        self.audit_json(args).iter().map(seq_of).collect()
    }

    /// Connection records in the audit log.
    pub fn connections(&self) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter(|r| r["kind"] == "connection")
            .collect()
    }

    /// The secret_* records (created, updated, deleted, injected, ...).
    pub fn secret_events(&self) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter(|r| r["kind"].as_str().is_some_and(|k| k.starts_with("secret_")))
            .collect()
    }

    /// Waits until the audit log holds at least `n` connection records (they are written
    /// asynchronously, off the data path) and returns them all.
    pub fn wait_connections(&self, n: usize) -> Vec<Value> {
        self.wait_records("connection", n)
    }

    /// Waits until the audit log holds at least `n` records of `kind` and returns them all.
    pub fn wait_records(&self, kind: &str, n: usize) -> Vec<Value> {
        let mut records = Vec::new();
        eventually(&format!("{n} {kind} records"), || {
            records = self
                .audit()
                .into_iter()
                .filter(|r| r["kind"] == kind)
                .collect();
            records.len() >= n
        });
        records
    }

    /// The one record of `kind` from process `pid` (waiting until it is written).
    pub fn record_of(&self, kind: &str, pid: &Value) -> Value {
        let mut found = Vec::new();
        eventually(&format!("a {kind} record for pid {pid}"), || {
            found = self
                .audit()
                .into_iter()
                .filter(|r| r["kind"] == kind && &r["pid"] == pid)
                .collect();
            !found.is_empty()
        });
        assert_eq!(found.len(), 1, "one {kind} record for pid {pid}: {found:?}");
        found.remove(0)
    }

    /// Asserts `veil audit verify` finds `count` intact records.
    pub fn assert_intact(&self, count: usize) {
        self.assert_verified(&format!("audit log intact: {count} records verified"));
    }

    /// Asserts `veil audit verify` passes and says `says`.
    pub fn assert_verified(&self, says: &str) {
        let out = self.run_veil(&["audit", "verify"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(stdout.contains(says), "{stdout}");
    }

    /// Asserts `veil audit verify` fails, naming record `seq` as `what` (changed, removed,
    /// reordered).
    pub fn assert_broken(&self, seq: u64, what: &str) {
        let out = self.run_veil(&["audit", "verify"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("record {seq} was {what}")),
            "expected record {seq} {what}: {stderr}"
        );
    }
}

/// A record's seq.
pub fn seq_of(record: &Value) -> u64 {
    record["seq"].as_u64().expect("a seq")
}

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
fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// The stored text of record `seq`, from the value holding it.
pub fn value(tree: &sled::Tree, seq: u64) -> String {
    let (_, records) = holding(tree, seq);
    records
        .into_iter()
        .find(|record| stored_seq(record) == seq)
        .unwrap_or_else(|| panic!("no record {seq}"))
}

/// Stores `text` in place of record `seq`, in the value holding it.
pub fn put(tree: &sled::Tree, seq: u64, text: &str) {
    let (key, mut records) = holding(tree, seq);
    let at = records
        .iter()
        .position(|record| stored_seq(record) == seq)
        .unwrap_or_else(|| panic!("no record {seq}"));
    records[at] = text.to_owned();
    tree.insert(key, records.join("\n").as_bytes())
        .expect("writing the audit tree");
}

/// Cuts record `seq` out of the value holding it, as someone deleting it would: the rest of
/// the value stays, under the seq of its newest record.
pub fn remove(tree: &sled::Tree, seq: u64) {
    let (key, mut records) = holding(tree, seq);
    records.retain(|record| stored_seq(record) != seq);
    tree.remove(key).expect("writing the audit tree");
    if let Some(newest) = records.last() {
        tree.insert(key_of(newest), records.join("\n").as_bytes())
            .expect("writing the audit tree");
    }
}

/// Everything in the audit tree, to put back with [`restore`].
pub fn snapshot(tree: &sled::Tree) -> Vec<(sled::IVec, sled::IVec)> {
    tree.iter()
        .collect::<Result<_, _>>()
        .expect("reading the audit tree")
}

/// Puts the audit tree of the database at `db` back as `snapshot` holds it.
pub fn restore(db: &Path, snapshot: &[(sled::IVec, sled::IVec)]) {
    edit(db, |tree| {
        tree.clear().expect("clearing the audit tree");
        for (key, value) in snapshot {
            tree.insert(key, value).expect("restoring the audit tree");
        }
    });
}

/// The key of the value holding record `seq` (the first at or after it) and its records'
/// stored texts.
fn holding(tree: &sled::Tree, seq: u64) -> (sled::IVec, Vec<String>) {
    let (key, value) = tree
        .range(key(seq)..)
        .next()
        .unwrap_or_else(|| panic!("no value holds record {seq}"))
        .expect("reading the audit tree");
    let text = String::from_utf8(value.to_vec()).expect("JSON records");
    (key, text.split('\n').map(str::to_owned).collect())
}

/// The seq a stored record's text names.
fn stored_seq(text: &str) -> u64 {
    let record: Value = serde_json::from_str(text).expect("a JSON record");
    seq_of(&record)
}

/// The key a value whose newest record is `text` is stored under.
fn key_of(text: &str) -> [u8; 8] {
    key(stored_seq(text))
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
