//! `dukcapil`: NIK verification at Dukcapil (Ditjen Kependudukan dan Pencatatan Sipil). Its web service takes
//! JSON `POST`s (`/dukcapil/get_json/{instansi}/CALL_NIK`, `…/CALL_VERIFY_BY_ELEMEN`) whose body carries, beside
//! the business fields in Dukcapil's upper-case names (`NIK`, `NAMA_LGKP`, `TGL_LHR`, `TRESHOLD`, …), the
//! operator's credentials: `user_id`, `password` and `IP_USER`. It answers a page whose `content[0]` holds the
//! record, the verification, or a `RESPON` message, always with status 200.
//!
//! The gateway holds the operator credentials: the OPD application sends only the business fields, in lower
//! case (`nik`, `nama_lgkp`, …, which the service's request contract checks); the adapter upper-cases their
//! names, drops any credential field the caller sent, and injects the gateway's. On the way back it answers
//! `content[0]` alone, its field names in lower case, so that the service's response schema (with its
//! `x-klasifikasi` marks) applies like to any service; `RESPON: Data Tidak Ditemukan` becomes 404 `{"pesan":
//! …}`, any other `RESPON` (wrong credentials, no access, quota) 502 `adapter.upstream_refused`.
//!
//! Settings: `user_id`, `password` (secrets), `ip_user` (the operator's registered address: a string or a
//! secret).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

use crate::generic::credential_unavailable;
use crate::registry::AdapterFactory;
use crate::secrets::{Secret, Secrets};
use crate::settings::Settings;
use crate::{Adapter, AdapterError, BoxFuture, InboundResponse, OutboundRequest};

const NAME: &str = "dukcapil";

/// Dukcapil's names of the operator credentials in a request body.
const USER_ID: &str = "user_id";
const PASSWORD: &str = "password";
const IP_USER: &str = "IP_USER";

/// The `RESPON` of a NIK Dukcapil does not know (compared without case).
const NOT_FOUND: &str = "data tidak ditemukan";

/// The Dukcapil adapter of one service.
#[derive(Debug)]
pub struct Dukcapil {
    user_id: Secret,
    password: Secret,
    ip_user: Secret,
}

impl Adapter for Dukcapil {
    fn name(&self) -> &'static str {
        NAME
    }
    fn needs_request_body(&self) -> bool {
        true
    }
    fn needs_response_body(&self) -> bool {
        true
    }
    fn prepare<'a>(&'a self, request: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            let value = |s: &Secret| s.value().map_err(|e| credential_unavailable(NAME, &e));
            let (user_id, password, ip_user) = (value(&self.user_id)?, value(&self.password)?, value(&self.ip_user)?);
            let body = map_request(&request.body, [user_id.expose(), password.expose(), ip_user.expose()])?;
            set_json_body(&mut request.head.headers, body.len());
            // The answer is read and mapped: ask for it uncompressed.
            request.head.headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            request.body = body;
            Ok(())
        })
    }
    fn maps_response(&self) -> bool {
        true
    }
    fn map_response<'a>(&'a self, response: &'a mut InboundResponse) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            if !response.head.status.is_success() {
                return Err(AdapterError::UpstreamRefused {
                    adapter: NAME,
                    detail: format!("Dukcapil answered HTTP {}", response.head.status.as_u16()),
                });
            }
            let (status, body) = map_answer(&response.body)?;
            response.head.status = status;
            set_json_body(&mut response.head.headers, body.len());
            response.body = body;
            Ok(())
        })
    }
}

fn set_json_body(headers: &mut http::HeaderMap, length: usize) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.remove(http::header::TRANSFER_ENCODING);
    headers.remove(http::header::CONTENT_ENCODING);
}

fn mapping(detail: impl Into<String>) -> AdapterError {
    AdapterError::MappingFailed { adapter: NAME, detail: detail.into() }
}

/// Whether `field` names one of the operator credentials, in any spelling.
fn is_credential(field: &str) -> bool {
    [USER_ID, PASSWORD, IP_USER].iter().any(|c| c.eq_ignore_ascii_case(field))
}

/// The caller's business fields with Dukcapil's upper-case names and the gateway's credentials
/// (`[user_id, password, ip_user]`); a credential the caller sent is dropped.
pub fn map_request(body: &[u8], [user_id, password, ip_user]: [&str; 3]) -> Result<Bytes, AdapterError> {
    let fields: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Err(mapping("the request body must be a JSON object of Dukcapil's fields")),
        Err(_) => return Err(mapping("the request body is not JSON")),
    };
    let mut out = Map::with_capacity(fields.len() + 3);
    for (name, value) in fields {
        if is_credential(&name) {
            continue;
        }
        if !matches!(value, Value::String(_) | Value::Number(_)) {
            return Err(mapping(format!("field `{}` must be a string or a number", name.to_ascii_lowercase())));
        }
        out.insert(name.to_ascii_uppercase(), value);
    }
    out.insert(USER_ID.into(), user_id.into());
    out.insert(PASSWORD.into(), password.into());
    out.insert(IP_USER.into(), ip_user.into());
    serde_json::to_vec(&Value::Object(out)).map(Bytes::from).map_err(|_| mapping("the request cannot be written"))
}

/// The status and body for the caller from Dukcapil's page: `content[0]` with lower-case names, 404 for an
/// unknown NIK, [`AdapterError::UpstreamRefused`] for any other `RESPON`.
pub fn map_answer(body: &[u8]) -> Result<(StatusCode, Bytes), AdapterError> {
    let page: Value = serde_json::from_slice(body).map_err(|_| mapping("Dukcapil's answer is not JSON"))?;
    let Some(first) = page.get("content").and_then(Value::as_array).and_then(|c| c.first()) else {
        return Err(mapping("Dukcapil's answer has no content[0]"));
    };
    let Some(record) = first.as_object() else {
        return Err(mapping("Dukcapil's content[0] is not an object"));
    };
    let respon = record.iter().find(|(k, _)| k.eq_ignore_ascii_case("RESPON")).and_then(|(_, v)| v.as_str());
    let has_nik = record.keys().any(|k| k.eq_ignore_ascii_case("NIK"));
    if let (Some(respon), false) = (respon, has_nik) {
        if respon.trim().eq_ignore_ascii_case(NOT_FOUND) {
            let body = serde_json::json!({ "pesan": "NIK tidak ditemukan" }).to_string();
            return Ok((StatusCode::NOT_FOUND, Bytes::from(body)));
        }
        return Err(AdapterError::UpstreamRefused {
            adapter: NAME,
            detail: format!("Dukcapil answered: {}", words(respon)),
        });
    }
    let mapped: Map<String, Value> = record.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    let body = serde_json::to_vec(&Value::Object(mapped)).map_err(|_| mapping("the answer cannot be written"))?;
    Ok((StatusCode::OK, Bytes::from(body)))
}

/// A message of the national system fit to show: letters, spaces and punctuation only (no digits, so never a
/// NIK or an address), at most 120 characters.
fn words(message: &str) -> String {
    message
        .chars()
        .filter(|c| c.is_alphabetic() || matches!(c, ' ' | '.' | ',' | '/' | '-' | '(' | ')'))
        .take(120)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Builds [`Dukcapil`] adapters.
pub(crate) struct DukcapilFactory;

impl AdapterFactory for DukcapilFactory {
    fn name(&self) -> &'static str {
        NAME
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let mut s = Settings::new(settings, secrets);
        let user_id = s.secret("user_id");
        let password = s.secret("password");
        let ip_user = s.string_or_secret("ip_user");
        s.finish()?;
        Ok(Arc::new(Dukcapil {
            user_id: user_id.expect("checked"),
            password: password.expect("checked"),
            ip_user: ip_user.expect("checked"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: [&str; 3] = ["operator", "kata-sandi", "10.18.7.1"];

    /// A secrets store over files in a temporary directory (mode 0600).
    fn secrets(values: &[(&str, &str)]) -> (tempfile::TempDir, Secrets) {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in values {
            std::fs::write(dir.path().join(name), value).unwrap();
            std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let secrets = Secrets::new(Some(dir.path().to_path_buf()), Default::default());
        (dir, secrets)
    }

    #[tokio::test]
    async fn prepare_sends_the_secrets_current_values_in_the_body() {
        let (_dir, secrets) = secrets(&[("user", "operator"), ("pass", "kata-sandi")]);
        let settings = "user_id = { secret = \"user\" }\npassword = { secret = \"pass\" }\nip_user = \"10.18.7.1\"\n";
        let adapter = DukcapilFactory.build(&settings.parse().unwrap(), &secrets).unwrap();
        let (head, ()) = http::Request::post("/CALL_NIK").body(()).unwrap().into_parts();
        let mut request = OutboundRequest { head, body: Bytes::from_static(br#"{"nik":"1807015508900002"}"#) };
        adapter.prepare(&mut request).await.unwrap();
        let sent: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"NIK": "1807015508900002", "user_id": "operator", "password": "kata-sandi", "IP_USER": "10.18.7.1"})
        );
        assert_eq!(request.head.headers[CONTENT_LENGTH], request.body.len().to_string().as_str());
        assert_eq!(request.head.headers[ACCEPT_ENCODING], "identity");
    }

    #[test]
    fn settings_refuse_credentials_written_into_the_document_and_unknown_keys() {
        let (_dir, secrets) = secrets(&[("user", "operator")]);
        let settings = "user_id = { secret = \"user\" }\npassword = \"kata-sandi-di-dokumen\"\nip_user = \"10.18.7.1\"\nthreshold = \"90\"\n";
        let problems = DukcapilFactory.build(&settings.parse().unwrap(), &secrets).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("`password` must name a secret")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("`threshold` is not a setting")), "{problems:?}");
        assert!(problems.iter().all(|p| !p.contains("kata-sandi-di-dokumen")), "a value is never echoed");
        let undefined = DukcapilFactory
            .build(
                &"user_id = { secret = \"user\" }\npassword = { secret = \"tidak-ada\" }\nip_user = \"x\"\n"
                    .parse()
                    .unwrap(),
                &secrets,
            )
            .unwrap_err();
        assert!(undefined.iter().any(|p| p.contains("tidak-ada")), "{undefined:?}");
    }

    #[test]
    fn request_gets_dukcapil_names_and_the_gateway_credentials_only() {
        let body =
            br#"{"nik":"1807015508900002","nama_lgkp":"SITI AMINAH","Password":"from-caller","ip_user":"6.6.6.6"}"#;
        let mapped: Value = serde_json::from_slice(&map_request(body, CREDENTIALS).unwrap()).unwrap();
        assert_eq!(
            mapped,
            serde_json::json!({"NIK": "1807015508900002", "NAMA_LGKP": "SITI AMINAH", "user_id": "operator",
                "password": "kata-sandi", "IP_USER": "10.18.7.1"})
        );
    }

    #[test]
    fn request_that_is_not_an_object_of_values_is_refused() {
        for body in [&b"[1]"[..], b"not json", br#"{"nik":{"x":1}}"#] {
            assert!(matches!(map_request(body, CREDENTIALS), Err(AdapterError::MappingFailed { .. })));
        }
    }

    #[test]
    fn answer_is_content_zero_in_lower_case() {
        let page = br#"{"content":[{"NIK":"1807015508900002","NAMA_LGKP":"SITI AMINAH"}],"lastPage":true}"#;
        let (status, body) = map_answer(page).unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            serde_json::json!({"nik": "1807015508900002", "nama_lgkp": "SITI AMINAH"})
        );
    }

    #[test]
    fn respon_messages_become_not_found_or_refused() {
        let (status, body) = map_answer(br#"{"content":[{"RESPON":"Data Tidak Ditemukan"}]}"#).unwrap();
        assert_eq!((status, &body[..]), (StatusCode::NOT_FOUND, &br#"{"pesan":"NIK tidak ditemukan"}"#[..]));
        match map_answer(br#"{"content":[{"RESPON":"User ID 1807015508900002 atau Password salah"}]}"#) {
            Err(AdapterError::UpstreamRefused { detail, .. }) => {
                assert_eq!(detail, "Dukcapil answered: User ID  atau Password salah");
            }
            other => panic!("{other:?}"),
        }
        for page in [&br#"{"content":[]}"#[..], br#"{"x":1}"#, b"<html>", br#"{"content":["x"]}"#] {
            assert!(matches!(map_answer(page), Err(AdapterError::MappingFailed { .. })));
        }
    }
}
