//! Scenarios 8 and 9. The cost of a sandbox: the time from `veil run` to the workload's first
//! instruction, against a plain fork and exec. DNS: queries per second a sandbox gets
//! answered from veil's cache (dnsperf inside `veil run`), against the stand-in resolver
//! asked directly.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr},
    path::Path,
    process::{Command, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use veil_testkit::Daemon;

use super::{interrupt, report::Row, Bench, Target, HOST, STARTUP_TIMEOUT};

/// The stand-in resolver (dnsmasq) veil forwards to, on the host's loopback: veil asks it
/// from the host's namespace, and the direct runs ask it from there too.
pub const RESOLVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 153)), 53);

/// How many times scenario 8 starts a workload per target.
const STARTS: usize = 20;

/// Scenario 8, spawn to the workload's first instruction: `date +%s%N` prints when it ran.
pub fn startup(bench: &Bench, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<()> {
    let mut row = Row::new(
        "8. veil run: spawn to the workload's first instruction",
        "ms",
    );
    let date = date_command();
    for i in 0..STARTS {
        interrupt::check()?;
        for t in [Target::Direct, Target::Veil] {
            let mut cmd = match t {
                Target::Veil => bench.veil.run_command(&date),
                _ => {
                    let mut cmd = Command::new(&date[0]);
                    cmd.arg(&date[1]);
                    cmd
                }
            };
            row.push(
                t,
                first_instruction_ms(&mut cmd, &format!("start {i} ({t})"))?,
            );
        }
    }
    if let (Some(direct), Some(veil)) = (row.median(Target::Direct), row.median(Target::Veil)) {
        notes.push(format!(
            "Scenario 8: `veil run` adds {:.1} ms before the workload's first instruction \
             (median of {STARTS}; target at most 50 ms).",
            veil - direct
        ));
    }
    rows.push(row);
    Ok(())
}

/// The workload of the start-up scenarios: `date +%s%N` prints when it ran.
pub fn date_command() -> [String; 2] {
    ["date".to_string(), "+%s%N".to_string()]
}

/// Runs `cmd` (which ends in [`date_command`]) and returns the milliseconds from its spawn
/// to the time the workload printed; `what` names the run in errors.
pub fn first_instruction_ms(cmd: &mut Command, what: &str) -> Result<f64> {
    let started = now_ns()?;
    let out = cmd.stderr(Stdio::piped()).output()?;
    if !out.status.success() {
        bail!(
            "{what}: `{}` exited with {}: {}",
            crate::process::show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let first: u128 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("{what}: date printed no time"))?;
    Ok(first.saturating_sub(started) as f64 / 1e6)
}

/// Scenario 9, DNS queries per second, dnsperf asking for the upstream's name over and over:
/// directly of the stand-in resolver, and from inside a sandbox, answered from veil's cache.
pub fn dns(bench: &Bench, rows: &mut Vec<Row>) -> Result<()> {
    let _resolver = start_resolver(&bench.tmp)?;
    let queries = bench.tmp.join("dns-queries.txt");
    fs::write(&queries, format!("{HOST} A\n"))?;
    let mut qps = Row::new("9. DNS, 1 name over and over", "queries/s");
    let secs = bench.mode.secs.to_string();
    for run in 0..bench.mode.runs {
        for t in [Target::Direct, Target::Veil] {
            bench.begin_run(format_args!("dns: {t}"), run)?;
            let args: Vec<String> = [
                "dnsperf",
                "-s",
                &RESOLVER.ip().to_string(),
                "-d",
                &queries.display().to_string(),
                "-l",
                &secs,
                "-Q",
                "200000",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut cmd = match t {
                Target::Veil => bench.veil.run_command(&args),
                _ => {
                    let mut cmd = Command::new(&args[0]);
                    cmd.args(&args[1..]);
                    cmd
                }
            };
            let out = cmd.current_dir(&bench.tmp).output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            match parse_dnsperf_qps(&text) {
                Some(value) if out.status.success() => qps.push(t, value),
                _ => bail!(
                    "dnsperf ({t}) failed ({}):\n{text}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
    }
    rows.push(qps);
    Ok(())
}

/// Starts dnsmasq as the stand-in resolver: it answers the upstream's name and nothing else.
fn start_resolver(tmp: &Path) -> Result<Daemon> {
    let log = tmp.join("dnsmasq.log");
    let daemon = Daemon::spawn(
        "dnsmasq",
        Command::new("dnsmasq").args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--user=root",
            "--pid-file=",
            "--bind-interfaces",
            &format!("--listen-address={}", RESOLVER.ip()),
            &format!("--port={}", RESOLVER.port()),
            &format!("--address=/{HOST}/{}", super::UPSTREAM_IP),
            // dnsmasq gives its own answers a TTL of 0 unless told, which no cache keeps.
            "--local-ttl=300",
            "--log-facility=-",
        ]),
        &log,
    )?;
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    while std::net::UdpSocket::bind(RESOLVER).is_ok() {
        if std::time::Instant::now() > deadline {
            bail!(
                "dnsmasq did not listen on {RESOLVER}:\n{}",
                daemon.log_tail()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(daemon)
}

/// The `Queries per second:` figure of dnsperf's report.
pub fn parse_dnsperf_qps(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Queries per second:"))
        .and_then(|v| v.trim().parse().ok())
}

fn now_ns() -> Result<u128> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsperf_qps() {
        let out = "Statistics:\n\n  Queries sent:         100\n  Queries per second:   \
                   41234.567890\n\n  Average Latency (s):  0.000123\n";
        assert_eq!(parse_dnsperf_qps(out), Some(41234.56789));
        assert_eq!(parse_dnsperf_qps("nothing"), None);
    }
}
