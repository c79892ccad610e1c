//! Reading an adapter's `[adapter.settings]`: typed getters that collect every problem (a missing setting, a
//! wrong type, a secret that is not defined, a setting no adapter knows) so that `penghubung check` lists them
//! all at once. A credential is always a reference to a secret (`{ secret = "name" }`); a credential written
//! as a value in a document is refused.

use std::collections::BTreeSet;

use crate::secrets::{Secret, Secrets};

/// The settings of one adapter being built; finish with [`Settings::finish`].
pub struct Settings<'a> {
    table: &'a toml::Table,
    secrets: &'a Secrets,
    used: BTreeSet<&'a str>,
    problems: Vec<String>,
}

impl<'a> Settings<'a> {
    pub fn new(table: &'a toml::Table, secrets: &'a Secrets) -> Self {
        Settings { table, secrets, used: BTreeSet::new(), problems: Vec::new() }
    }

    /// Records a problem of the adapter's own (e.g. two settings that exclude each other).
    pub fn problem(&mut self, problem: impl Into<String>) {
        self.problems.push(problem.into());
    }

    fn take(&mut self, key: &'a str) -> Option<&'a toml::Value> {
        self.used.insert(key);
        self.table.get(key)
    }

    /// A text setting that must be present.
    pub fn string(&mut self, key: &'a str) -> Option<String> {
        let value = self.optional_string(key);
        if value.is_none() && !self.table.contains_key(key) {
            self.problems.push(format!("[adapter.settings] `{key}` is required"));
        }
        value
    }

    /// A text setting that may be absent.
    pub fn optional_string(&mut self, key: &'a str) -> Option<String> {
        match self.take(key)? {
            toml::Value::String(s) => Some(s.clone()),
            _ => {
                self.problems.push(format!("[adapter.settings] `{key}` must be a string"));
                None
            }
        }
    }

    /// An absolute `http://` or `https://` URL that must be present.
    pub fn url(&mut self, key: &'a str) -> Option<http::Uri> {
        let text = self.string(key)?;
        match text.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() => Some(uri),
            _ => {
                self.problems.push(format!("[adapter.settings] `{key}` must be an absolute http(s) URL"));
                None
            }
        }
    }

    /// A reference to a secret (`{ secret = "name" }`) that must be present and defined.
    pub fn secret(&mut self, key: &'a str) -> Option<Secret> {
        if !self.table.contains_key(key) {
            self.used.insert(key);
            self.problems.push(format!("[adapter.settings] `{key}` is required (a secret: {{ secret = \"name\" }})"));
            return None;
        }
        self.optional_secret(key)
    }

    /// A reference to a secret that may be absent.
    pub fn optional_secret(&mut self, key: &'a str) -> Option<Secret> {
        let value = self.take(key)?;
        let name = value.as_table().filter(|t| t.len() == 1).and_then(|t| t.get("secret")).and_then(|v| v.as_str());
        let Some(name) = name else {
            // Never echo the value: it may be a credential written into a document by mistake.
            self.problems.push(format!(
                "[adapter.settings] `{key}` must name a secret ({{ secret = \"name\" }}); credentials are never \
                 written into documents"
            ));
            return None;
        };
        match self.secrets.handle(name) {
            Ok(secret) => Some(secret),
            Err(e) => {
                self.problems.push(format!("[adapter.settings] `{key}`: {e}"));
                None
            }
        }
    }

    /// A setting that is either a plain string (not secret, e.g. a client id) or a secret reference.
    pub fn string_or_secret(&mut self, key: &'a str) -> Option<Secret> {
        match self.table.get(key) {
            Some(toml::Value::String(s)) => {
                self.used.insert(key);
                Some(Secret::literal(s))
            }
            _ => self.secret(key),
        }
    }

    /// Every problem found, including settings that were never asked for (unknown to the adapter).
    pub fn finish(self) -> Result<(), Vec<String>> {
        let mut problems = self.problems;
        for key in self.table.keys() {
            if !self.used.contains(key.as_str()) {
                let known: Vec<&str> = self.used.iter().copied().collect();
                problems.push(if known.is_empty() {
                    format!("[adapter.settings] `{key}` is not a setting of this adapter (it takes none)")
                } else {
                    format!("[adapter.settings] `{key}` is not a setting of this adapter (known: {})", known.join(", "))
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn every_problem_is_listed_and_no_value_is_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Secrets::new(Some(dir.path().to_path_buf()), Default::default());
        let settings = table(
            "token_url = \"ftp://x\"\npassword = \"hunter2-in-a-document\"\nkey = { secret = \"nowhere\" }\nextra = 1\n",
        );
        let mut s = Settings::new(&settings, &secrets);
        assert!(s.url("token_url").is_none());
        assert!(s.secret("password").is_none());
        assert!(s.secret("key").is_none());
        assert!(s.secret("absent").is_none());
        assert!(s.string("name").is_none());
        let problems = s.finish().unwrap_err();
        let text = problems.join("\n");
        assert_eq!(problems.len(), 6, "{text}");
        for expected in [
            "`token_url` must be an absolute http(s) URL",
            "`password` must name a secret",
            "secret `nowhere` is not defined",
            "`absent` is required",
            "`name` is required",
            "`extra` is not a setting of this adapter",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_plain_string_may_stand_where_a_secret_may() {
        let secrets = Secrets::default();
        let settings = table("client_id = \"dinas-client\"\n");
        let mut s = Settings::new(&settings, &secrets);
        let id = s.string_or_secret("client_id").unwrap();
        assert!(s.finish().is_ok());
        assert_eq!(id.value().unwrap().expose(), "dinas-client");
    }
}
