//! Console sessions shared by every replica through Redis ([`RedisSessions`], `[console] sessions = "redis"`):
//! a session made on one replica is valid on the others, and signing out on one ends it on all.
//!
//! One key per session, `penghubung:console:session:<id>`, a hash of the operator id and the sign-in time (Redis
//! `TIME`, so that replicas' clocks do not matter). Its TTL is the idle timeout, cut to what is left of the
//! absolute lifetime; every request of the session refreshes it in the same script that checks the lifetime, so
//! Redis forgets a session by itself once it is idle or too old.
//!
//! Fail closed: when Redis cannot be reached (or answers late: `[redis] timeout`, at least a second) there is no
//! session; the operator sees the sign-in page or a clear error, never somebody else's session. The connection is
//! this store's own, made through the shared connector (so a Sentinel failover is followed) and remade after any
//! error. A session id is never logged.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{Connection, Script};

use crate::session::{random_id, Session, SessionStore};

/// The prefix of every session key.
pub const SESSION_KEY_PREFIX: &str = "penghubung:console:session:";

/// Creates a session: `KEYS[1]` the key; `ARGV` operator, idle ms. Returns the sign-in time (Unix ms).
const CREATE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'operator', ARGV[1], 'created', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now
"#;

/// Checks and refreshes a session: `KEYS[1]` the key; `ARGV` idle ms, absolute ms. Returns `{operator, age
/// ms}`, or nil when there is none or it is too old (then it is deleted).
const TOUCH: &str = r#"
local fields = redis.call('HMGET', KEYS[1], 'operator', 'created')
if not fields[1] or not fields[2] then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local age = now - tonumber(fields[2])
local left = tonumber(ARGV[2]) - age
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
local ttl = tonumber(ARGV[1])
if left < ttl then ttl = left end
redis.call('PEXPIRE', KEYS[1], ttl)
return {fields[1], age}
"#;

/// Sessions in Redis, shared by every replica.
pub struct RedisSessions {
    connector: penghubung_redis::Connector,
    idle: Duration,
    absolute: Duration,
    timeout: Duration,
    connection: Mutex<Option<Connection>>,
    create: Script,
    touch: Script,
}

impl RedisSessions {
    /// Sessions through `connector`; every call answers within `timeout` (at least a second) or finds no session.
    /// Connects on first use, so that a replica starts while Redis is down.
    pub fn new(connector: penghubung_redis::Connector, idle: Duration, absolute: Duration, timeout: Duration) -> Self {
        RedisSessions {
            connector,
            idle,
            absolute,
            timeout: timeout.max(Duration::from_secs(1)),
            connection: Mutex::new(None),
            create: Script::new(CREATE),
            touch: Script::new(TOUCH),
        }
    }

    /// Sessions through the `[redis]` section (its URL, direct or Sentinel, and its timeout).
    pub fn of_config(
        redis: &penghubung_types::config::RedisConfig,
        idle: Duration,
        absolute: Duration,
    ) -> Result<Self, String> {
        Ok(RedisSessions::new(penghubung_redis::Connector::of_config(redis)?, idle, absolute, redis.timeout.0))
    }

    /// Runs `call` on this store's connection (made, or remade after an error, through the connector); `None`
    /// when Redis cannot be reached or answers with an error.
    fn with_connection<T>(&self, what: &str, call: impl FnOnce(&mut Connection) -> redis::RedisResult<T>) -> Option<T> {
        let run = || {
            let mut slot = self.connection.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                match self.connect() {
                    Ok(connection) => *slot = Some(connection),
                    Err(e) => {
                        tracing::warn!(redis = %self.connector.describe(), error = %e, "console sessions: Redis is unreachable, no session (sign in again once it is back)");
                        return None;
                    }
                }
            }
            let connection = slot.as_mut()?;
            match call(connection) {
                Ok(value) => Some(value),
                Err(e) => {
                    // The connection may be broken or to a demoted primary: remake it next time.
                    *slot = None;
                    tracing::warn!(redis = %self.connector.describe(), error = %e, what, "console sessions: Redis failed, no session");
                    None
                }
            }
        };
        // A blocking round trip: off the runtime's other tasks where the runtime allows it.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }

    /// A connection to the current primary. On a runtime (inside `block_in_place`) the primary is looked up with
    /// the async client under the timeout, so that an unreachable sentinel cannot hold a request for long.
    fn connect(&self) -> redis::RedisResult<Connection> {
        let client = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => handle
                .block_on(async { tokio::time::timeout(self.timeout, self.connector.client()).await })
                .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "no primary named in time")))??,
            _ => self.connector.blocking_client()?,
        };
        let connection = client.get_connection_with_timeout(self.timeout)?;
        connection.set_read_timeout(Some(self.timeout))?;
        connection.set_write_timeout(Some(self.timeout))?;
        Ok(connection)
    }

    fn key(id: &str) -> String {
        format!("{SESSION_KEY_PREFIX}{id}")
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl SessionStore for RedisSessions {
    fn create(&self, operator: &str) -> Option<Session> {
        let id = random_id()?;
        let key = Self::key(&id);
        let idle = millis(self.idle.min(self.absolute));
        self.with_connection("create", |c| self.create.key(&key).arg(operator).arg(idle).invoke::<i64>(c))?;
        let now = Instant::now();
        Some(Session { id, operator: operator.to_string(), created: now, last_seen: now })
    }

    fn touch(&self, id: &str) -> Option<Session> {
        // Ids are 64 hex digits; anything else is no session (and is never sent to Redis).
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let key = Self::key(id);
        let (idle, absolute) = (millis(self.idle), millis(self.absolute));
        let found = self.with_connection("touch", |c| {
            self.touch.key(&key).arg(idle).arg(absolute).invoke::<Option<(String, u64)>>(c)
        })??;
        let (operator, age_ms) = found;
        let now = Instant::now();
        let created = now.checked_sub(Duration::from_millis(age_ms)).unwrap_or(now);
        Some(Session { id: id.to_string(), operator, created, last_seen: now })
    }

    fn remove(&self, id: &str) {
        let key = Self::key(id);
        let _ = self.with_connection("remove", |c| redis::cmd("DEL").arg(&key).query::<i64>(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_redis_means_no_session_at_once() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let connector = penghubung_redis::Connector::new(&format!("redis://127.0.0.1:{port}")).unwrap();
        let sessions = RedisSessions::new(connector, Duration::from_secs(60), Duration::from_secs(600), Duration::ZERO);
        let started = Instant::now();
        assert!(sessions.create("ani").is_none(), "fail closed");
        assert!(sessions.touch(&"a".repeat(64)).is_none(), "fail closed");
        sessions.remove(&"a".repeat(64));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(sessions.touch("not-an-id").is_none());
    }
}
