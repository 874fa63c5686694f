//! Counters and a latency histogram for `GET /metrics`, in the Prometheus text format. Plain
//! atomics: recording never blocks or allocates.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use crate::audit::Verdict;

/// Upper bounds of the connection-setup latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a connection failed, for `veil_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An accepted connection had no original-destination record.
    NoRecord,
    /// The upstream connect failed or timed out.
    Upstream,
    /// The control API failed a request (a 5xx answer).
    Api,
}

impl ErrorKind {
    const ALL: [Self; 3] = [Self::NoRecord, Self::Upstream, Self::Api];

    fn label(self) -> &'static str {
        match self {
            Self::NoRecord => "no_record",
            Self::Upstream => "upstream",
            Self::Api => "api",
        }
    }
}

/// The daemon's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: AtomicU64,
    refused: AtomicU64,
    denials: AtomicU64,
    injections: AtomicU64,
    scrubs: AtomicU64,
    errors: [AtomicU64; 3],
    setup_buckets: [AtomicU64; BUCKETS.len()],
    setup_count: AtomicU64,
    setup_sum_ns: AtomicU64,
}

impl Metrics {
    /// Counts a steered connection by verdict, with how long veil took to decide and (when
    /// allowed) reach upstream.
    pub fn connection(&self, verdict: Verdict, setup: Duration) {
        match verdict {
            Verdict::Allowed => &self.allowed,
            Verdict::Refused => &self.refused,
        }
        .fetch_add(1, Ordering::Relaxed);
        let secs = setup.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.setup_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.setup_count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(setup.as_nanos()).unwrap_or(u64::MAX);
        self.setup_sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Counts a connection refused by a decision (a loop, veil's own API, egress policy).
    pub fn denial(&self) {
        self.denials.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a placeholder replaced by its secret.
    pub fn injection(&self) {
        self.injections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a secret scrubbed out of (or cut off with) a response.
    pub fn scrub(&self) {
        self.scrubs.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failure.
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line("# HELP veil_connections_total Steered connections, by verdict.".into());
        line("# TYPE veil_connections_total counter".into());
        line(format!(
            "veil_connections_total{{verdict=\"allowed\"}} {}",
            get(&self.allowed)
        ));
        line(format!(
            "veil_connections_total{{verdict=\"refused\"}} {}",
            get(&self.refused)
        ));
        line("# HELP veil_denials_total Connections refused by a decision (loop, veil's own API, egress policy).".into());
        line("# TYPE veil_denials_total counter".into());
        line(format!("veil_denials_total {}", get(&self.denials)));
        line("# HELP veil_injections_total Placeholders replaced by their secret.".into());
        line("# TYPE veil_injections_total counter".into());
        line(format!("veil_injections_total {}", get(&self.injections)));
        line("# HELP veil_scrubs_total Secrets found in responses and scrubbed or cut off.".into());
        line("# TYPE veil_scrubs_total counter".into());
        line(format!("veil_scrubs_total {}", get(&self.scrubs)));
        line("# HELP veil_errors_total Failures, by kind.".into());
        line("# TYPE veil_errors_total counter".into());
        for kind in ErrorKind::ALL {
            line(format!(
                "veil_errors_total{{kind=\"{}\"}} {}",
                kind.label(),
                get(&self.errors[kind as usize])
            ));
        }
        line("# HELP veil_connection_setup_seconds Time from accepting a steered connection to relaying or refusing it.".into());
        line("# TYPE veil_connection_setup_seconds histogram".into());
        for (bound, bucket) in BUCKETS.iter().zip(&self.setup_buckets) {
            line(format!(
                "veil_connection_setup_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            ));
        }
        let count = get(&self.setup_count);
        line(format!(
            "veil_connection_setup_seconds_bucket{{le=\"+Inf\"}} {count}"
        ));
        let sum = get(&self.setup_sum_ns) as f64 / 1e9;
        line(format!("veil_connection_setup_seconds_sum {sum}"));
        line(format!("veil_connection_setup_seconds_count {count}"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
            .to_owned()
    }

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.connection(Verdict::Allowed, Duration::from_micros(800));
        m.connection(Verdict::Allowed, Duration::from_millis(30));
        m.connection(Verdict::Refused, Duration::from_secs(20));
        m.denial();
        m.injection();
        m.injection();
        m.error(ErrorKind::Upstream);
        let text = m.render();
        assert_eq!(
            value(&text, "veil_connections_total{verdict=\"allowed\"}"),
            "2"
        );
        assert_eq!(
            value(&text, "veil_connections_total{verdict=\"refused\"}"),
            "1"
        );
        assert_eq!(value(&text, "veil_denials_total"), "1");
        assert_eq!(value(&text, "veil_injections_total"), "2");
        assert_eq!(value(&text, "veil_errors_total{kind=\"upstream\"}"), "1");
        assert_eq!(value(&text, "veil_errors_total{kind=\"api\"}"), "0");
        let bucket = |le: &str| {
            value(
                &text,
                &format!("veil_connection_setup_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.0005"), "0");
        assert_eq!(bucket("0.001"), "1");
        assert_eq!(bucket("0.05"), "2");
        assert_eq!(bucket("10"), "2");
        assert_eq!(bucket("+Inf"), "3");
        assert_eq!(value(&text, "veil_connection_setup_seconds_count"), "3");
        let sum: f64 = value(&text, "veil_connection_setup_seconds_sum")
            .parse()
            .unwrap();
        assert!((sum - 20.0308).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn every_sample_line_is_name_and_number() {
        let text = Metrics::default().render();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, number) = line.rsplit_once(' ').unwrap();
            assert!(number.parse::<f64>().is_ok(), "{line}");
        }
    }
}
