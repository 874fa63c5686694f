//! Scenario 11: an S3-style PUT with a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body (every
//! chunk signed), directly with the real key and from a sandbox holding only an aws secret's
//! placeholders, where veil re-signs the request and every chunk on the way. The upstream's
//! `/upload` reads the whole body; signatures are checked by the tests
//! (`tests/aws.rs`, against botocore), not here.

use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{report::Row, Bench, Target, HOST};

/// The uploader (Python: the same client both ways).
const UPLOADER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bench/sigv4_put.py");

/// The chunk size of the upload (the Java SDK's default is 128 KiB).
const CHUNK: usize = 128 * 1024;

/// Scenario 11: MiB/s of the upload per target.
pub fn upload(bench: &Bench, rows: &mut Vec<Row>) -> Result<()> {
    let key_id = format!(
        "AKIA{}",
        veil_testkit::random_token("")?[..16].to_ascii_uppercase()
    );
    let secret_key = veil_testkit::random_token("")?;
    let id = bench.veil.create_aws_secret(&key_id, &secret_key, HOST)?;
    let measured = runs(bench, &key_id, &secret_key, rows);
    bench.veil.delete_secret(&id)?;
    measured
}

fn runs(bench: &Bench, key_id: &str, secret_key: &str, rows: &mut Vec<Row>) -> Result<()> {
    let size = bench.mode.big_bytes.min(64 << 20);
    let mut row = Row::new(
        &format!(
            "11. S3-style PUT of {} MiB, SigV4 streaming (every chunk re-signed)",
            size >> 20
        ),
        "MiB/s",
    );
    let args = vec![
        "python3".to_string(),
        UPLOADER.into(),
        bench.upstream.ip().to_string(),
        bench.upstream.port().to_string(),
        HOST.into(),
        size.to_string(),
        CHUNK.to_string(),
    ];
    for run in 0..bench.mode.runs {
        for t in [Target::Direct, Target::Veil] {
            bench.begin_run(format_args!("sigv4 upload: {t}"), run)?;
            let mut cmd = match t {
                Target::Veil => bench.veil.run_command(&args),
                _ => {
                    let mut cmd = Command::new(&args[0]);
                    cmd.args(&args[1..])
                        .env("AWS_ACCESS_KEY_ID", key_id)
                        .env("AWS_SECRET_ACCESS_KEY", secret_key);
                    cmd
                }
            };
            let out = cmd.output()?;
            let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
                format!(
                    "sigv4 upload ({t}) printed no report: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
            if report["status"] != "200" {
                bail!("sigv4 upload ({t}) was answered {}", report["status"]);
            }
            let seconds = report["seconds"].as_f64().context("no seconds")?;
            row.push(t, size as f64 / f64::from(1 << 20) / seconds);
        }
    }
    rows.push(row);
    Ok(())
}
