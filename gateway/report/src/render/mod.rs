//! The report's forms: text (a terminal), CSV (a spreadsheet), JSON (the [`UsageReport`] as is) and HTML (a
//! self-contained page for a head of office, [`render_html`]). Labels are Indonesian; codes and ids stay as they are.

mod html;

pub use html::{bandwidth_chart_svg, daily_chart_svg, render_html};

use std::fmt::Write;

use crate::model::{OpdUsage, UsageReport};

/// A form of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Json,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "text" => Ok(Format::Text),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "html" => Ok(Format::Html),
            other => Err(format!("`{other}` is not a report format (text, csv, json, html)")),
        }
    }
}

impl Format {
    /// The media type of the rendered form.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

/// The report in `format`.
pub fn render(report: &UsageReport, format: Format) -> String {
    match format {
        Format::Text => render_text(report),
        Format::Csv => render_csv(report),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Html => render_html(report),
    }
}

/// Indonesian month names.
pub(crate) fn month_name(month: &str) -> String {
    const NAMES: [&str; 12] = [
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ];
    let (year, m) = month.split_once('-').unwrap_or((month, "01"));
    let index = m.parse::<usize>().unwrap_or(1).clamp(1, 12) - 1;
    format!("{} {year}", NAMES[index])
}

/// `1.234.567` (Indonesian grouping).
pub(crate) fn number(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// `12,3 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit]).replace('.', ",")
    }
}

pub(crate) fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.2}").replace('.', ","))
}

pub(crate) fn label(usage: &OpdUsage) -> String {
    match (&usage.name, usage.opd.as_str()) {
        (_, "-") => "- (tanpa OPD)".to_string(),
        (Some(name), id) => format!("{id} ({name})"),
        (None, id) => id.to_string(),
    }
}

fn render_text(r: &UsageReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Laporan penggunaan Penghubung: {} (UTC{})", month_name(&r.month), r.utc_offset);
    if let Some(opd) = &r.opd {
        let _ = writeln!(out, "OPD: {opd}");
    }
    let v = &r.verification;
    if v.verified {
        let _ = writeln!(
            out,
            "Jejak audit: TERVERIFIKASI ({} segmen, {} catatan, {} checkpoint bertanda tangan)",
            v.segments, v.records_checked, v.checkpoints_verified
        );
    } else {
        let _ = writeln!(out, "Jejak audit: TIDAK TERVERIFIKASI: {} segmen ditandai, tidak dihitung", v.flagged.len());
        for f in &v.flagged {
            let _ = writeln!(
                out,
                "  ! {} ({}): {}: {} ({} permintaan tidak dihitung)",
                f.at, f.problem, f.file, f.message, f.exchanges_not_counted
            );
        }
    }
    for w in &v.warnings {
        let _ = writeln!(out, "  catatan: {w}");
    }
    let t = &r.total;
    let _ = writeln!(
        out,
        "\nTotal: {} permintaan ({} diizinkan, {} ditolak, {} galat, {} dibatasi), masuk {}, keluar {}, latensi p50/p95/p99 {}/{}/{} ms (galat ±{:.1} %)",
        number(t.requests),
        number(t.allowed),
        number(t.denied),
        number(t.errors),
        number(t.rate_limited),
        bytes(t.bytes_in),
        bytes(t.bytes_out),
        millis(t.latency_ms.p50),
        millis(t.latency_ms.p95),
        millis(t.latency_ms.p99),
        r.latency_relative_error * 100.0
    );
    for (title, list) in [("OPD pemanggil", &r.callers), ("OPD penyedia", &r.providers)] {
        let _ = writeln!(out, "\n{title}");
        let _ = writeln!(
            out,
            "  {:<28} {:>10} {:>9} {:>8} {:>8} {:>8} {:>11} {:>11} {:>8} {:>8} {:>8}  alokasi",
            "OPD",
            "permintaan",
            "diizinkan",
            "ditolak",
            "galat",
            "dibatasi",
            "masuk",
            "keluar",
            "p50 ms",
            "p95 ms",
            "p99 ms"
        );
        for u in list.iter() {
            let allocation = u
                .allocation
                .as_ref()
                .and_then(|a| {
                    a.bytes_used_percent.map(|p| format!("{p:.2} % dari {}", bytes(a.month_bytes.unwrap_or(0))))
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<28} {:>10} {:>9} {:>8} {:>8} {:>8} {:>11} {:>11} {:>8} {:>8} {:>8}  {allocation}",
                label(u),
                number(u.requests),
                number(u.allowed),
                number(u.denied),
                number(u.errors),
                number(u.rate_limited),
                bytes(u.bytes_in),
                bytes(u.bytes_out),
                millis(u.latency_ms.p50),
                millis(u.latency_ms.p95),
                millis(u.latency_ms.p99)
            );
            let codes: Vec<String> =
                u.denials_by_code.iter().chain(&u.errors_by_code).map(|(c, n)| format!("{c} {n}")).collect();
            if !codes.is_empty() {
                let _ = writeln!(out, "      kode: {}", codes.join(", "));
            }
            let top: Vec<String> =
                u.top_services.iter().take(3).map(|s| format!("{} {}", s.name, s.requests)).collect();
            let _ = writeln!(out, "      layanan teratas: {}", top.join(", "));
            let top: Vec<String> = u.top_callers.iter().take(3).map(|s| format!("{} {}", s.name, s.requests)).collect();
            let _ = writeln!(out, "      pemanggil teratas: {}", top.join(", "));
        }
    }
    let _ = writeln!(out, "\nHarian (semua OPD)");
    for d in t.daily.iter().filter(|d| d.requests > 0) {
        let _ = writeln!(
            out,
            "  {}  {:>10} permintaan  {:>8} galat  masuk {:>11}  keluar {:>11}",
            d.date,
            number(d.requests),
            number(d.errors),
            bytes(d.bytes_in),
            bytes(d.bytes_out)
        );
    }
    out
}

/// A CSV field: quoted when needed; a text starting like a formula is prefixed with `'`.
fn field(text: &str) -> String {
    let text = if text.len() > 1 && text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.into() };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn render_csv(r: &UsageReport) -> String {
    let mut out = String::from(
        "section,role,opd,name,date,code,requests,allowed,denied,errors,rate_limited,bytes_in,bytes_out,p50_ms,p95_ms,\
         p99_ms,month_bytes_allocated,bytes_used_percent,month,trail_verified\n",
    );
    let opt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    let tail = format!("{},{}", r.month, r.verification.verified);
    let groups =
        [("total", std::slice::from_ref(&r.total)), ("caller", &r.callers[..]), ("provider", &r.providers[..])];
    for (role, list) in groups {
        for u in list {
            let a = u.allocation.as_ref();
            let _ = writeln!(
                out,
                "summary,{role},{},{},,,{},{},{},{},{},{},{},{},{},{},{},{},{tail}",
                field(&u.opd),
                field(u.name.as_deref().unwrap_or("")),
                u.requests,
                u.allowed,
                u.denied,
                u.errors,
                u.rate_limited,
                u.bytes_in,
                u.bytes_out,
                opt(u.latency_ms.p50),
                opt(u.latency_ms.p95),
                opt(u.latency_ms.p99),
                a.and_then(|a| a.month_bytes).map(|b| b.to_string()).unwrap_or_default(),
                opt(a.and_then(|a| a.bytes_used_percent)),
            );
        }
    }
    for (role, list) in groups {
        for u in list {
            for (code, n) in u.denials_by_code.iter().chain(&u.errors_by_code) {
                let _ = writeln!(out, "code,{role},{},,,{},{n},,,,,,,,,,,,{tail}", field(&u.opd), field(code));
            }
        }
    }
    for (role, list) in groups {
        for u in list {
            for d in u.daily.iter().filter(|d| d.requests > 0) {
                let _ = writeln!(
                    out,
                    "daily,{role},{},,{},,{},,,{},,{},{},,,,,,{tail}",
                    field(&u.opd),
                    d.date,
                    d.requests,
                    d.errors,
                    d.bytes_in,
                    d.bytes_out
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_fields_read_as_indonesian_text() {
        assert_eq!(number(1_234_567), "1.234.567");
        assert_eq!(number(12), "12");
        assert_eq!(bytes(1536), "1,5 KiB");
        assert_eq!(month_name("2026-11"), "November 2026");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(field("-"), "-");
        assert_eq!("html".parse::<Format>().unwrap(), Format::Html);
        assert!("pdf".parse::<Format>().is_err());
    }
}
