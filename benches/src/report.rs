//! The load harness's result table: per target its requests/s, p50 and p99 latency, its throughput relative to
//! the direct (no proxy) run and to nginx, and its p99 relative to nginx ([`table`]); for the mTLS mode, which
//! has no direct run, the same against nginx only, with the rate column named by the caller (requests/s or
//! handshakes/s; [`table_vs_nginx`]). Pure formatting, measures nothing.
//!
//! Printed by `cargo run -p penghubung-benches --release --bin load [-- --mode mtls]`.

use std::fmt::Write;
use std::time::Duration;

use crate::loadgen::Stats;

/// One row: a target's name and what was measured.
#[derive(Clone, Debug)]
pub struct Row {
    pub target: String,
    pub stats: Stats,
}

/// Name of the row the "vs direct" column divides by.
pub const DIRECT: &str = "direct";
/// Name of the row the "vs nginx" columns divide by.
pub const NGINX: &str = "nginx";

/// `812 µs`, `1.48 ms`, `1.20 s`.
pub fn format_latency(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

/// The table as text (ratios are `-` when their reference row is missing).
pub fn table(rows: &[Row]) -> String {
    let find = |name: &str| rows.iter().find(|r| r.target == name).map(|r| &r.stats);
    let direct = find(DIRECT);
    let nginx = find(NGINX);
    let header = ["target", "req/s", "p50", "p99", "req/s vs direct", "req/s vs nginx", "p99 vs nginx", "errors"];
    let mut cells: Vec<[String; 8]> = vec![header.map(String::from)];
    for row in rows {
        let s = &row.stats;
        cells.push([
            row.target.clone(),
            format!("{:.0}", s.requests_per_sec),
            format_latency(s.p50),
            format_latency(s.p99),
            ratio(s.requests_per_sec, direct.map(|d| d.requests_per_sec)),
            ratio(s.requests_per_sec, nginx.map(|n| n.requests_per_sec)),
            ratio(s.p99.as_secs_f64(), nginx.map(|n| n.p99.as_secs_f64())),
            s.errors.to_string(),
        ]);
    }
    render(&cells)
}

/// A table without a direct run (the mTLS mode): per target its rate (column `rate`, e.g. `req/s` or
/// `handshakes/s`), p50, p99, the rate and the p99 relative to nginx, and the errors.
pub fn table_vs_nginx(rows: &[Row], rate: &str) -> String {
    let nginx = rows.iter().find(|r| r.target == NGINX).map(|r| &r.stats);
    let header = ["target", rate, "p50", "p99", &format!("{rate} vs nginx"), "p99 vs nginx", "errors"];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for row in rows {
        let s = &row.stats;
        cells.push(vec![
            row.target.clone(),
            format!("{:.0}", s.requests_per_sec),
            format_latency(s.p50),
            format_latency(s.p99),
            ratio(s.requests_per_sec, nginx.map(|n| n.requests_per_sec)),
            ratio(s.p99.as_secs_f64(), nginx.map(|n| n.p99.as_secs_f64())),
            s.errors.to_string(),
        ]);
    }
    render(&cells)
}

/// `a / b` as `1.25x`, or `-` without a (positive) reference.
fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    }
}

/// Aligns `cells` (first row: the header, underlined): the first column left, the others right.
fn render<R: AsRef<[String]>>(cells: &[R]) -> String {
    let columns = cells.first().map_or(0, |r| r.as_ref().len());
    let widths: Vec<usize> = (0..columns)
        .map(|c| cells.iter().map(|r| r.as_ref().get(c).map_or(0, |cell| cell.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in cells.iter().enumerate() {
        for (c, cell) in row.as_ref().iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push('\n');
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, rps: f64, p99_us: u64) -> Row {
        Row {
            target: target.into(),
            stats: Stats {
                requests_per_sec: rps,
                p50: Duration::from_micros(p99_us / 2),
                p99: Duration::from_micros(p99_us),
                ..Stats::default()
            },
        }
    }

    #[test]
    fn ratios_are_against_direct_and_nginx() {
        let text = table(&[row("direct", 100.0, 1000), row("penghubung", 50.0, 3000), row("nginx", 40.0, 2000)]);
        let line = text.lines().find(|l| l.starts_with("penghubung")).unwrap();
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells, ["penghubung", "50", "1.50", "ms", "3.00", "ms", "0.50x", "1.25x", "1.50x", "0"]);
    }

    #[test]
    fn the_mtls_table_compares_with_nginx_only() {
        let text = table_vs_nginx(&[row("penghubung", 50.0, 3000), row("nginx", 40.0, 2000)], "handshakes/s");
        assert!(text.starts_with("target"), "{text}");
        assert!(text.lines().next().unwrap().contains("handshakes/s vs nginx"), "{text}");
        let line = text.lines().find(|l| l.starts_with("penghubung")).unwrap();
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells, ["penghubung", "50", "1.50", "ms", "3.00", "ms", "1.25x", "1.50x", "0"]);
    }

    #[test]
    fn missing_references_give_dashes() {
        let text = table(&[row("penghubung", 50.0, 3000)]);
        assert!(text.lines().nth(2).unwrap().contains(" - "), "{text}");
    }
}
