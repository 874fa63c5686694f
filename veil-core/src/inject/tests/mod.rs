//! Tests of the placeholder engine: tables, a seeded random model check, allocation counting.

mod alloc;
mod random;
mod tables;

use std::sync::Arc;

use super::{Engine, Entry, Event, Outcome, Reason, Slots};
use crate::{host_pattern::HostPattern, route::RouteScope};

/// A secret named `name` with placeholder `IRONSH_PROXY_<name>`.
fn entry(name: &str, value: &[u8], scope: &[&str]) -> Entry<Vec<u8>> {
    Entry {
        id: format!("id-{name}"),
        name: name.to_owned(),
        placeholder: format!("IRONSH_PROXY_{name}"),
        scope: scope
            .iter()
            .map(|p| HostPattern::parse(p).unwrap())
            .collect(),
        slots: Slots::default(),
        route: RouteScope::default(),
        value: Arc::new(value.to_vec()),
    }
}

/// The same secret, also swapped in query strings.
fn query_entry(name: &str, value: &[u8], scope: &[&str]) -> Entry<Vec<u8>> {
    Entry {
        slots: Slots {
            query: true,
            ..Slots::default()
        },
        ..entry(name, value, scope)
    }
}

/// The secrets the tables use, in the given order or reversed.
fn table_entries(reversed: bool) -> Vec<Entry<Vec<u8>>> {
    let mut entries = vec![
        entry("gh", b"GH-SECRET", &["github.com", "api.github.com"]),
        entry("gh-main", b"MAIN-SECRET", &["*"]),
        entry("npm", b"NPM/SECRET+=", &["*.npmjs.org"]),
        entry("bad", b"x\r\nInjected: 1", &["*"]),
        entry("tab", b"a\tb\x80", &["*"]),
        entry("del", b"a\x7fb", &["*"]),
        entry("none", b"NONE-SECRET", &[]),
        query_entry("q", b"q s&=/~._-", &["*"]),
    ];
    if reversed {
        entries.reverse();
    }
    entries
}

/// Every secret value in [`table_entries`], to look for in `Debug` output.
const TABLE_SECRETS: &[&str] = &["GH-SECRET", "MAIN-SECRET", "NPM/SECRET+=", "NONE-SECRET"];

/// The output an outcome asks for: the new value, or `input` unchanged.
fn output(outcome: &Outcome, input: &[u8]) -> Vec<u8> {
    outcome.value().unwrap_or(input).to_vec()
}

/// Events as `(secret name, header, None if injected or the reason)`, checking ids on the way.
fn summary(outcome: &Outcome) -> Vec<(String, String, Option<Reason>)> {
    outcome
        .events()
        .iter()
        .map(|event| match event {
            Event::Injected {
                secret_id,
                secret_name,
                header,
            } => {
                assert_eq!(*secret_id, format!("id-{secret_name}"));
                (secret_name.clone(), header.clone(), None)
            }
            Event::NotInjected {
                secret_id,
                secret_name,
                header,
                reason,
            } => {
                assert_eq!(*secret_id, format!("id-{secret_name}"));
                (secret_name.clone(), header.clone(), Some(*reason))
            }
        })
        .collect()
}

/// Builds an engine from entries that must be valid.
fn engine(entries: Vec<Entry<Vec<u8>>>) -> Engine<Vec<u8>> {
    Engine::new(entries).unwrap()
}
