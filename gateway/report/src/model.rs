//! The report as data ([`UsageReport`], serialised as the JSON form), built from a [`Tally`] and the OPD
//! documents (names and `[bandwidth]` allocations).

use std::collections::BTreeMap;

use penghubung_types::documents::OpdDoc;
use serde::{Deserialize, Serialize};

use crate::month::{Month, UtcOffset};
use crate::tally::{Tally, Usage};
use crate::trail::Verification;

/// How many services and callers a "top" list names.
pub const TOP: usize = 10;

/// The monthly usage report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UsageReport {
    /// `2026-11`.
    pub month: String,
    /// The local time the days are counted in (`+07:00`).
    pub utc_offset: String,
    pub days: u32,
    /// Only the exchanges of this OPD (as caller or provider).
    pub opd: Option<String>,
    pub generated_at: String,
    /// Whether the audit trail verified; a segment that did not is listed and not counted.
    pub verification: Verification,
    /// The relative error bound of the latency quantiles.
    pub latency_relative_error: f64,
    /// Every counted exchange.
    pub total: OpdUsage,
    /// By caller OPD (`-`: no identified caller), most requests first.
    pub callers: Vec<OpdUsage>,
    /// By provider OPD (`-`: no service: health, discovery, unknown routes), most requests first.
    pub providers: Vec<OpdUsage>,
}

/// One OPD's usage (or the total, as `*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpdUsage {
    pub opd: String,
    /// The OPD's name from its document.
    pub name: Option<String>,
    pub requests: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    pub rate_limited: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `2xx` … `5xx` (and `other`).
    pub status_classes: BTreeMap<String, u64>,
    pub denials_by_code: BTreeMap<String, u64>,
    pub errors_by_code: BTreeMap<String, u64>,
    pub latency_ms: Latency,
    pub top_services: Vec<Ranked>,
    /// Caller applications (clients, `opd/app`).
    pub top_callers: Vec<Ranked>,
    pub daily: Vec<DayUsage>,
    /// The caller OPD's `[bandwidth]` allocation against its use (callers only; absent without one).
    pub allocation: Option<Allocation>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ranked {
    pub name: String,
    pub requests: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DayUsage {
    /// `2026-11-05`.
    pub date: String,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors: u64,
}

/// An OPD's allocation over the month (`[bandwidth]` rates times the month's seconds) and its use of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Allocation {
    pub requests_per_second: Option<u32>,
    pub bytes_per_second: Option<u64>,
    /// `requests_per_second` × the month's seconds.
    pub month_requests: Option<u64>,
    /// `bytes_per_second` × the month's seconds (request plus response bodies, as the limit counts them).
    pub month_bytes: Option<u64>,
    pub requests_used_percent: Option<f64>,
    pub bytes_used_percent: Option<f64>,
    /// The busiest day by bytes and its average rate as a share of `bytes_per_second`.
    pub busiest_day: Option<String>,
    pub busiest_day_bytes_percent: Option<f64>,
}

fn percent(used: u64, of: u64) -> f64 {
    if of == 0 {
        return 0.0;
    }
    (used as f64 * 10_000.0 / of as f64).round() / 100.0
}

fn ranked(map: &crate::tally::HashMap<String, u64>) -> Vec<Ranked> {
    let mut list: Vec<Ranked> = map.iter().map(|(name, n)| Ranked { name: name.clone(), requests: *n }).collect();
    list.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.name.cmp(&b.name)));
    list.truncate(TOP);
    list
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|us| (us as f64 / 10.0).round() / 100.0)
}

fn opd_usage(opd: &str, usage: &Usage, month: Month, doc: Option<&OpdDoc>, caller: bool) -> OpdUsage {
    let classes = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
    let status_classes =
        classes.iter().zip(usage.classes).filter(|(_, n)| *n > 0).map(|(c, n)| (c.to_string(), n)).collect();
    let sorted = |map: &crate::tally::HashMap<String, u64>| map.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let daily: Vec<DayUsage> = usage
        .daily
        .iter()
        .enumerate()
        .map(|(d, day)| DayUsage {
            date: month.date(d as u32),
            requests: day.requests,
            bytes_in: day.bytes_in,
            bytes_out: day.bytes_out,
            errors: day.errors,
        })
        .collect();
    let allocation = doc.and_then(|d| d.bandwidth.as_ref()).filter(|_| caller).map(|bw| {
        let seconds = month.seconds();
        let bytes = usage.bytes_in + usage.bytes_out;
        let month_requests = bw.requests_per_second.map(|r| u64::from(r) * seconds);
        let month_bytes = bw.bytes_per_second.map(|b| b.0 * seconds);
        let busiest = daily.iter().max_by_key(|d| (d.bytes_in + d.bytes_out, std::cmp::Reverse(d.date.clone())));
        let busiest = busiest.filter(|d| d.bytes_in + d.bytes_out > 0);
        Allocation {
            requests_per_second: bw.requests_per_second,
            bytes_per_second: bw.bytes_per_second.map(|b| b.0),
            month_requests,
            month_bytes,
            requests_used_percent: month_requests.map(|m| percent(usage.requests, m)),
            bytes_used_percent: month_bytes.map(|m| percent(bytes, m)),
            busiest_day: busiest.map(|d| d.date.clone()),
            busiest_day_bytes_percent: busiest
                .and_then(|d| bw.bytes_per_second.map(|b| percent(d.bytes_in + d.bytes_out, b.0 * 86_400))),
        }
    });
    OpdUsage {
        opd: opd.to_string(),
        name: doc.map(|d| d.name.clone()),
        requests: usage.requests,
        allowed: usage.allowed,
        denied: usage.denied,
        errors: usage.errors,
        rate_limited: usage.rate_limited,
        bytes_in: usage.bytes_in,
        bytes_out: usage.bytes_out,
        status_classes,
        denials_by_code: sorted(&usage.denials),
        errors_by_code: sorted(&usage.failures),
        latency_ms: Latency {
            p50: ms(usage.latency.quantile(0.50)),
            p95: ms(usage.latency.quantile(0.95)),
            p99: ms(usage.latency.quantile(0.99)),
            max: ms((usage.latency.count() > 0).then(|| usage.latency.max())),
        },
        top_services: ranked(&usage.services),
        top_callers: ranked(&usage.clients),
        daily,
        allocation,
    }
}

/// Builds the report from the month's counts.
pub(crate) fn build(
    tally: &Tally,
    verification: Verification,
    month: Month,
    offset: UtcOffset,
    opd: Option<&str>,
    opds: &[OpdDoc],
) -> UsageReport {
    let doc = |id: &str| opds.iter().find(|d| d.id == id);
    let list = |map: &crate::tally::HashMap<String, Usage>, caller: bool| {
        let mut list: Vec<OpdUsage> =
            map.iter().map(|(id, usage)| opd_usage(id, usage, month, doc(id), caller)).collect();
        list.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.opd.cmp(&b.opd)));
        list
    };
    UsageReport {
        month: month.to_string(),
        utc_offset: offset.to_string(),
        days: month.days(),
        opd: opd.map(str::to_string),
        generated_at: penghubung_audit::record::format_time(std::time::SystemTime::now()),
        verification,
        latency_relative_error: crate::sketch::RELATIVE_ERROR,
        total: opd_usage("*", &tally.total, month, None, false),
        callers: list(&tally.callers, true),
        providers: list(&tally.providers, false),
    }
}
