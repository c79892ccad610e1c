//! `GET /reports`: the monthly usage report per OPD (Perbup Lampung Timur 16/2023 Pasal 21), the same report
//! the CLI and the admin API give: the page performs the API's `usageReport` route as the viewer (so only the
//! roles allowed it see it), then shows whether the trail verified, the totals, the two charts (the report's
//! own server-rendered SVG, as images: the console's CSP allows `data:` images and no inline style) and the
//! callers' and providers' tables.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use http::request::Parts;
use http::StatusCode;
use maud::{html, Markup};
use penghubung_report::model::OpdUsage;
use penghubung_report::UsageReport;

use super::context;
use crate::layout::{self, text_field, Lang};
use crate::web::{self, Ctx};
use crate::Console;

pub async fn page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let lang = ctx.lang;
    let title = lang.pick("Laporan penggunaan bulanan", "Monthly usage report");
    let given = web::query(&parts);
    let mut query = HashMap::new();
    for key in ["month", "opd"] {
        if let Some(value) = given.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            query.insert(key.to_string(), value.to_string());
        }
    }
    let shown = match ctx.perform("usageReport", vec![], query, None).await {
        Ok(answer) => match serde_json::from_value::<UsageReport>(answer) {
            Ok(report) => report_view(lang, &report),
            Err(e) => html! { div #error role="alert" { (format!("console.report_unreadable: {e}")) } },
        },
        Err(e) => {
            let status = e.status();
            let body = html! { h1 { (title) } (form(&ctx, &given)) (e.alert(lang)) };
            return layout::page(&ctx, status, title, body);
        }
    };
    let body = html! { h1 { (title) } (form(&ctx, &given)) (shown) };
    layout::page(&ctx, StatusCode::OK, title, body)
}

fn form(ctx: &Ctx, given: &HashMap<String, String>) -> Markup {
    let lang = ctx.lang;
    let value = |k: &str| given.get(k).map_or("", String::as_str);
    html! {
        form #report-form method="get" action="/reports" {
            div.grid {
                (text_field("report-month", "month", lang.pick("Bulan (TTTT-BB)", "Month (YYYY-MM)"), value("month")))
                (text_field("report-opd", "opd", lang.pick("OPD (kosong: semua)", "OPD (empty: all)"), value("opd")))
            }
            button #report-show type="submit" { (lang.pick("Tampilkan", "Show")) }
        }
    }
}

fn report_view(lang: Lang, report: &UsageReport) -> Markup {
    let v = &report.verification;
    let t = &report.total;
    html! {
        section #usage-report {
            h2 { (lang.pick("Bulan", "Month")) " " (report.month) @if let Some(opd) = &report.opd { " · OPD " (opd) } }
            @if v.verified {
                p #report-verification role="status" { (format!(
                    "{} ({} / {})",
                    lang.pick("Jejak audit terverifikasi", "The audit trail verified"),
                    v.segments_verified,
                    v.segments
                )) }
            } @else {
                div #report-verification role="alert" { (format!(
                    "{} ({} / {}): {}",
                    lang.pick("Jejak audit TIDAK terverifikasi seluruhnya", "The audit trail did NOT verify in full"),
                    v.segments_verified,
                    v.segments,
                    v.flagged.iter().map(|f| format!("{} {} ({})", f.problem, f.at, f.message)).collect::<Vec<_>>().join("; ")
                )) }
            }
            dl.cards {
                dt { (lang.pick("Permintaan", "Requests")) } dd { (t.requests) }
                dt { (lang.pick("Ditolak", "Denied")) } dd { (t.denied) }
                dt { (lang.pick("Galat", "Errors")) } dd { (t.errors) }
                dt { (lang.pick("Dibatasi", "Rate-limited")) } dd { (t.rate_limited) }
                dt { (lang.pick("Data masuk / keluar (bita)", "Bytes in / out")) } dd { (t.bytes_in) " / " (t.bytes_out) }
            }
            h3 { (lang.pick("Permintaan harian per OPD pemanggil", "Daily requests per caller OPD")) }
            (chart(&penghubung_report::daily_chart_svg(report), lang.pick("Grafik permintaan harian per OPD pemanggil", "Chart of daily requests per caller OPD")))
            h3 { (lang.pick("Bandwidth terhadap alokasi", "Bandwidth against allocation")) }
            (chart(&penghubung_report::bandwidth_chart_svg(report), lang.pick("Grafik bandwidth terhadap alokasi", "Chart of bandwidth against allocation")))
            h3 { (lang.pick("OPD pemanggil", "Caller OPDs")) }
            (table(lang, "report-callers", &report.callers))
            h3 { (lang.pick("OPD penyedia layanan", "Provider OPDs")) }
            (table(lang, "report-providers", &report.providers))
        }
    }
}

/// A server-rendered SVG chart as an image (`data:`), with its text alternative.
fn chart(svg: &str, alt: &str) -> Markup {
    let data = base64::engine::general_purpose::STANDARD.encode(svg);
    html! { img.chart src=(format!("data:image/svg+xml;base64,{data}")) alt=(alt); }
}

fn table(lang: Lang, id: &str, rows: &[OpdUsage]) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                th scope="col" { "OPD" }
                th scope="col" { (lang.pick("Permintaan", "Requests")) }
                th scope="col" { (lang.pick("Ditolak", "Denied")) }
                th scope="col" { (lang.pick("Galat", "Errors")) }
                th scope="col" { (lang.pick("Bita masuk", "Bytes in")) }
                th scope="col" { (lang.pick("Bita keluar", "Bytes out")) }
                th scope="col" { (lang.pick("Alokasi terpakai", "Allocation used")) }
                th scope="col" { "p95 ms" }
            } }
            tbody { @for u in rows { tr {
                td { (u.opd) @if let Some(name) = &u.name { " — " (name) } }
                td { (u.requests) } td { (u.denied) } td { (u.errors) }
                td { (u.bytes_in) } td { (u.bytes_out) }
                td { @match u.allocation.as_ref().and_then(|a| a.bytes_used_percent) {
                    Some(p) => (format!("{p:.2} %")),
                    None => "—",
                } }
                td { @match u.latency_ms.p95 { Some(p) => (format!("{p:.1}")), None => "—" } }
            } } }
        }
    }
}
