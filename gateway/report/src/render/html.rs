//! The HTML form: one self-contained page (inline CSS, no script, no external asset) for a head of office,
//! with two charts drawn here as SVG: the daily requests of the busiest caller OPDs, and each caller OPD's
//! traffic against its monthly `[bandwidth]` allocation. Every text from the trail or the store is escaped.

use std::fmt::Write;

use super::{bytes, label, millis, month_name, number};
use crate::model::{OpdUsage, UsageReport};

/// OPDs drawn in the daily chart; the rest are summed as "lainnya".
const SERIES: usize = 6;
const COLOURS: [&str; 7] = ["#1f6fb2", "#d9822b", "#2e8b57", "#b23a48", "#7b5ea7", "#8c6d1f", "#777777"];

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,'Segoe UI',Roboto,Arial,sans-serif;margin:2rem auto;max-width:1100px;\
color:#222;padding:0 1rem}h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;\
border-bottom:2px solid #1f6fb2;padding-bottom:.2rem}.sub{color:#555}.ok{background:#e6f4ea;border-left:6px solid \
#2e8b57;padding:.6rem 1rem}.bad{background:#fdecea;border-left:6px solid #b23a48;padding:.6rem 1rem}\
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{flex:1;min-width:150px;background:#f4f7fb;border-radius:8px;\
padding:.8rem}.card b{display:block;font-size:1.4rem}table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}\
th{background:#f4f7fb}small{color:#666}svg{max-width:100%;height:auto}.codes{color:#555;font-size:.8rem;text-align:left}";

/// The report as a self-contained HTML page.
pub fn render_html(r: &UsageReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("Laporan Penggunaan Penghubung — {}", month_name(&r.month));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"id\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = write!(out, "<h1>{}</h1>\n<p class=\"sub\">", esc(&title));
    if let Some(opd) = &r.opd {
        let _ = write!(out, "OPD: <b>{}</b> · ", esc(opd));
    }
    let _ = writeln!(
        out,
        "Hari dihitung dalam UTC{} · dibuat {} · dasar: Perbup Lampung Timur 16/2023 Pasal 21 (pemantauan dan evaluasi \
         bulanan penggunaan setiap OPD)</p>",
        esc(&r.utc_offset),
        esc(&r.generated_at)
    );
    verification(&mut out, r);
    let t = &r.total;
    let _ = writeln!(
        out,
        "<div class=\"cards\"><div class=\"card\">Permintaan<b>{}</b></div><div class=\"card\">Diizinkan<b>{}</b></div>\
         <div class=\"card\">Ditolak<b>{}</b></div><div class=\"card\">Galat<b>{}</b></div><div class=\"card\">Dibatasi \
         (batas laju)<b>{}</b></div><div class=\"card\">Data masuk / keluar<b>{} / {}</b></div><div class=\"card\">\
         Latensi p95<b>{} ms</b></div></div>",
        number(t.requests),
        number(t.allowed),
        number(t.denied),
        number(t.errors),
        number(t.rate_limited),
        esc(&bytes(t.bytes_in)),
        esc(&bytes(t.bytes_out)),
        millis(t.latency_ms.p95)
    );
    let _ = writeln!(out, "<h2>Permintaan harian per OPD pemanggil</h2>");
    daily_chart(&mut out, r);
    let _ = writeln!(out, "<h2>Bandwidth terhadap alokasi bulanan</h2>");
    bandwidth_chart(&mut out, r);
    for (heading, list) in [("OPD pemanggil", &r.callers), ("OPD penyedia layanan", &r.providers)] {
        let _ = writeln!(out, "<h2>{heading}</h2>");
        table(&mut out, list);
    }
    let _ = writeln!(
        out,
        "<p><small>Latensi: persentil dari histogram berbucket logaritmik, galat relatif paling besar ±{:.1} %. \
         \"-\" berarti tanpa OPD: pemeriksaan kesehatan, penemuan layanan, rute tak dikenal, pemanggil tak \
         teridentifikasi. Dihitung dari jejak audit yang berantai hash dan bertanda tangan.</small></p>\n</body></html>",
        r.latency_relative_error * 100.0
    );
    out
}

fn verification(out: &mut String, r: &UsageReport) {
    let v = &r.verification;
    if v.verified {
        let _ = writeln!(
            out,
            "<p class=\"ok\"><b>Jejak audit terverifikasi.</b> {} segmen, {} catatan diperiksa, {} checkpoint \
             bertanda tangan sah.{}</p>",
            v.segments,
            number(v.records_checked),
            number(v.checkpoints_verified),
            if v.unsigned_records > 0 {
                format!(" {} catatan terakhir belum ditandatangani checkpoint.", number(v.unsigned_records))
            } else {
                String::new()
            }
        );
    } else {
        let _ = writeln!(
            out,
            "<div class=\"bad\"><b>PERINGATAN: jejak audit TIDAK terverifikasi.</b> Segmen berikut gagal diperiksa; \
             isinya tidak dihitung dalam laporan ini.<ul>"
        );
        for f in &v.flagged {
            let _ = writeln!(
                out,
                "<li><b>{}</b> ({}): {} — {} permintaan tidak dihitung</li>",
                esc(&f.at),
                esc(&f.problem),
                esc(&f.message),
                number(f.exchanges_not_counted)
            );
        }
        let _ = writeln!(out, "</ul></div>");
    }
}

/// The daily requests per caller OPD as one SVG document (the HTML page's first chart), for a page that shows
/// the chart on its own (the web console, as an image).
pub fn daily_chart_svg(r: &UsageReport) -> String {
    let mut out = String::new();
    daily_chart(&mut out, r);
    out
}

/// The bandwidth used against each OPD's allocation as one SVG document (the HTML page's second chart).
pub fn bandwidth_chart_svg(r: &UsageReport) -> String {
    let mut out = String::new();
    bandwidth_chart(&mut out, r);
    out
}

fn daily_chart(out: &mut String, r: &UsageReport) {
    let (w, h, left, bottom, top, right) = (960.0, 300.0, 60.0, 40.0, 20.0, 170.0);
    let days = r.days.max(1) as usize;
    let mut series: Vec<(String, Vec<u64>)> =
        r.callers.iter().take(SERIES).map(|u| (label(u), u.daily.iter().map(|d| d.requests).collect())).collect();
    if r.callers.len() > SERIES {
        let mut rest = vec![0u64; days];
        for u in &r.callers[SERIES..] {
            for (a, d) in rest.iter_mut().zip(&u.daily) {
                *a += d.requests;
            }
        }
        series.push(("lainnya".to_string(), rest));
    }
    let max = series.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(0).max(1);
    let (plot_w, plot_h) = (w - left - right, h - top - bottom);
    let x = |d: usize| left + plot_w * (d as f64 + 0.5) / days as f64;
    let y = |v: u64| top + plot_h * (1.0 - v as f64 / max as f64);
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Permintaan harian per OPD pemanggil\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">"
    );
    for i in 0..=4u64 {
        let v = max * i / 4;
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e3e3e3\"/><text x=\"{}\" y=\"{:.1}\" \
             text-anchor=\"end\">{}</text>",
            left + plot_w,
            y(v),
            y(v),
            left - 6.0,
            y(v) + 4.0,
            number(v)
        );
    }
    for d in (0..days).step_by(if days > 16 { 2 } else { 1 }) {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(d),
            h - bottom + 16.0,
            d + 1
        );
    }
    let _ =
        writeln!(out, "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">tanggal</text>", left + plot_w / 2.0, h - 4.0);
    for (i, (name, values)) in series.iter().enumerate() {
        let colour = COLOURS[i.min(COLOURS.len() - 1)];
        let points: Vec<String> = values.iter().enumerate().map(|(d, v)| format!("{:.1},{:.1}", x(d), y(*v))).collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            esc(name)
        );
        let ly = top + 16.0 * i as f64;
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"12\" height=\"4\" fill=\"{colour}\"/><text x=\"{}\" y=\"{:.1}\">{}</text>",
            w - right + 12.0,
            ly + 2.0,
            w - right + 28.0,
            ly + 6.0,
            esc(&shorten(name, 24))
        );
    }
    if series.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">Tidak ada permintaan bulan ini</text>",
            w / 2.0,
            h / 2.0
        );
    }
    let _ = writeln!(out, "</svg>");
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        text.chars().take(max - 1).chain(std::iter::once('…')).collect()
    }
}

fn bandwidth_chart(out: &mut String, r: &UsageReport) {
    let rows: Vec<&OpdUsage> = r.callers.iter().filter(|u| u.opd != "-").collect();
    let (w, row_h, left, right) = (960.0, 28.0, 230.0, 200.0);
    let h = 30.0 + row_h * rows.len().max(1) as f64;
    let plot_w = w - left - right;
    // Without an allocation the bar is scaled against the largest use.
    let max_used = rows.iter().map(|u| u.bytes_in + u.bytes_out).max().unwrap_or(0).max(1);
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Bandwidth terhadap alokasi\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"14\" fill=\"#555\">batang abu-abu: alokasi bulan ini ([bandwidth] × detik sebulan); \
         biru: terpakai (masuk + keluar)</text>"
    );
    for (i, u) in rows.iter().enumerate() {
        let y = 24.0 + row_h * i as f64;
        let used = u.bytes_in + u.bytes_out;
        let allocation = u.allocation.as_ref().and_then(|a| a.month_bytes).filter(|b| *b > 0);
        let (fraction, note) = match allocation {
            Some(total) => {
                let pct = used as f64 / total as f64;
                (
                    pct.min(1.0),
                    format!("{} dari {} ({:.2} %)", bytes(used), bytes(total), pct * 100.0).replace('.', ","),
                )
            }
            None => (used as f64 / max_used as f64, format!("{} (tanpa alokasi)", bytes(used))),
        };
        let colour = if fraction >= 0.9 && allocation.is_some() { "#b23a48" } else { "#1f6fb2" };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{:.1}\" width=\"{plot_w}\" \
             height=\"16\" fill=\"{}\"/><rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{colour}\">\
             <title>{}</title></rect><text x=\"{}\" y=\"{:.1}\">{}</text>",
            left - 8.0,
            y + 12.0,
            esc(&shorten(&label(u), 32)),
            y,
            if allocation.is_some() { "#dde3ea" } else { "#f4f4f4" },
            y,
            (plot_w * fraction).max(if used > 0 { 1.0 } else { 0.0 }),
            esc(&note),
            left + plot_w + 8.0,
            y + 12.0,
            esc(&note)
        );
    }
    if rows.is_empty() {
        let _ = writeln!(out, "<text x=\"{left}\" y=\"40\">Tidak ada OPD pemanggil bulan ini</text>");
    }
    let _ = writeln!(out, "</svg>");
}

fn table(out: &mut String, list: &[OpdUsage]) {
    let _ = writeln!(
        out,
        "<table><tr><th>OPD</th><th>Permintaan</th><th>Diizinkan</th><th>Ditolak</th><th>Galat</th><th>Dibatasi</th>\
         <th>2xx / 4xx / 5xx</th><th>Masuk</th><th>Keluar</th><th>Alokasi terpakai</th><th>p50 / p95 / p99 ms</th></tr>"
    );
    for u in list {
        let class = |c: &str| u.status_classes.get(c).copied().unwrap_or(0);
        let allocation = u
            .allocation
            .as_ref()
            .and_then(|a| a.bytes_used_percent)
            .map_or_else(|| "-".to_string(), |p| format!("{p:.2} %").replace('.', ","));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {} / {}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{} / {} / {}</td></tr>",
            esc(&label(u)),
            number(u.requests),
            number(u.allowed),
            number(u.denied),
            number(u.errors),
            number(u.rate_limited),
            number(class("2xx")),
            number(class("4xx")),
            number(class("5xx")),
            esc(&bytes(u.bytes_in)),
            esc(&bytes(u.bytes_out)),
            esc(&allocation),
            millis(u.latency_ms.p50),
            millis(u.latency_ms.p95),
            millis(u.latency_ms.p99)
        );
        let list = |items: &[crate::model::Ranked]| {
            items
                .iter()
                .take(5)
                .map(|s| format!("{} ({})", esc(&s.name), number(s.requests)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let codes: Vec<String> = u
            .denials_by_code
            .iter()
            .chain(&u.errors_by_code)
            .map(|(c, n)| format!("{} ({})", esc(c), number(*n)))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td colspan=\"11\" class=\"codes\">Layanan teratas: {} · Pemanggil teratas: {}{}</td></tr>",
            list(&u.top_services),
            list(&u.top_callers),
            if codes.is_empty() { String::new() } else { format!(" · Kode penolakan/galat: {}", codes.join(", ")) }
        );
    }
    let _ = writeln!(out, "</table>");
}
