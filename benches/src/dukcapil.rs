//! The contract of the contract benchmarks: a Dukcapil-like batch of resident records (`penduduk`), as a JSON
//! Schema in the store (`schemas/disdukcapil/penduduk-batch.schema.json`) built on the reference types (NIK,
//! kode wilayah, tanggal, telepon: the `nik`, `kode-wilayah`, `date` and `telepon` formats), and request bodies
//! of an exact size that satisfy it (or, for the error path, violate it in three known places).
//!
//! Used by the criterion bench `benches/contract.rs` and by `load --mode contract`; measures nothing by itself.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

/// Where the schema lives under the store's `schemas/` folder (what `request.schema` names).
pub const SCHEMA_PATH: &str = "disdukcapil/penduduk-batch.schema.json";

/// The three violations of [`invalid_body`], as `(pointer, keyword)` in the order the validator reports them,
/// for a body whose last record is number `last`.
pub fn expected_violations(last: usize) -> Vec<(String, String)> {
    vec![
        (format!("/penduduk/{last}/alamat/kode_wilayah"), "format".to_string()),
        (format!("/penduduk/{last}/nik"), "format".to_string()),
        (format!("/penduduk/{last}/tanggal_lahir"), "format".to_string()),
    ]
}

/// The batch schema (JSON Schema 2020-12).
pub fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Kiriman data penduduk",
        "description": "A batch of resident records sent by a regency's Disdukcapil.",
        "type": "object",
        "additionalProperties": false,
        "required": ["batch_id", "kode_wilayah_pengirim", "tanggal_kirim", "penduduk"],
        "properties": {
            "batch_id": {"type": "string", "pattern": "^[A-Z0-9-]{8,40}$"},
            "kode_wilayah_pengirim": {"$ref": "/ref/kode-wilayah.schema.json"},
            "tanggal_kirim": {"$ref": "/ref/tanggal.schema.json"},
            "catatan": {"type": "string", "maxLength": 65536},
            "penduduk": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/$defs/penduduk"}}
        },
        "$defs": {
            "penduduk": {
                "type": "object",
                "additionalProperties": false,
                "required": ["nik", "no_kk", "nama", "jenis_kelamin", "tempat_lahir", "tanggal_lahir", "alamat"],
                "properties": {
                    "nik": {"$ref": "/ref/nik.schema.json"},
                    "no_kk": {"type": "string", "pattern": "^[0-9]{16}$"},
                    "nama": {"type": "string", "minLength": 1, "maxLength": 100},
                    "jenis_kelamin": {"enum": ["L", "P"]},
                    "tempat_lahir": {"type": "string", "minLength": 1, "maxLength": 60},
                    "tanggal_lahir": {"$ref": "/ref/tanggal.schema.json"},
                    "agama": {"enum": ["ISLAM", "KRISTEN", "KATOLIK", "HINDU", "BUDDHA", "KONGHUCU", "KEPERCAYAAN"]},
                    "status_perkawinan": {"enum": ["BELUM KAWIN", "KAWIN", "CERAI HIDUP", "CERAI MATI"]},
                    "pekerjaan": {"type": "string", "maxLength": 60},
                    "telepon": {"$ref": "/ref/telepon.schema.json"},
                    "alamat": {"$ref": "#/$defs/alamat"},
                    "anggota_keluarga": {"type": "array", "maxItems": 20, "items": {"$ref": "#/$defs/anggota"}}
                }
            },
            "alamat": {
                "type": "object",
                "additionalProperties": false,
                "required": ["jalan", "rt", "rw", "kode_wilayah"],
                "properties": {
                    "jalan": {"type": "string", "maxLength": 120},
                    "rt": {"type": "string", "pattern": "^[0-9]{3}$"},
                    "rw": {"type": "string", "pattern": "^[0-9]{3}$"},
                    "kode_wilayah": {"$ref": "/ref/kode-wilayah.schema.json"},
                    "kode_pos": {"type": "string", "pattern": "^[0-9]{5}$"}
                }
            },
            "anggota": {
                "type": "object",
                "additionalProperties": false,
                "required": ["nik", "nama", "hubungan"],
                "properties": {
                    "nik": {"$ref": "/ref/nik.schema.json"},
                    "nama": {"type": "string", "minLength": 1, "maxLength": 100},
                    "hubungan": {"enum": ["KEPALA KELUARGA", "SUAMI", "ISTRI", "ANAK", "ORANG TUA", "FAMILI LAIN"]},
                    "tanggal_lahir": {"$ref": "/ref/tanggal.schema.json"}
                }
            }
        }
    })
}

/// The schema as the file the store holds.
pub fn schema_text() -> String {
    serde_json::to_string_pretty(&schema()).expect("a JSON value")
}

/// The validator the gateway builds for [`schema`]: the store holds only that schema, compiled by
/// `penghubung::contract::compile::Compiler` with the reference formats, exactly as `Snapshot::build` does.
pub fn validator() -> Arc<penghubung::contract::Schema> {
    let schema = schema();
    let store: HashMap<&str, &Value> = [(SCHEMA_PATH, &schema)].into_iter().collect();
    let mut compiler = penghubung::contract::compile::Compiler::new(&store, penghubung::contract::FORMATS);
    compiler.schema(SCHEMA_PATH).unwrap_or_else(|e| panic!("the bench schema does not compile: {e}"))
}

/// A NIK of Lampung Timur (18.07) that the `nik` format accepts: district, birth date (women: day + 40) and a
/// serial that vary with `i`.
fn nik(i: usize, woman: bool) -> String {
    let day = 1 + i % 28 + if woman { 40 } else { 0 };
    format!("1807{:02}{day:02}{:02}{:02}{:04}", 1 + i % 24, 1 + i % 12, (60 + i) % 100, 1 + i % 9999)
}

fn date(i: usize) -> String {
    let year = if (60 + i) % 100 < 60 { 2000 } else { 1900 } + (60 + i) % 100;
    format!("{year}-{:02}-{:02}", 1 + i % 12, 1 + i % 28)
}

/// Resident record number `i`: valid, about 900 bytes with its two family members.
pub fn record(i: usize) -> Value {
    let district = 1 + i % 24;
    json!({
        "nik": nik(i, i % 2 == 1),
        "no_kk": format!("1807{district:02}{:010}", 1_000_000 + i),
        "nama": format!("{} {}", ["SITI AMINAH", "AHMAD FAUZI", "DEWI LESTARI", "BUDI SANTOSO"][i % 4], i),
        "jenis_kelamin": if i % 2 == 1 { "P" } else { "L" },
        "tempat_lahir": "SUKADANA",
        "tanggal_lahir": date(i),
        "agama": "ISLAM",
        "status_perkawinan": "KAWIN",
        "pekerjaan": "PETANI/PEKEBUN",
        "telepon": format!("0812{:08}", 10_000_000 + i),
        "alamat": {
            "jalan": format!("JL. LINTAS TIMUR NO. {}", 1 + i % 300),
            "rt": format!("{:03}", 1 + i % 20),
            "rw": format!("{:03}", 1 + i % 8),
            "kode_wilayah": format!("18.07.{district:02}.2{:03}", 1 + i % 999),
            "kode_pos": "34385"
        },
        "anggota_keluarga": [
            {"nik": nik(i + 1, i % 2 != 1), "nama": "PASANGAN", "hubungan": if i % 2 == 1 { "SUAMI" } else { "ISTRI" },
             "tanggal_lahir": date(i + 1)},
            {"nik": nik(i + 7, false), "nama": "ANAK PERTAMA", "hubungan": "ANAK", "tanggal_lahir": date(i + 30)}
        ]
    })
}

fn batch(records: Vec<Value>, catatan: &str) -> Value {
    json!({
        "batch_id": "DUKCAPIL-1807-20261126-0001",
        "kode_wilayah_pengirim": "18.07",
        "tanggal_kirim": "2026-11-26",
        "catatan": catatan,
        "penduduk": records,
    })
}

/// A valid batch of exactly `size` bytes (compact JSON): as many records as fit, the rest padded in `catatan`.
/// Panics when not even one record fits.
pub fn body(size: usize) -> Vec<u8> {
    padded(size, |_| {})
}

/// Like [`body`], of exactly `size` bytes, but its last record has an impossible NIK (30 February), an
/// impossible `tanggal_lahir` (2023-02-30) and a village code `x000`: three `format` violations
/// ([`expected_violations`]), found only after every other record was checked.
pub fn invalid_body(size: usize) -> Vec<u8> {
    padded(size, |last| {
        last["nik"] = json!("1807013002900001");
        last["tanggal_lahir"] = json!("2023-02-30");
        last["alamat"]["kode_wilayah"] = json!("18.07.01.2000");
    })
}

/// The number of records in a body made by [`body`] or [`invalid_body`].
pub fn records_in(body: &[u8]) -> usize {
    let value: Value = serde_json::from_slice(body).expect("a bench body");
    value["penduduk"].as_array().map_or(0, Vec::len)
}

fn padded(size: usize, spoil: impl Fn(&mut Value)) -> Vec<u8> {
    let render = |n: usize, catatan: &str| {
        let mut records: Vec<Value> = (0..n).map(record).collect();
        if let Some(last) = records.last_mut() {
            spoil(last);
        }
        serde_json::to_vec(&batch(records, catatan)).expect("a JSON value")
    };
    let mut n = 1;
    while render(n + 1, "").len() <= size {
        n += 1;
    }
    let bare = render(n, "");
    assert!(bare.len() <= size, "one record ({} bytes) does not fit in {size} bytes", bare.len());
    let out = render(n, &"x".repeat(size - bare.len()));
    assert_eq!(out.len(), size);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_their_size_and_outcome() {
        let schema = validator();
        let validator = &schema.full;
        for size in [1024, 64 * 1024] {
            let valid = body(size);
            assert_eq!(valid.len(), size);
            let value: Value = serde_json::from_slice(&valid).unwrap();
            let errors: Vec<String> =
                validator.iter_errors(&value).map(|e| format!("{}: {e}", e.instance_path.as_str())).collect();
            assert!(errors.is_empty(), "{errors:?}");
            assert!(schema.accepts_in_single_pass(&valid));

            let invalid = invalid_body(size);
            assert_eq!(invalid.len(), size);
            let value: Value = serde_json::from_slice(&invalid).unwrap();
            let mut found: Vec<(String, String)> = validator
                .iter_errors(&value)
                .map(|e| {
                    let keyword = e.schema_path.as_str().rsplit('/').next().unwrap_or("").to_string();
                    (e.instance_path.as_str().to_string(), keyword)
                })
                .collect();
            found.sort();
            assert_eq!(found, expected_violations(records_in(&invalid) - 1));
            assert!(!schema.accepts_in_single_pass(&invalid));
        }
        assert_eq!(records_in(&body(1024)), 1);
        assert!(records_in(&body(64 * 1024)) > 50);
    }
}
