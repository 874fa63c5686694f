//! Running h2load and reading its summary and per-request log.

use std::{
    fs,
    path::Path,
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::process;

/// What one h2load run reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Measured wall time, seconds.
    pub secs: f64,
    /// Requests per second.
    pub req_per_s: f64,
    /// Requests done.
    pub done: u64,
    /// Requests that got a response.
    pub succeeded: u64,
    /// Responses with a 2xx status.
    pub ok_2xx: u64,
    /// Bytes received (headers and bodies).
    pub bytes: u64,
    /// The negotiated protocol (`h2`, `http/1.1`).
    pub protocol: String,
}

/// Runs `cmd` (h2load, possibly wrapped in `veil run`), checks that every request got a 2xx
/// response, and returns the summary.
pub fn run(cmd: &mut Command) -> Result<Summary> {
    let line = process::show(cmd);
    let out = output_within(cmd, Duration::from_secs(600))
        .with_context(|| format!("running `{line}`"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let summary =
        parse(&text).with_context(|| format!("reading the output of `{line}`:\n{text}"))?;
    // A timed run stops with requests in flight, which h2load may count as done without a
    // response: allow 1% of those, but nothing else.
    if summary.ok_2xx == 0 || summary.ok_2xx * 100 < summary.done * 99 {
        bail!(
            "`{line}`: {} of {} requests got a 2xx response:\n{text}{}",
            summary.ok_2xx,
            summary.done,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(summary)
}

/// Runs `cmd` to completion, killing it if it takes longer than `limit`.
fn output_within(cmd: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let started = Instant::now();
    while child.try_wait()?.is_none() {
        if let Err(e) = super::interrupt::check() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        if started.elapsed() > limit {
            // A sandboxed h2load left behind is killed with the sandbox by `veil reset`.
            let _ = child.kill();
            let _ = child.wait();
            bail!("it did not finish within {limit:?}; killed it");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(child.wait_with_output()?)
}

/// Parses h2load's summary.
pub fn parse(text: &str) -> Result<Summary> {
    let mut s = Summary::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("finished in ") {
            let mut parts = rest.split(", ");
            s.secs = parse_duration(parts.next().unwrap_or_default())?;
            s.req_per_s = number_before(parts.next().unwrap_or_default(), " req/s")?;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            s.done = count(rest, " done")?;
            s.succeeded = count(rest, " succeeded")?;
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            s.ok_2xx = count(rest, " 2xx")?;
        } else if let Some(rest) = line.strip_prefix("traffic: ") {
            // `traffic: 1.00GB (1073741824) total, ...`
            let inner = rest
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(n, _)| n)
                .context("no byte count in the traffic line")?;
            s.bytes = inner.parse()?;
        } else if let Some(rest) = line.strip_prefix("Application protocol: ") {
            s.protocol = rest.to_string();
        }
    }
    if s.secs == 0.0 {
        bail!("no `finished in` line");
    }
    Ok(s)
}

/// `5.00s`, `12.3ms`, `800us` in seconds.
fn parse_duration(text: &str) -> Result<f64> {
    let text = text.trim();
    for (unit, scale) in [("ms", 1e-3), ("us", 1e-6), ("s", 1.0)] {
        if let Some(n) = text.strip_suffix(unit) {
            return Ok(n.parse::<f64>()? * scale);
        }
    }
    bail!("unknown duration {text:?}")
}

/// The number right before `suffix` in `text`.
fn number_before(text: &str, suffix: &str) -> Result<f64> {
    let n = text
        .strip_suffix(suffix)
        .with_context(|| format!("{text:?} does not end in {suffix:?}"))?;
    Ok(n.trim().parse()?)
}

/// The count in a comma-separated `N label` list.
fn count(text: &str, label: &str) -> Result<u64> {
    text.split(", ")
        .find_map(|part| part.strip_suffix(label))
        .with_context(|| format!("no {label:?} in {text:?}"))?
        .trim()
        .parse()
        .map_err(Into::into)
}

/// The per-request latencies, in milliseconds, from an h2load `--log-file` (third column:
/// microseconds until the end of the response), sorted.
pub fn latencies_ms(log: &Path) -> Result<Vec<f64>> {
    let text = fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let mut ms: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split('\t').nth(2))
        .filter_map(|us| us.trim().parse::<f64>().ok())
        .map(|us| us / 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

/// The `q` quantile (0..=1) of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "starting benchmark...
Application protocol: h2

finished in 5.00s, 12345.60 req/s, 1.23MB/s
requests: 61728 total, 61728 started, 61728 done, 61728 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 61728 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 1.00GB (1073741824) total, 1.23MB (1234) headers (space savings 90.00%), 1.00GB (1073741824) data
";

    #[test]
    fn parses_summary() {
        let s = parse(OUTPUT).expect("parses");
        assert_eq!(s.secs, 5.0);
        assert_eq!(s.req_per_s, 12345.6);
        assert_eq!((s.done, s.succeeded, s.ok_2xx), (61728, 61728, 61728));
        assert_eq!(s.bytes, 1073741824);
        assert_eq!(s.protocol, "h2");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("12ms").ok(), Some(0.012));
        assert_eq!(parse_duration("2.5s").ok(), Some(2.5));
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
