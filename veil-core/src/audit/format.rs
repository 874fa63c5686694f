//! Rendering audit records for people and for machines.

use std::time::{Duration, UNIX_EPOCH};

use super::{Container, Event, Record};

/// Renders `records` as a table with one line per record, each line ending
/// in a newline.
///
/// Columns are sized to their content: SEQ, TIME (RFC 3339 UTC with
/// milliseconds), KIND, SANDBOX, PID, COMM, DESTINATION, VERDICT, REASON and
/// DETAIL. Absent values are shown as `-`. A record standing for several events (`count`)
/// shows how many after its REASON: `udp to a port other than 53 (2000 times)`. DETAIL holds the rest: the
/// process's cgroup id, uid, gid and client address for connections, the cgroup path and id
/// for sandbox events, the secret's name, id, variable, hosts and changed fields for secret
/// events, the secret, header (or headers) and protocol for injections, the transport, cgroup
/// id and rule for DNS queries (whose DESTINATION is the name and type asked), the source and rule counts for
/// policy changes, and the anchor and limits for retention. No records render as a single
/// `no audit records` line.
pub fn table(records: &[Record]) -> String {
    if records.is_empty() {
        return "no audit records\n".to_owned();
    }
    TableStream::default().rows(records)
}

/// A table printed a few rows at a time, as records arrive (`veil audit
/// --follow`): the header comes with the first rows, and columns are as wide
/// as the widest cell so far, so rows line up until a wider cell arrives.
#[derive(Debug)]
pub struct TableStream {
    widths: [usize; COLUMNS],
    header_done: bool,
}

impl Default for TableStream {
    fn default() -> Self {
        Self {
            widths: HEADER.map(str::len),
            header_done: false,
        }
    }
}

impl TableStream {
    /// The lines for `records` (the header first, the first time), each
    /// ending in a newline.
    pub fn rows(&mut self, records: &[Record]) -> String {
        let rows: Vec<[String; COLUMNS]> = records.iter().map(row).collect();
        for row in &rows {
            for (width, cell) in self.widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        if !self.header_done {
            push_line(&mut out, &HEADER.map(str::to_owned), &self.widths);
            self.header_done = true;
        }
        for row in &rows {
            push_line(&mut out, row, &self.widths);
        }
        out
    }
}

/// Renders `record` as one JSON object, without a trailing newline, in the
/// same shape as its stored encoding.
pub fn json_line(record: &Record) -> String {
    record.to_json()
}

/// Number of table columns.
const COLUMNS: usize = 10;

/// Column titles.
const HEADER: [&str; COLUMNS] = [
    "SEQ",
    "TIME",
    "KIND",
    "SANDBOX",
    "PID",
    "COMM",
    "DESTINATION",
    "VERDICT",
    "REASON",
    "DETAIL",
];

/// Columns aligned right (numbers); the rest align left.
const RIGHT_ALIGNED: [bool; COLUMNS] = [
    true, false, false, false, true, false, false, false, false, false,
];

/// Placeholder for absent values.
const ABSENT: &str = "-";

/// First millisecond humantime cannot format (year 10000).
const RFC3339_END_MS: u64 = 253_402_300_800_000;

/// The table cells for `record`, in [`HEADER`] order.
fn row(record: &Record) -> [String; COLUMNS] {
    let seq = record.seq.to_string();
    let time = rfc3339_millis(record.time_ms);
    let kind = record.event.kind().to_string();
    let sandbox = record.event.sandbox().unwrap_or(ABSENT).to_owned();
    match &record.event {
        Event::Connection(c) => [
            seq,
            time,
            kind,
            sandbox,
            c.pid.to_string(),
            or_absent(&c.comm),
            match (&c.host, c.destination) {
                (Some(host), Some(dst)) => format!("{host} ({dst})"),
                (Some(host), None) => host.clone(),
                (None, Some(dst)) => dst.to_string(),
                (None, None) => ABSENT.to_owned(),
            },
            c.verdict.as_str().to_owned(),
            counted(&c.reason, c.count),
            format!(
                "{} cgroup_id={} uid={} gid={} client={}{}",
                c.protocol,
                c.cgroup_id,
                c.uid,
                c.gid,
                c.client
                    .map_or_else(|| ABSENT.to_owned(), |a| a.to_string()),
                c.rule
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" rule={r}")),
            ),
        ],
        Event::KernelRefusal(r) => [
            seq,
            time,
            kind,
            sandbox,
            r.pid.to_string(),
            or_absent(&r.comm),
            r.destination
                .map_or_else(|| ABSENT.to_owned(), |d| d.to_string()),
            "refused".to_owned(),
            counted(&r.reason, r.count),
            format!(
                "protocol={} cgroup_id={} uid={} gid={}",
                or_absent(&r.protocol),
                r.cgroup_id,
                r.uid,
                r.gid
            ),
        ],
        Event::KernelRefusalsDropped(d) => [
            seq,
            time,
            kind,
            sandbox,
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            "refused".to_owned(),
            format!(
                "{} refusals not recorded: the kernel's ring was full",
                d.dropped
            ),
            format!("total_dropped={}", d.total),
        ],
        Event::SecretInjected(i) | Event::PlaceholderNotInjected(i) => [
            seq,
            time,
            kind,
            sandbox,
            i.pid.to_string(),
            or_absent(&i.comm),
            format!("{} ({})", i.host, i.destination),
            if i.reason.is_some() {
                "kept"
            } else {
                "injected"
            }
            .to_owned(),
            counted(i.reason.as_deref().unwrap_or("in scope"), i.count),
            format!(
                "secret={} id={} header={}{} protocol={} cgroup_id={}",
                i.secret_name,
                i.secret_id,
                if i.headers.is_empty() {
                    i.header.clone()
                } else {
                    i.headers.join(",")
                },
                i.slot
                    .as_ref()
                    .map(|slot| format!(" slot={slot}"))
                    .unwrap_or_default(),
                i.protocol,
                i.cgroup_id
            ),
        ],
        Event::SecretScrubbed(x) => [
            seq,
            time,
            kind,
            sandbox,
            x.pid.to_string(),
            or_absent(&x.comm),
            format!("{} ({})", x.host, x.destination),
            x.action.clone(),
            format!("{} in {}", x.count, x.location),
            format!(
                "secret={} id={} cgroup_id={}",
                x.secret_name, x.secret_id, x.cgroup_id
            ),
        ],
        Event::LimitExceeded(l) => [
            seq,
            time,
            kind,
            sandbox,
            l.pid.to_string(),
            or_absent(&l.comm),
            format!("{} ({})", l.host, l.destination),
            "closed".to_owned(),
            l.detail.clone(),
            format!("limit={} cgroup_id={}", l.limit, l.cgroup_id),
        ],
        Event::DnsQuery(d) => [
            seq,
            time,
            kind,
            sandbox,
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            format!("{} {}", or_absent(&d.name), d.qtype)
                .trim_end()
                .to_owned(),
            d.outcome.as_str().to_owned(),
            counted(&d.reason, d.count),
            format!(
                "transport={} cgroup_id={}{}",
                d.transport,
                d.cgroup_id,
                d.rule
                    .as_ref()
                    .map_or_else(String::new, |r| format!(" rule={r}")),
            ),
        ],
        Event::RecordsDropped(d) => [
            seq,
            time,
            kind,
            sandbox,
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            format!(
                "{} records not written: too many of the sandbox's were waiting",
                d.dropped
            ),
            ABSENT.to_owned(),
        ],
        Event::PolicyChanged(p) => [
            seq,
            time,
            kind,
            sandbox,
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            p.trigger.as_str().to_owned(),
            format!(
                "source={} allow_rules={} passthrough={}",
                p.source.as_deref().unwrap_or(ABSENT),
                p.allow_rules,
                p.passthrough
            ),
        ],
        Event::Retention(r) => [
            seq,
            time,
            kind,
            sandbox,
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            format!("{} oldest records dropped", r.dropped),
            format!(
                "anchor_seq={}{}{}",
                r.through_seq,
                r.max_age_ms.map_or_else(String::new, |ms| format!(
                    " max_age={}",
                    humantime::format_duration(Duration::from_millis(ms))
                )),
                r.max_records
                    .map_or_else(String::new, |n| format!(" max_records={n}")),
            ),
        ],
        Event::SandboxAttached(s) | Event::SandboxDetached(s) => [
            seq,
            time,
            kind,
            sandbox,
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            ABSENT.to_owned(),
            format!(
                "cgroup={} cgroup_id={}{}",
                or_absent(&s.cgroup),
                s.cgroup_id,
                s.container
                    .as_ref()
                    .map_or_else(String::new, container_detail)
            ),
        ],
        Event::SecretCreated(s) | Event::SecretUpdated(s) | Event::SecretDeleted(s) => {
            let mut detail = format!(
                "secret={} id={} env_var={} hosts={}",
                s.name,
                s.id,
                s.env_var,
                s.hosts.join(",")
            );
            if !s.changed.is_empty() {
                detail.push_str(&format!(" changed={}", s.changed.join(",")));
            }
            [
                seq,
                time,
                kind,
                sandbox,
                ABSENT.to_owned(),
                ABSENT.to_owned(),
                ABSENT.to_owned(),
                ABSENT.to_owned(),
                ABSENT.to_owned(),
                detail,
            ]
        }
    }
}

/// Appends `cells` padded to `widths`, two spaces apart, without trailing
/// whitespace.
fn push_line(out: &mut String, cells: &[String; COLUMNS], widths: &[usize; COLUMNS]) {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = widths[i].saturating_sub(cell.chars().count());
        if RIGHT_ALIGNED[i] {
            line.extend(std::iter::repeat_n(' ', pad));
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `reason` for a record standing for `count` events: as it is for one, with the count
/// after it (`... (2000 times)`) for more.
fn counted(reason: &str, count: u64) -> String {
    match count {
        1 => or_absent(reason),
        n => format!("{} ({n} times)", or_absent(reason)),
    }
}

/// `value`, or [`ABSENT`] when it is empty.
/// ` container=NAME container_id=ID12 image=IMAGE runtime=R` for a container's sandbox
/// record; a value with spaces, quotes or control characters is quoted and escaped.
fn container_detail(c: &Container) -> String {
    let mut out = String::new();
    if let Some(name) = &c.name {
        out.push_str(&format!(" container={}", plain(name)));
    }
    let short: String = c.id.chars().take(12).collect();
    out.push_str(&format!(" container_id={}", plain(&short)));
    if let Some(image) = &c.image {
        out.push_str(&format!(" image={}", plain(image)));
    }
    out.push_str(&format!(" runtime={}", plain(&c.runtime)));
    out
}

/// `value` as is when it is one plain word, else quoted with Rust's escapes.
fn plain(value: &str) -> String {
    let word = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if word {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

fn or_absent(value: &str) -> String {
    if value.is_empty() { ABSENT } else { value }.to_owned()
}

/// `time_ms` as RFC 3339 UTC with milliseconds; times past year 9999, which
/// humantime cannot format, are shown as raw milliseconds instead.
fn rfc3339_millis(time_ms: u64) -> String {
    if time_ms >= RFC3339_END_MS {
        return format!("{time_ms}ms");
    }
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(time_ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ConnProtocol, Connection, Hash, SandboxChange, SecretChange, Verdict};

    /// A record with these fields, chained to nothing in particular.
    fn record(seq: u64, time_ms: u64, event: Event) -> Record {
        Record::link(&Hash::GENESIS, seq, time_ms, event)
    }

    fn connection() -> Record {
        record(
            12,
            1_700_000_000_123,
            Event::Connection(Connection {
                sandbox: Some("build".into()),
                cgroup_id: 4242,
                pid: 31337,
                uid: 1000,
                gid: 100,
                comm: "curl".into(),
                client: Some("10.0.0.2:40000".parse().unwrap()),
                destination: Some("93.184.216.34:443".parse().unwrap()),
                host: None,
                protocol: ConnProtocol::Tcp,
                rule: None,
                verdict: Verdict::Allowed,
                reason: "relayed".into(),
                count: 1,
            }),
        )
    }

    fn refused() -> Record {
        record(
            13,
            1_700_000_000_456,
            Event::Connection(Connection {
                sandbox: None,
                cgroup_id: 0,
                pid: 7,
                uid: 0,
                gid: 0,
                comm: String::new(),
                client: None,
                destination: None,
                host: None,
                protocol: ConnProtocol::Tcp,
                rule: None,
                verdict: Verdict::Refused,
                reason: "no original-destination record".into(),
                count: 1,
            }),
        )
    }

    fn detached() -> Record {
        record(
            9,
            0,
            Event::SandboxDetached(SandboxChange {
                name: "build".into(),
                cgroup: "/sys/fs/cgroup/veil/build".into(),
                cgroup_id: 4242,
                container: None,
            }),
        )
    }

    fn words(line: &str) -> Vec<&str> {
        line.split_whitespace().collect()
    }

    #[test]
    fn secret_rows_show_who_and_what_changed() {
        let record = Record::link(
            &Hash::GENESIS,
            4,
            0,
            Event::SecretUpdated(SecretChange {
                id: "sec_01".into(),
                name: "gh".into(),
                env_var: "GH".into(),
                hosts: vec!["a.com".into(), "*.b.com".into()],
                changed: vec!["secret".into(), "hosts".into()],
            }),
        );
        let out = table(&[record]);
        let row = out.lines().nth(1).unwrap();
        assert_eq!(
            words(row),
            [
                "4",
                "1970-01-01T00:00:00.000Z",
                "secret_updated",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "secret=gh",
                "id=sec_01",
                "env_var=GH",
                "hosts=a.com,*.b.com",
                "changed=secret,hosts"
            ]
        );
    }

    #[test]
    fn table_of_nothing_says_so() {
        assert_eq!(table(&[]), "no audit records\n");
    }

    #[test]
    fn table_has_header_and_one_row_per_record() {
        let out = table(&[detached(), connection(), refused()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(out.ends_with('\n'));
        assert_eq!(
            words(lines[0]),
            [
                "SEQ",
                "TIME",
                "KIND",
                "SANDBOX",
                "PID",
                "COMM",
                "DESTINATION",
                "VERDICT",
                "REASON",
                "DETAIL"
            ]
        );
        assert_eq!(
            words(lines[1]),
            [
                "9",
                "1970-01-01T00:00:00.000Z",
                "sandbox_detached",
                "build",
                "-",
                "-",
                "-",
                "-",
                "-",
                "cgroup=/sys/fs/cgroup/veil/build",
                "cgroup_id=4242"
            ]
        );
        assert_eq!(
            words(lines[2]),
            [
                "12",
                "2023-11-14T22:13:20.123Z",
                "connection",
                "build",
                "31337",
                "curl",
                "93.184.216.34:443",
                "allowed",
                "relayed",
                "tcp",
                "cgroup_id=4242",
                "uid=1000",
                "gid=100",
                "client=10.0.0.2:40000"
            ]
        );
        assert_eq!(
            words(lines[3]),
            [
                "13",
                "2023-11-14T22:13:20.456Z",
                "connection",
                "-",
                "7",
                "-",
                "-",
                "refused",
                "no",
                "original-destination",
                "record",
                "tcp",
                "cgroup_id=0",
                "uid=0",
                "gid=0",
                "client=-"
            ]
        );
    }

    #[test]
    fn kernel_refusals_have_rows() {
        use crate::audit::{KernelRefusal, RefusalsDropped};
        let refusal = record(
            14,
            0,
            Event::KernelRefusal(KernelRefusal {
                sandbox: Some("build".into()),
                cgroup_id: 4243,
                pid: 8,
                uid: 0,
                gid: 0,
                comm: "python3".into(),
                destination: None,
                protocol: "raw (icmp)".into(),
                reason: "sockets".into(),
                count: 1,
            }),
        );
        let dropped = record(
            15,
            0,
            Event::KernelRefusalsDropped(RefusalsDropped {
                dropped: 3,
                total: 10,
            }),
        );
        let out = table(&[refusal, dropped]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            words(lines[1]),
            [
                "14",
                "1970-01-01T00:00:00.000Z",
                "kernel_refusal",
                "build",
                "8",
                "python3",
                "-",
                "refused",
                "sockets",
                "protocol=raw",
                "(icmp)",
                "cgroup_id=4243",
                "uid=0",
                "gid=0"
            ]
        );
        assert!(lines[2].contains("kernel_refusals_dropped"));
        assert!(lines[2].contains("3 refusals not recorded"));
        assert!(lines[2].ends_with("total_dropped=10"));
    }

    #[test]
    fn dns_queries_have_rows() {
        use crate::audit::{DnsOutcome, DnsQuery};
        let query = |name: &str, outcome, rule: Option<&str>, count| {
            Event::DnsQuery(DnsQuery {
                sandbox: Some("build".into()),
                cgroup_id: 9,
                name: name.into(),
                qtype: "A".into(),
                transport: "udp".into(),
                outcome,
                rule: rule.map(str::to_owned),
                reason: "resolved".into(),
                count,
            })
        };
        let out = table(&[
            record(
                1,
                0,
                query("api.test", DnsOutcome::Answered, Some("api.test"), 3),
            ),
            record(2, 0, query("", DnsOutcome::Refused, None, 1)),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            words(lines[1]),
            [
                "1",
                "1970-01-01T00:00:00.000Z",
                "dns_query",
                "build",
                "-",
                "-",
                "api.test",
                "A",
                "answered",
                "resolved",
                "(3",
                "times)",
                "transport=udp",
                "cgroup_id=9",
                "rule=api.test"
            ]
        );
        assert!(lines[2].contains(" - A "), "{}", lines[2]);
        let malformed = Event::DnsQuery(DnsQuery {
            name: String::new(),
            qtype: String::new(),
            ..match query("", DnsOutcome::Refused, None, 1) {
                Event::DnsQuery(d) => d,
                _ => unreachable!(),
            }
        });
        let out = table(&[record(3, 0, malformed)]);
        assert_eq!(words(out.lines().nth(1).unwrap())[6], "-");
    }

    #[test]
    fn table_columns_line_up() {
        let out = table(&[detached(), connection(), refused()]);
        let lines: Vec<&str> = out.lines().collect();
        for title in ["TIME", "KIND", "SANDBOX", "COMM", "DESTINATION", "VERDICT"] {
            let column = lines[0].find(title).unwrap();
            for line in &lines[1..] {
                assert_eq!(&line[column - 2..column], "  ", "{title} in {line:?}");
                assert_ne!(&line[column..=column], " ", "{title} in {line:?}");
            }
        }
        assert!(lines.iter().all(|line| line.trim_end() == *line));
        assert!(lines[1].starts_with("  9  1970-"));
        assert!(lines[2].starts_with(" 12  2023-"));
    }

    #[test]
    fn time_beyond_year_9999_is_shown_raw() {
        let mut record = detached();
        record.time_ms = u64::MAX;
        assert!(table(&[record]).contains(&format!(" {}ms ", u64::MAX)));
    }

    #[test]
    fn json_line_parses_back_to_the_record() {
        for record in [connection(), refused(), detached()] {
            let line = json_line(&record);
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
            assert_eq!(line.as_bytes(), record.encode());
        }
    }

    #[test]
    fn policy_and_retention_rows() {
        use crate::audit::{PolicyChange, PolicyTrigger, Retention};
        let policy = record(
            1,
            0,
            Event::PolicyChanged(PolicyChange {
                source: Some("/etc/veil/veil.toml".into()),
                allow_rules: 3,
                passthrough: 1,
                trigger: PolicyTrigger::Reload,
            }),
        );
        let retention = record(
            2,
            0,
            Event::Retention(Retention {
                dropped: 40,
                through_seq: 41,
                max_age_ms: Some(30 * 86_400_000),
                max_records: Some(1000),
            }),
        );
        let out = table(&[policy, retention]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            words(lines[1]),
            [
                "1",
                "1970-01-01T00:00:00.000Z",
                "policy_changed",
                "-",
                "-",
                "-",
                "-",
                "-",
                "reload",
                "source=/etc/veil/veil.toml",
                "allow_rules=3",
                "passthrough=1"
            ]
        );
        assert!(
            lines[2].contains(" 40 oldest records dropped "),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].ends_with("anchor_seq=41 max_age=30days max_records=1000"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn a_table_stream_prints_the_header_once() {
        let mut stream = TableStream::default();
        let first = stream.rows(&[]);
        assert_eq!(words(&first)[0], "SEQ");
        assert_eq!(first.lines().count(), 1);
        let second = stream.rows(&[detached(), connection()]);
        assert_eq!(second.lines().count(), 2);
        assert!(second.lines().all(|l| !l.starts_with("SEQ")));
        let third = stream.rows(&[refused()]);
        assert_eq!(words(&third)[0], "13");
        assert_eq!(
            table(&[detached()]),
            TableStream::default().rows(&[detached()])
        );
    }
}
