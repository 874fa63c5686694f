//! The results: medians with min and max per target, ratios, written as JSON and as a
//! markdown table under target/bench/.

use std::{fs, path::Path, process::Command};

use anyhow::Result;
use serde_json::json;

use super::Target;

/// One measured quantity of one scenario, with every run's value per target.
#[derive(Debug, Clone)]
pub struct Row {
    /// The scenario.
    pub scenario: String,
    /// What is measured, with its unit.
    pub metric: String,
    /// Values per target, in [`Target::ALL`] order; empty where a target was not measured.
    values: [Vec<f64>; 4],
}

impl Row {
    /// An empty row.
    pub fn new(scenario: &str, metric: &str) -> Self {
        Self {
            scenario: scenario.to_string(),
            metric: metric.to_string(),
            values: Default::default(),
        }
    }

    /// Adds one run's value for target `t`.
    pub fn push(&mut self, t: Target, value: f64) {
        self.values[t.index()].push(value);
    }

    /// Every run's value for target `t`.
    pub fn values(&self, t: Target) -> &[f64] {
        &self.values[t.index()]
    }

    /// The median of target `t`'s values.
    pub fn median(&self, t: Target) -> Option<f64> {
        median(self.values(t))
    }

    /// `a`'s median over `b`'s.
    pub fn ratio(&self, a: Target, b: Target) -> Option<f64> {
        match (self.median(a), self.median(b)) {
            (Some(x), Some(y)) if y != 0.0 => Some(x / y),
            _ => None,
        }
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// A number with about four significant digits.
fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// `median (min–max)`, or `median` for one value, or `–`.
fn cell(values: &[f64]) -> String {
    let Some(m) = median(values) else {
        return "–".to_string();
    };
    if values.len() < 2 {
        return num(m);
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} ({}–{})", num(m), num(min), num(max))
}

/// The machine the benchmark ran on: `nproc`, CPU model, kernel.
pub fn machine() -> serde_json::Value {
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({ "nproc": nproc, "cpu": cpu, "kernel": kernel })
}

/// The markdown table.
pub fn markdown(rows: &[Row], machine: &serde_json::Value, mode: &str, runs: usize) -> String {
    let mut md = format!(
        "Machine: {} CPUs ({}), kernel {}. Mode: {mode}, median of {runs} run(s), (min–max).\n\n\
         | scenario | metric | direct | veil | nginx | mitmproxy | veil/direct | veil/nginx | \
         veil/mitmproxy |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        machine["nproc"],
        machine["cpu"].as_str().unwrap_or_default(),
        machine["kernel"].as_str().unwrap_or_default(),
    );
    let ratio = |r: Option<f64>| r.map_or("–".to_string(), |x| format!("{x:.2}x"));
    for row in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.scenario,
            row.metric,
            cell(row.values(Target::Direct)),
            cell(row.values(Target::Veil)),
            cell(row.values(Target::Nginx)),
            cell(row.values(Target::Mitmproxy)),
            ratio(row.ratio(Target::Veil, Target::Direct)),
            ratio(row.ratio(Target::Veil, Target::Nginx)),
            ratio(row.ratio(Target::Veil, Target::Mitmproxy)),
        ));
    }
    md
}

/// Writes results.json and results.md into `dir`.
pub fn write(
    dir: &Path,
    rows: &[Row],
    mode: &str,
    runs: usize,
    notes: &[String],
) -> Result<String> {
    fs::create_dir_all(dir)?;
    let machine = machine();
    let mut md = markdown(rows, &machine, mode, runs);
    for note in notes {
        md.push_str(&format!("\n{note}\n"));
    }
    let rows_json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut targets = serde_json::Map::new();
            for t in Target::ALL {
                if !r.values(t).is_empty() {
                    targets.insert(
                        t.name().to_string(),
                        json!({ "median": r.median(t), "runs": r.values(t) }),
                    );
                }
            }
            json!({
                "scenario": r.scenario, "metric": r.metric, "targets": targets,
                "veil_over_direct": r.ratio(Target::Veil, Target::Direct),
                "veil_over_nginx": r.ratio(Target::Veil, Target::Nginx),
                "veil_over_mitmproxy": r.ratio(Target::Veil, Target::Mitmproxy),
            })
        })
        .collect();
    let doc = json!({ "machine": machine, "mode": mode, "runs": runs, "rows": rows_json, "notes": notes });
    fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    fs::write(dir.join("results.md"), &md)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn cells_and_ratios() {
        let mut row = Row::new("s", "req/s");
        for v in [100.0, 200.0, 300.0] {
            row.push(Target::Direct, v);
        }
        row.push(Target::Veil, 50.0);
        assert_eq!(cell(row.values(Target::Direct)), "200.0 (100.0–300.0)");
        assert_eq!(cell(row.values(Target::Mitmproxy)), "–");
        assert_eq!(row.ratio(Target::Veil, Target::Direct), Some(0.25));
        assert_eq!(row.ratio(Target::Veil, Target::Mitmproxy), None);
    }

    #[test]
    fn table_has_a_column_per_target_and_ratio() {
        let mut row = Row::new("s", "req/s");
        row.push(Target::Veil, 50.0);
        row.push(Target::Nginx, 100.0);
        let md = markdown(
            &[row],
            &json!({"nproc": 2, "cpu": "x", "kernel": "y"}),
            "quick",
            1,
        );
        assert!(
            md.contains("| veil/direct | veil/nginx | veil/mitmproxy |"),
            "{md}"
        );
        assert!(
            md.contains("| s | req/s | – | 50.00 | 100.0 | – | – | 0.50x | – |"),
            "{md}"
        );
    }
}
