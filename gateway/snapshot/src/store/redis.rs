//! The Redis store every replica shares (`[store] backend = "redis"`). Keys, with `P` = `[store] redis_prefix`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P}docs` | hash | store key (`services/dinkes/x.toml`) → document text |
//! | `{P}generation` | string (int) | the store generation; missing = 0, the empty store |
//! | `{P}changes` | stream | one entry per commit, id `<generation>-0`: `generation`, `keys` (JSON array), `who`, `action`, `at` |
//! | `{P}journal:<store key>` | list | the journal entries of that key (JSON of [`JournalEntry`]), oldest first |
//! | `{P}revoked` | string | the CA's revoked serials (hex, one per line) |
//! | `{P}crl` | string | the CA's current CRL (PEM), signed by the CA key each replica holds on disk |
//!
//! A commit is one Lua script: it checks the generation it was prepared at, then writes the documents, appends
//! the journal entries, sets the CA lists when the change revokes, increments the generation and appends the
//! change to the stream, all or nothing. Replicas follow the stream and reload. Private keys and secrets are
//! never written here. The API is synchronous (the management plane and the loader run on blocking threads);
//! one connection per store, reopened after a failure, each command answering within `[redis] timeout` (at
//! least 1 s).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use penghubung_redis::Connector;
use penghubung_types::config::Config;
use penghubung_types::diagnostics::Diagnostic;

use super::journal::{Journal, JournalEntry};
use super::{check_key, CaLists, ChangeMeta, DocumentStore, Listing, StoreError, StoredDocument};

/// The shortest wait for a store command (the limiter's `[redis] timeout` is often tens of milliseconds; a
/// whole-store read is not).
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The stream keeps about this many changes (`MAXLEN ~` in the script; a replica further behind reloads
/// everything).
pub const STREAM_MAX_LEN: u64 = 10_000;

/// The commit: compare-and-set on the generation, then everything, or nothing.
///
/// KEYS: docs, generation, changes, revoked, crl, then one journal list per journal entry.
/// ARGV: expected generation, who, action, at, keys (JSON), revokes ("1"/"0"), revoked, crl, the number of
/// writes, then (key, "put"/"del", text) per write, then one journal entry (JSON) per journal key.
/// Returns {1, new generation}, {0, found generation} on a conflict, {2, last stream generation} when the
/// stream is ahead of the generation (a store damaged by hand: nothing written).
const COMMIT_SCRIPT: &str = r"
local found = tonumber(redis.call('GET', KEYS[2]) or '0')
if found ~= tonumber(ARGV[1]) then
  return {0, found}
end
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
if last[1] then
  local last_generation = tonumber(string.match(last[1][1], '^(%d+)-'))
  if last_generation and last_generation > found then
    return {2, last_generation}
  end
end
local writes = tonumber(ARGV[9])
local i = 10
for _ = 1, writes do
  if ARGV[i + 1] == 'put' then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  else
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
  i = i + 3
end
for j = 6, #KEYS do
  redis.call('RPUSH', KEYS[j], ARGV[i])
  i = i + 1
end
if ARGV[6] == '1' then
  redis.call('SET', KEYS[4], ARGV[7])
  redis.call('SET', KEYS[5], ARGV[8])
end
local generation = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '10000', generation .. '-0',
  'generation', generation, 'keys', ARGV[5], 'who', ARGV[2], 'action', ARGV[3], 'at', ARGV[4])
return {1, generation}
";

/// The key names of one store.
#[derive(Clone, Debug)]
pub struct StoreKeys {
    prefix: String,
    /// `{P}docs`
    pub docs: String,
    /// `{P}generation`
    pub generation: String,
    /// `{P}changes`
    pub changes: String,
    /// `{P}revoked`
    pub revoked: String,
    /// `{P}crl`
    pub crl: String,
}

impl StoreKeys {
    /// The keys under `prefix`.
    pub fn new(prefix: &str) -> StoreKeys {
        StoreKeys {
            prefix: prefix.to_string(),
            docs: format!("{prefix}docs"),
            generation: format!("{prefix}generation"),
            changes: format!("{prefix}changes"),
            revoked: format!("{prefix}revoked"),
            crl: format!("{prefix}crl"),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{P}journal:<store key>`
    pub fn journal(&self, key: &str) -> String {
        format!("{}journal:{key}", self.prefix)
    }
}

/// What the store and its journal share: the connector, the keys and one connection.
struct Shared {
    connector: Connector,
    keys: StoreKeys,
    timeout: Duration,
    connection: Mutex<Option<redis::Connection>>,
    script: redis::Script,
}

impl Shared {
    /// Runs `f` on the store's connection (opened when there is none; dropped after an I/O failure, so that
    /// the next call asks the connector again where the primary is).
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let unavailable =
            |e: redis::RedisError| StoreError::Unavailable(format!("Redis {}: {e}", self.connector.describe()));
        let mut slot = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let client = self.connector.blocking_client().map_err(unavailable)?;
            let connection = client.get_connection_with_timeout(self.timeout).map_err(unavailable)?;
            connection.set_read_timeout(Some(self.timeout)).map_err(unavailable)?;
            connection.set_write_timeout(Some(self.timeout)).map_err(unavailable)?;
            *slot = Some(connection);
        }
        let Some(connection) = slot.as_mut() else {
            return Err(StoreError::Unavailable("no connection".into()));
        };
        match f(connection) {
            Ok(value) => Ok(value),
            Err(e) => {
                // A demoted primary (after a Sentinel failover) refuses writes with READONLY: as good as lost.
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                    || penghubung_redis::is_demoted(&e)
                {
                    *slot = None;
                }
                Err(unavailable(e))
            }
        }
    }

    fn describe(&self) -> String {
        format!("Redis store {} (prefix `{}`)", self.connector.describe(), self.keys.prefix)
    }
}

/// The document store in Redis.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

impl RedisStore {
    /// The store under `prefix` of the Redis `connector` reaches, each command answering within `timeout` (at
    /// least 1 s).
    pub fn new(connector: Connector, prefix: &str, timeout: Duration) -> RedisStore {
        RedisStore {
            shared: Arc::new(Shared {
                connector,
                keys: StoreKeys::new(prefix),
                timeout: timeout.max(MIN_TIMEOUT),
                connection: Mutex::new(None),
                script: redis::Script::new(COMMIT_SCRIPT),
            }),
        }
    }

    /// The store of `[redis]` and `[store] redis_prefix` (the config's validation requires `[redis]`).
    pub fn of_config(config: &Config) -> Result<RedisStore, StoreError> {
        let redis = config
            .redis
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("[store] backend = \"redis\" needs a [redis] section".into()))?;
        let connector = Connector::of_config(redis).map_err(StoreError::Unavailable)?;
        Ok(RedisStore::new(connector, &config.store.redis_prefix, redis.timeout.0))
    }

    /// The key names of this store.
    pub fn keys(&self) -> &StoreKeys {
        &self.shared.keys
    }

    /// The journal of this store.
    pub fn redis_journal(&self) -> RedisJournal {
        RedisJournal { shared: self.shared.clone() }
    }

    fn documents_of(&self, hash: HashMap<String, String>) -> (Vec<StoredDocument>, Vec<Diagnostic>) {
        let mut documents = Vec::with_capacity(hash.len());
        let mut notes = Vec::new();
        for (key, text) in hash {
            match check_key(&key) {
                Ok(kind) => documents.push(StoredDocument { kind, origin: key.clone(), key, text }),
                Err(e) => {
                    notes.push(Diagnostic::warning(format!("{} {key}", self.shared.keys.docs), format!("ignored: {e}")))
                }
            }
        }
        documents.sort_by(|a, b| a.key.cmp(&b.key));
        notes.sort_by(|a, b| a.file.cmp(&b.file));
        (documents, notes)
    }

    /// Commits until the store did not move in between (for the unrecorded `put`/`delete`).
    fn commit_latest(&self, writes: &[(String, Option<String>)], action: &str) -> Result<u64, StoreError> {
        let meta = ChangeMeta { who: "system".into(), action: action.into(), at: now_rfc3339(), ca: None };
        let mut attempts = 0;
        loop {
            let generation = self.generation()?;
            match self.commit(generation, writes, &[], &meta) {
                Err(StoreError::Conflict { .. }) if attempts < 10 => attempts += 1,
                other => return other,
            }
        }
    }
}

impl DocumentStore for RedisStore {
    fn list(&self) -> Result<(Vec<StoredDocument>, Vec<Diagnostic>), StoreError> {
        self.list_with_generation().map(|l| (l.documents, l.notes))
    }

    fn list_with_generation(&self) -> Result<Listing, StoreError> {
        let keys = &self.shared.keys;
        let (hash, generation): (HashMap<String, String>, Option<u64>) = self
            .shared
            .with_connection(|c| redis::pipe().atomic().hgetall(&keys.docs).get(&keys.generation).query(c))?;
        let (documents, notes) = self.documents_of(hash);
        Ok(Listing { documents, notes, generation: generation.unwrap_or(0) })
    }

    fn generation(&self) -> Result<u64, StoreError> {
        let key = &self.shared.keys.generation;
        let found: Option<u64> = self.shared.with_connection(|c| redis::cmd("GET").arg(key).query(c))?;
        Ok(found.unwrap_or(0))
    }

    fn commit(
        &self,
        expected: u64,
        writes: &[(String, Option<String>)],
        journal: &[JournalEntry],
        meta: &ChangeMeta,
    ) -> Result<u64, StoreError> {
        for (key, _) in writes {
            check_key(key)?;
        }
        let keys = &self.shared.keys;
        let changed: Vec<&str> = writes.iter().map(|(k, _)| k.as_str()).collect();
        let changed = serde_json::to_string(&changed).unwrap_or_else(|_| "[]".into());
        let mut invocation = self.shared.script.prepare_invoke();
        invocation.key(&keys.docs).key(&keys.generation).key(&keys.changes).key(&keys.revoked).key(&keys.crl);
        for entry in journal {
            invocation.key(keys.journal(&entry.key));
        }
        invocation.arg(expected).arg(&meta.who).arg(&meta.action).arg(&meta.at).arg(&changed);
        match &meta.ca {
            Some(ca) => invocation.arg("1").arg(&ca.revoked).arg(&ca.crl_pem),
            None => invocation.arg("0").arg("").arg(""),
        };
        invocation.arg(writes.len());
        for (key, text) in writes {
            match text {
                Some(text) => invocation.arg(key).arg("put").arg(text),
                None => invocation.arg(key).arg("del").arg(""),
            };
        }
        for entry in journal {
            let json =
                serde_json::to_string(entry).map_err(|e| StoreError::Unavailable(format!("journal entry: {e}")))?;
            invocation.arg(json);
        }
        let (status, generation): (i64, u64) = self.shared.with_connection(|c| invocation.invoke(c))?;
        match status {
            1 => Ok(generation),
            0 => Err(StoreError::Conflict { expected, found: generation }),
            _ => Err(StoreError::Unavailable(format!(
                "the change stream {} is at generation {generation}, ahead of the store's {expected}: the store \
                 was changed outside Penghubung; nothing was written",
                keys.changes
            ))),
        }
    }

    fn put(&self, key: &str, text: &str) -> Result<(), StoreError> {
        self.commit_latest(&[(key.to_string(), Some(text.to_string()))], "put").map(|_| ())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.commit_latest(&[(key.to_string(), None)], "delete").map(|_| ())
    }

    fn watch_dir(&self) -> Option<PathBuf> {
        None
    }

    fn describe(&self) -> String {
        self.shared.describe()
    }

    fn journal(&self) -> Option<Journal> {
        Some(Journal::Redis(self.redis_journal()))
    }

    fn shared_ca(&self) -> Result<Option<CaLists>, StoreError> {
        let keys = &self.shared.keys;
        let (revoked, crl): (Option<String>, Option<String>) =
            self.shared.with_connection(|c| redis::cmd("MGET").arg(&keys.revoked).arg(&keys.crl).query(c))?;
        Ok(match (revoked, crl) {
            (Some(revoked), Some(crl_pem)) => Some(CaLists { revoked, crl_pem }),
            _ => None,
        })
    }

    /// Seeds an empty store in one commit (two replicas starting together: one seeds, the other finds it seeded).
    fn seed_if_empty(&self, documents: &[(&str, &str)]) -> Result<usize, StoreError> {
        let listing = self.list_with_generation()?;
        if !listing.documents.is_empty() {
            return Ok(0);
        }
        let writes: Vec<(String, Option<String>)> = documents
            .iter()
            .filter(|(key, _)| check_key(key).is_ok())
            .map(|(key, text)| (key.to_string(), Some(text.to_string())))
            .collect();
        let meta = ChangeMeta { who: "system".into(), action: "seed".into(), at: now_rfc3339(), ca: None };
        match self.commit(listing.generation, &writes, &[], &meta) {
            Ok(_) => Ok(writes.len()),
            Err(StoreError::Conflict { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// The journal lists of a Redis store.
#[derive(Clone)]
pub struct RedisJournal {
    shared: Arc<Shared>,
}

impl RedisJournal {
    /// Every entry of `key`, oldest first; an entry's version is its place in the list (1 for the first).
    pub fn entries(&self, key: &str) -> std::io::Result<Vec<JournalEntry>> {
        let list = self.shared.keys.journal(key);
        let texts: Vec<String> =
            self.shared.with_connection(|c| redis::cmd("LRANGE").arg(&list).arg(0).arg(-1).query(c)).map_err(io)?;
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let mut entry: JournalEntry = serde_json::from_str(text).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{list} entry {}: {e}", i + 1))
                })?;
                entry.version = i as u64 + 1;
                Ok(entry)
            })
            .collect()
    }

    /// Every store key that has a journal, sorted.
    pub fn keys(&self) -> std::io::Result<Vec<String>> {
        let prefix = self.shared.keys.journal("");
        let pattern = format!("{}*", escape_glob(&prefix));
        let found: Vec<String> = self
            .shared
            .with_connection(|c| {
                let mut out = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) =
                        redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000).query(c)?;
                    out.extend(batch);
                    if next == 0 {
                        return Ok(out);
                    }
                    cursor = next;
                }
            })
            .map_err(io)?;
        let mut keys: Vec<String> =
            found.into_iter().filter_map(|k| k.strip_prefix(&prefix).map(str::to_string)).collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// For messages.
    pub fn describe(&self) -> String {
        format!("the journal of the {}", self.shared.describe())
    }
}

fn io(e: StoreError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// `prefix` with the glob characters of `SCAN MATCH` escaped.
fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Now as RFC 3339 (UTC, seconds): the change stream's `at`.
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_globs() {
        let keys = StoreKeys::new("dinas:store:");
        assert_eq!(keys.docs, "dinas:store:docs");
        assert_eq!(keys.journal("opds/x.toml"), "dinas:store:journal:opds/x.toml");
        assert_eq!(escape_glob("a*b[c]"), "a\\*b\\[c\\]");
    }

    #[test]
    fn the_stream_time_is_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }
}
