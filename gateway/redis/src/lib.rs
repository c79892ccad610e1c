//! How every concern that shares state through Redis (rate limits, the audit shipper, the document store,
//! console sessions) reaches it: one [`Connector`] built from the `[redis]` config. It hands out a
//! [`redis::Client`] for the current primary, so that a caller that reconnects after a failure always asks
//! again where the primary is. Connections are each caller's own (a blocking `XREAD` must not stall the rate
//! limiter's requests).

#![forbid(unsafe_code)]

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult};

use penghubung_types::config::{redacted_url, RedisConfig};

/// Where Redis is, and how to reach it.
pub struct Connector {
    client: redis::Client,
    display: String,
}

impl Connector {
    /// The connector of a `[redis] url` (`redis://[:password@]host:port[/db]`). The config's validation
    /// already checked the URL; the error says what is wrong with it otherwise.
    pub fn new(url: &str) -> Result<Connector, String> {
        let client = redis::Client::open(url).map_err(|e| format!("[redis] url `{}`: {e}", redacted_url(url)))?;
        Ok(Connector { client, display: redacted_url(url) })
    }

    /// The connector of a `[redis]` section.
    pub fn of_config(config: &RedisConfig) -> Result<Connector, String> {
        Connector::new(&config.url)
    }

    /// A client for the current primary (ask again after every lost connection).
    pub async fn client(&self) -> RedisResult<redis::Client> {
        Ok(self.client.clone())
    }

    /// A client for the current primary, from synchronous code (not on a runtime thread).
    pub fn blocking_client(&self) -> RedisResult<redis::Client> {
        Ok(self.client.clone())
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
