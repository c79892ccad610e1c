//! How every concern that shares state through Redis (rate limits, the audit shipper, the document store,
//! console sessions) reaches it: one [`Connector`] built from the `[redis]` config. It hands out a
//! [`redis::Client`] for the current primary, so that a caller that reconnects after a failure always asks
//! again where the primary is. Connections are each caller's own (a blocking `XREAD` must not stall the rate
//! limiter's requests).
//!
//! Two kinds of target ([`RedisTarget`]): one server (`redis://`), or a Sentinel deployment
//! (`redis+sentinel://h1:p1,h2:p2/master_name[/db]`). With Sentinel, every [`Connector::client`] (and so every
//! [`Connector::connect`]) asks the sentinels, in the order given, which server is the primary of
//! `master_name` now, and checks with `ROLE` that it says so itself; after a failover the next reconnection
//! therefore reaches the new primary. A connection to a primary that was demoted answers writes with
//! `READONLY`: callers treat every error as a lost connection ([`is_demoted`] names that case for logs) and
//! reconnect through here.

#![forbid(unsafe_code)]

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, RedisConnectionInfo, RedisError, RedisResult,
};

use penghubung_types::config::{redacted_url, RedisConfig, RedisTarget, SentinelTarget};

/// The longest a Sentinel lookup (the sentinels asked for the primary, the primary's `ROLE`) may take.
pub const SENTINEL_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

fn no_answer() -> RedisError {
    RedisError::from((
        ErrorKind::IoError,
        "no answer from the sentinels",
        format!("no primary named within {SENTINEL_LOOKUP_TIMEOUT:?}"),
    ))
}

/// Where Redis is, and how to reach it.
pub struct Connector {
    target: Target,
    display: String,
}

enum Target {
    /// One server.
    Direct(redis::Client),
    /// Whatever primary the sentinels name.
    Sentinel { sentinels: Vec<ConnectionInfo>, master_name: String, primary: SentinelNodeConnectionInfo },
}

impl Connector {
    /// The connector of a `[redis] url` (`redis://[:password@]host:port[/db]` or
    /// `redis+sentinel://[:password@]host:port[,host:port...]/master_name[/db]`). The config's validation
    /// already checked the URL; the error says what is wrong with it otherwise (never with the password).
    pub fn new(url: &str) -> Result<Connector, String> {
        let display = redacted_url(url);
        let target = match RedisTarget::parse(url).map_err(|e| format!("[redis] url {e}"))? {
            RedisTarget::Direct(url) => {
                Target::Direct(redis::Client::open(url.as_str()).map_err(|e| format!("[redis] url `{display}`: {e}"))?)
            }
            RedisTarget::Sentinel(sentinel) => sentinel_target(sentinel),
        };
        Ok(Connector { target, display })
    }

    /// The connector of a `[redis]` section.
    pub fn of_config(config: &RedisConfig) -> Result<Connector, String> {
        Connector::new(&config.url)
    }

    /// A client for the current primary (ask again after every lost connection). With Sentinel this asks the
    /// sentinels (and the primary they name, with `ROLE`), so it takes a round trip or two: call it to
    /// (re)connect, not per command. A lookup that gets no answer within [`SENTINEL_LOOKUP_TIMEOUT`] fails.
    pub async fn client(&self) -> RedisResult<redis::Client> {
        match &self.target {
            Target::Direct(client) => Ok(client.clone()),
            Target::Sentinel { sentinels, master_name, primary } => {
                let lookup =
                    async { Sentinel::build(sentinels.clone())?.async_master_for(master_name, Some(primary)).await };
                tokio::time::timeout(SENTINEL_LOOKUP_TIMEOUT, lookup).await.unwrap_or_else(|_| Err(no_answer()))
            }
        }
    }

    /// A client for the current primary, from synchronous code (not on a runtime thread). The Sentinel lookup
    /// runs on its own thread, so that a sentinel or primary that accepts but never answers (the redis crate's
    /// synchronous lookup has no timeout) fails the call after [`SENTINEL_LOOKUP_TIMEOUT`] instead of blocking
    /// a management write forever.
    pub fn blocking_client(&self) -> RedisResult<redis::Client> {
        match &self.target {
            Target::Direct(client) => Ok(client.clone()),
            Target::Sentinel { sentinels, master_name, primary } => {
                let (sentinels, master_name, primary) = (sentinels.clone(), master_name.clone(), primary.clone());
                let (answer, answered) = std::sync::mpsc::channel();
                std::thread::Builder::new()
                    .name("sentinel-lookup".into())
                    .spawn(move || {
                        let found =
                            Sentinel::build(sentinels).and_then(|mut s| s.master_for(&master_name, Some(&primary)));
                        let _ = answer.send(found);
                    })
                    .map_err(|e| {
                        RedisError::from((ErrorKind::IoError, "cannot start the Sentinel lookup", e.to_string()))
                    })?;
                answered.recv_timeout(SENTINEL_LOOKUP_TIMEOUT).unwrap_or_else(|_| Err(no_answer()))
            }
        }
    }

    /// A new multiplexed connection to the primary, connected within `connect_timeout` and answering every
    /// command within `response_timeout` (give a blocking `XREAD` more than its `BLOCK`).
    pub async fn connect(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> RedisResult<MultiplexedConnection> {
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(connect_timeout).set_response_timeout(response_timeout);
        self.client().await?.get_multiplexed_async_connection_with_config(&config).await
    }

    /// The target without its password, for logs and answers.
    pub fn describe(&self) -> &str {
        &self.display
    }
}

/// Whether an error says the server stopped being the primary (`READONLY You can't write against a read only
/// replica`), as after a Sentinel failover: the connection is as good as lost; reconnect to the new primary.
pub fn is_demoted(error: &redis::RedisError) -> bool {
    error.code() == Some("READONLY") || error.to_string().contains("READONLY")
}

fn sentinel_target(sentinel: SentinelTarget) -> Target {
    let sentinels = sentinel
        .sentinels
        .into_iter()
        .map(|(host, port)| ConnectionInfo {
            addr: ConnectionAddr::Tcp(host, port),
            redis: RedisConnectionInfo::default(),
        })
        .collect();
    let primary = SentinelNodeConnectionInfo {
        tls_mode: None,
        redis_connection_info: Some(RedisConnectionInfo {
            db: sentinel.db,
            username: sentinel.username,
            password: sentinel.password,
            ..RedisConnectionInfo::default()
        }),
    };
    Target::Sentinel { sentinels, master_name: sentinel.master_name, primary }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_of_url_make_a_connector_that_hides_the_password() {
        let direct = Connector::new("redis://:hunter2@127.0.0.1:6379/0").unwrap();
        assert_eq!(direct.describe(), "redis://***@127.0.0.1:6379/0");
        let sentinel = Connector::new("redis+sentinel://:hunter2@127.0.0.1:26379,127.0.0.1:26380/mymaster/2").unwrap();
        assert_eq!(sentinel.describe(), "redis+sentinel://***@127.0.0.1:26379,127.0.0.1:26380/mymaster/2");
        let Target::Sentinel { sentinels, master_name, primary } = &sentinel.target else { panic!("not sentinel") };
        assert_eq!(sentinels.len(), 2);
        assert_eq!(master_name, "mymaster");
        let login = primary.redis_connection_info.as_ref().unwrap();
        assert_eq!((login.db, login.password.as_deref()), (2, Some("hunter2")));
        let error = Connector::new("redis+sentinel://:hunter2@127.0.0.1:26379").err().unwrap();
        assert!(error.contains("names no primary") && !error.contains("hunter2"), "{error}");
    }

    #[test]
    fn no_sentinel_answering_is_an_error_not_a_hang() {
        // A port nothing listens on: the lookup fails at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let connector = Connector::new(&format!("redis+sentinel://127.0.0.1:{port}/mymaster")).unwrap();
        assert!(connector.blocking_client().is_err());
    }
}
