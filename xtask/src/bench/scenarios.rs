//! The scenarios: each runs h2load for every target, interleaved run by run so that noise from
//! the rest of the machine spreads evenly, and adds rows to the report.

use std::{cell::Cell, fs};

use anyhow::{bail, Result};

use super::{
    containers,
    h2load::{self, Summary},
    idle, interrupt, kernel,
    report::Row,
    sandbox, sigv4, Bench, Target, HOST,
};

/// The scenarios, numbered as in the issue and the report (`--only 1,5` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// HTTPS keep-alive, 64 connections, small responses, one placeholder per request.
    #[value(name = "1")]
    KeepAlive,
    /// HTTPS with a new connection (a full TLS handshake on both legs) per request.
    #[value(name = "2")]
    NewConnections,
    /// One large download and one large upload.
    #[value(name = "3")]
    LargeTransfers,
    /// Requests/s through veil with 1, 100 and 10,000 live secrets.
    #[value(name = "4")]
    ManySecrets,
    /// Many idle keep-alive connections, and veil's memory per connection.
    #[value(name = "5")]
    IdleConnections,
    /// The kernel programs' cost per steered connect (measured during 2).
    #[value(name = "6")]
    Kernel,
    /// HTTP/2, 100 concurrent streams on one connection.
    #[value(name = "7")]
    H2Streams,
    /// The time from `veil run` to the workload's first instruction.
    #[value(name = "8")]
    Startup,
    /// DNS queries per second answered from veil's cache.
    #[value(name = "9")]
    Dns,
    /// The time from `podman run` to the container's first instruction, with veil's OCI hook
    /// and without.
    #[value(name = "10")]
    ContainerStartup,
    /// An S3-style upload with every chunk signed (SigV4 streaming), re-signed by veil.
    #[value(name = "11")]
    SigV4Upload,
}

/// Runs every selected scenario, in priority order.
pub fn run_all(bench: &Bench, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<()> {
    // First, while veil's heap holds nothing from other scenarios that could absorb the growth.
    if bench.selected(Scenario::IdleConnections) {
        idle::run(bench, rows, notes)?;
    }
    if bench.selected(Scenario::KeepAlive) {
        keep_alive(bench, rows, notes)?;
        json_body(bench, rows, notes)?;
    }
    if bench.selected(Scenario::NewConnections) || bench.selected(Scenario::Kernel) {
        new_connections(bench, rows)?;
    }
    if bench.selected(Scenario::H2Streams) {
        h2_streams(bench, rows)?;
    }
    if bench.selected(Scenario::LargeTransfers) {
        large_transfers(bench, rows)?;
    }
    if bench.selected(Scenario::SigV4Upload) {
        sigv4::upload(bench, rows)?;
    }
    // Before 4, which leaves thousands of secrets behind: a sandbox's start-up grows with
    // the number of live secrets, and these rows are for the one secret the others use.
    if bench.selected(Scenario::Startup) {
        sandbox::startup(bench, rows, notes)?;
    }
    if bench.selected(Scenario::ContainerStartup) {
        containers::startup(bench, rows, notes)?;
    }
    if bench.selected(Scenario::Dns) {
        sandbox::dns(bench, rows)?;
    }
    if bench.selected(Scenario::ManySecrets) {
        many_secrets(bench, rows, notes)?;
    }
    Ok(())
}

/// The arguments of a timed run: one h2load thread, warm-up, the placeholder header.
fn timed(bench: &Bench, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-t".into(),
        "1".into(),
        "-D".into(),
        bench.mode.secs.to_string(),
        "--warm-up-time".into(),
        "1".into(),
        "-H".into(),
        bench.auth_header(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs `args` against `path` for each of `targets`, `runs` times, calling `record` with each
/// result.
fn each_run(
    bench: &Bench,
    what: &str,
    path: &str,
    targets: &[Target],
    args: impl Fn(Target, usize) -> Vec<String>,
    mut record: impl FnMut(Target, usize, &Summary) -> Result<()>,
) -> Result<()> {
    for run in 0..bench.mode.runs {
        for &t in targets {
            bench.begin_run(format_args!("{what}: {t}"), run)?;
            let summary = h2load::run(&mut bench.h2load(t, &args(t, run), path))?;
            println!(
                "  {:.0} requests/s, {:.1} MiB/s",
                summary.req_per_s,
                summary.bytes as f64 / summary.secs / f64::from(1 << 20)
            );
            record(t, run, &summary)?;
        }
    }
    Ok(())
}

/// 1. HTTPS keep-alive, small responses, 64 connections, one placeholder per request.
fn keep_alive(bench: &Bench, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<()> {
    let name = "1. HTTPS keep-alive, 64 conns, small responses";
    let mut rps = Row::new(name, "requests/s");
    let mut p50 = Row::new(name, "latency p50 (ms)");
    let mut p99 = Row::new(name, "latency p99 (ms)");
    let log = |t: Target, run: usize| bench.tmp.join(format!("keepalive-{t}-{run}.log"));
    each_run(
        bench,
        "keep-alive",
        "/",
        &Target::ALL,
        |t, run| {
            let log = log(t, run).display().to_string();
            timed(bench, &["--h1", "-c", "64", "--log-file", &log])
        },
        |t, run, s| {
            rps.push(t, s.req_per_s);
            latencies(&log(t, run), t, &mut p50, &mut p99)
        },
    )?;
    let half = rps.median(Target::Veil).map(|peak| peak / 2.0);
    let sandboxed = rps.median(Target::Veil);
    rows.extend([rps, p50, p99]);
    if let Some(half) = half {
        rows.extend(latency_at(bench, half, notes)?);
    }
    let in_container = containers::keep_alive(bench, &timed(bench, &["--h1", "-c", "64"]))?;
    if let (Some(run), Some(container)) = (sandboxed, in_container.median(Target::Veil)) {
        notes.push(format!(
            "Scenario 1c: h2load in a Podman container sandboxed by veil's hook carries \
             {container:.0} requests/s through veil, {:.2}x the `veil run` sandbox's {run:.0}.",
            container / run
        ));
    }
    rows.push(in_container);
    Ok(())
}

/// 1, with a 4 KiB JSON body per request (POST) carrying a second secret's placeholder at
/// `/auth/key`, beside the header placeholder: requests/s directly and through veil with that
/// secret declared for headers only (the body passes unscanned) and with a json slot at
/// `/auth/key` (veil reads the body, swaps the value and corrects `Content-Length`), run by
/// run in turn, and the body slot's cost as a note.
/// The secret exists only for this variant, so the other scenarios count theirs as before.
fn json_body(bench: &Bench, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<()> {
    let value = format!("bench-json-secret-{}", std::process::id());
    let (id, placeholder) =
        bench
            .veil
            .create_json_secret("bench-json", "BENCH_JSON_KEY", &value, HOST, "/auth/key")?;
    let measured = json_body_runs(bench, &id, &placeholder, rows, notes);
    bench.veil.delete_secret(&id)?;
    measured
}

/// The runs of [`json_body`], with secret `id`'s `placeholder` in the body.
fn json_body_runs(
    bench: &Bench,
    id: &str,
    placeholder: &str,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let body_file = bench.tmp.join("body-4k.json");
    let head = format!("{{\"auth\":{{\"key\":\"{placeholder}\"}},\"pad\":\"");
    let pad = 4096usize.saturating_sub(head.len() + 2);
    fs::write(&body_file, format!("{head}{}\"}}", "a".repeat(pad)))?;
    let body = body_file.display().to_string();
    let args = [
        "--h1",
        "-c",
        "64",
        "-d",
        &body,
        "-H",
        "content-type: application/json",
    ];
    let name = "1. HTTPS keep-alive, 64 conns, 4 KiB JSON body";
    let mut header_only = Row::new(&format!("{name}, header placeholder only"), "requests/s");
    let mut json_slot = Row::new(
        &format!("{name}, and a placeholder in a json slot"),
        "requests/s",
    );
    let mut variants = [
        (
            "header only",
            serde_json::json!(["headers"]),
            &mut header_only,
        ),
        (
            "json slot",
            serde_json::json!([{"json": ["/auth/key"]}]),
            &mut json_slot,
        ),
    ];
    for run in 0..bench.mode.runs {
        for (label, slots, row) in &mut variants {
            bench.veil.set_slots(id, slots.clone())?;
            for t in [Target::Direct, Target::Veil] {
                bench.begin_run(
                    format_args!("keep-alive with a JSON body, {label}: {t}"),
                    run,
                )?;
                let summary = h2load::run(&mut bench.h2load(t, &timed(bench, &args), "/upload"))?;
                row.push(t, summary.req_per_s);
            }
        }
    }
    if let (Some(header), Some(json)) = (
        header_only.median(Target::Veil),
        json_slot.median(Target::Veil),
    ) {
        notes.push(format!(
            "Scenario 1, 4 KiB JSON body: the json slot carries {:.2}x the requests/s of the \
             same requests with the secret declared for headers only (the body slot costs \
             {:.0}%).",
            json / header,
            (1.0 - json / header) * 100.0
        ));
    }
    rows.extend([header_only, json_slot]);
    Ok(())
}

/// Latency with the 64 keep-alive connections offering `rate` requests/s in all (half of
/// veil's peak), directly, through veil and through the nginx peer; mitmproxy cannot carry
/// that load.
fn latency_at(bench: &Bench, rate: f64, notes: &mut Vec<String>) -> Result<Vec<Row>> {
    let name = format!("1. HTTPS keep-alive, 64 conns, {rate:.0} requests/s (half of veil's peak)");
    let mut p50 = Row::new(&name, "latency p50 (ms)");
    let mut p99 = Row::new(&name, "latency p99 (ms)");
    let per_client = ((rate / 64.0).floor() as u64).max(1).to_string();
    let log = |t: Target, run: usize| bench.tmp.join(format!("half-{t}-{run}.log"));
    each_run(
        bench,
        "keep-alive at half of veil's peak",
        "/",
        &[Target::Direct, Target::Veil, Target::Nginx],
        |t, run| {
            let log = log(t, run).display().to_string();
            timed(
                bench,
                &["--h1", "-c", "64", "--rps", &per_client, "--log-file", &log],
            )
        },
        |t, run, _| latencies(&log(t, run), t, &mut p50, &mut p99),
    )?;
    if let (Some(direct), Some(veil)) = (p99.median(Target::Direct), p99.median(Target::Veil)) {
        notes.push(format!(
            "Scenario 1: p99 latency added by veil at half of its peak load ({rate:.0} \
             requests/s): {:.3} ms.",
            veil - direct
        ));
        if let Some(nginx) = p99.median(Target::Nginx) {
            notes.push(format!(
                "Scenario 1: p99 latency added by the nginx peer at the same load: {:.3} ms.",
                nginx - direct
            ));
        }
    }
    Ok(vec![p50, p99])
}

/// Adds the median and the 99th percentile of the request latencies h2load logged in `log`
/// (which is then removed) to target `t`'s values in `p50` and `p99`.
fn latencies(log: &std::path::Path, t: Target, p50: &mut Row, p99: &mut Row) -> Result<()> {
    let lat = h2load::latencies_ms(log)?;
    let _ = fs::remove_file(log);
    if let (Some(a), Some(b)) = (h2load::quantile(&lat, 0.5), h2load::quantile(&lat, 0.99)) {
        p50.push(t, a);
        p99.push(t, b);
    }
    Ok(())
}

/// 2. HTTPS with a new connection (and a full TLS handshake on both legs) per request.
fn new_connections(bench: &Bench, rows: &mut Vec<Row>) -> Result<()> {
    let mut cps = Row::new(
        "2. HTTPS, new connection per request, 64 clients",
        "connections/s",
    );
    let mut per_connect = Row::new(
        "6. kernel: veil_connect4 per steered connect",
        "ns (bpf_stats)",
    );
    let mut all_progs = Row::new(
        "6. kernel: all veil programs per steered connect",
        "ns (bpf_stats)",
    );
    let _stats = kernel::StatsEnabled::new()?;
    let before = Cell::new(None);
    let cgroup = bench.veil.cgroup_parent();
    each_run(
        bench,
        "new connection per request",
        "/",
        &Target::ALL,
        |t, _| {
            if t == Target::Veil {
                before.set(kernel::totals(cgroup).ok());
            }
            // h2load hangs at the end of a timed run when the server closes every connection,
            // so this one counts requests: about `secs` seconds' worth for each target.
            let per_sec = if t == Target::Mitmproxy { 100 } else { 1000 };
            let n = (per_sec * bench.mode.secs).to_string();
            let mut args: Vec<String> = [
                "--h1",
                "-c",
                "64",
                "-t",
                "1",
                "-n",
                &n,
                "-H",
                "connection: close",
                "-H",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.push(bench.auth_header());
            args
        },
        |t, _, s| {
            cps.push(t, s.req_per_s);
            if let (Target::Veil, Some(a)) = (t, before.take()) {
                let b = kernel::totals(cgroup)?;
                let runs = b.connect4_runs.saturating_sub(a.connect4_runs);
                if runs > 0 {
                    let per_run = |ns: u64| ns as f64 / runs as f64;
                    per_connect.push(Target::Veil, per_run(b.connect4_ns - a.connect4_ns));
                    all_progs.push(Target::Veil, per_run(b.all_ns - a.all_ns));
                }
            }
            Ok(())
        },
    )?;
    rows.extend([cps, per_connect, all_progs]);
    Ok(())
}

/// 7. HTTP/2, 100 concurrent streams on one connection.
fn h2_streams(bench: &Bench, rows: &mut Vec<Row>) -> Result<()> {
    let mut rps = Row::new("7. HTTP/2, 100 streams on 1 connection", "requests/s");
    each_run(
        bench,
        "h2 streams",
        "/",
        &Target::ALL,
        |_, _| timed(bench, &["-c", "1", "-m", "100"]),
        |t, _, s| {
            if s.protocol != "h2" {
                bail!("{t}: negotiated {:?}, not h2", s.protocol);
            }
            rps.push(t, s.req_per_s);
            Ok(())
        },
    )?;
    rows.push(rps);
    Ok(())
}

/// 3. One large download and one large upload.
fn large_transfers(bench: &Bench, rows: &mut Vec<Row>) -> Result<()> {
    let size = bench.mode.big_bytes;
    let mib = size as f64 / f64::from(1 << 20);
    let name = format!("3. one {} MiB transfer, HTTP/1.1", mib);
    let mut down = Row::new(&name, "download MiB/s");
    let mut up = Row::new(&name, "upload MiB/s");
    let single = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["--h1", "-c", "1", "-n", "1", "-t", "1", "-H"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(bench.auth_header());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    each_run(
        bench,
        "download",
        "/big",
        &Target::ALL,
        |_, _| single(&[]),
        |t, _, s| {
            if s.bytes < size {
                bail!("{t}: received {} bytes, expected at least {size}", s.bytes);
            }
            down.push(t, s.bytes as f64 / f64::from(1 << 20) / s.secs);
            Ok(())
        },
    )?;
    let upload = bench.tmp.join("upload.bin");
    fs::File::create(&upload)?.set_len(size)?;
    let upload_arg = upload.display().to_string();
    each_run(
        bench,
        "upload",
        "/upload",
        &Target::ALL,
        |_, _| single(&["-d", &upload_arg]),
        |t, _, s| {
            up.push(t, mib / s.secs);
            Ok(())
        },
    )?;
    let _ = fs::remove_file(&upload);
    rows.extend([down, up]);
    Ok(())
}

/// 4. requests/s through veil with 1, 100 and 10,000 (1,000 in quick mode) live secrets.
fn many_secrets(bench: &Bench, rows: &mut Vec<Row>, notes: &mut Vec<String>) -> Result<()> {
    let top = if bench.mode.name == "quick" {
        1_000
    } else {
        10_000
    };
    let mut live = 1;
    let mut first = None;
    for count in [1, 100, top] {
        let started = std::time::Instant::now();
        while live < count {
            interrupt::check()?;
            let name = format!("bench-extra-{live}");
            let host = format!("other-{live}.example.test");
            bench
                .veil
                .create_secret(&name, &format!("BENCH_EXTRA_{live}"), &name, &host)?;
            live += 1;
        }
        if started.elapsed().as_secs() > 0 {
            println!("created secrets up to {count} in {:.1?}", started.elapsed());
        }
        let mut row = Row::new(
            &format!("4. {count} live secrets, keep-alive, 64 conns"),
            "requests/s",
        );
        for run in 0..bench.mode.runs {
            println!("{count} secrets: veil, run {}/{}", run + 1, bench.mode.runs);
            let args = timed(bench, &["--h1", "-c", "64"]);
            let summary = h2load::run(&mut bench.h2load(Target::Veil, &args, "/"))?;
            row.push(Target::Veil, summary.req_per_s);
        }
        if count == 1 {
            first = row.median(Target::Veil);
        } else if let (Some(a), Some(b)) = (first, row.median(Target::Veil)) {
            notes.push(format!(
                "Scenario 4: requests/s with {count} live secrets / with 1: {:.2}x.",
                b / a
            ));
        }
        rows.push(row);
    }
    Ok(())
}
