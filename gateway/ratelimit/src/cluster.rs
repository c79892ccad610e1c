//! Cluster-wide limits in Redis: one GCRA script evaluates every limit of a request atomically, in one round
//! trip (`EVALSHA`; `EVAL` with the script text when Redis answers `NOSCRIPT`, e.g. after a restart). Time comes
//! from Redis (`TIME`), so replicas with skewed clocks agree.
//!
//! Availability: a request only calls Redis while it is known to be reachable, with `[redis] timeout`. The
//! first failure marks Redis down (one `warn` line) and wakes a supervisor task that reconnects with
//! exponential backoff (50 ms doubling up to `max_reconnect_backoff`); until it succeeds every request goes
//! straight to the configured fallback without touching the network. On reconnection the script is loaded,
//! Redis is marked up again and one `info` line says so.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, ErrorKind};
use tokio::sync::Notify;

use crate::error::LimitError;
use crate::limit::{reset_secs_from_ms, Admitted, RequestLimits};
use penghubung_types::config::{redacted_url, OnUnavailable, RedisConfig};

/// The GCRA, for every limit of one request, all-or-nothing.
///
/// `KEYS[i]` is a limit; `ARGV[5i-4 .. 5i]` its emission interval (µs per unit), window (µs: `burst` units),
/// the cost of this request (units), debt already incurred (units: response bytes sent since the last call, and
/// what the local fallback admitted while Redis was unreachable)
/// and kind (`0` requests: admitted when the whole cost fits; `1` bytes: admitted while the bucket is not
/// exhausted, then charged even into debt). Debt is recorded whatever the outcome; the cost only when every
/// limit admits. Returns `{1, left1, ms_to_full1, ...}` or `{0, index_of_refusing_limit, retry_ms}`.
pub const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats = {}
local refused = 0
local retry = 0
local function store(i, tat)
  local ttl = math.ceil((tat - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', string.format('%d', ttl))
end
for i = 1, n do
  local b = (i - 1) * 5
  local emission = tonumber(ARGV[b + 1])
  local window = tonumber(ARGV[b + 2])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tat = tat + tonumber(ARGV[b + 4]) * emission
  tats[i] = tat
  if refused == 0 then
    if ARGV[b + 5] == '1' then
      if tat - now >= window then
        refused = i
        retry = tat - now - window + emission
      end
    else
      local nxt = tat + tonumber(ARGV[b + 3]) * emission
      if nxt - now > window then
        refused = i
        retry = nxt - now - window
      end
    end
  end
end
if refused > 0 then
  for i = 1, n do
    if tonumber(ARGV[(i - 1) * 5 + 4]) > 0 then store(i, tats[i]) end
  end
  return {0, refused, math.ceil(retry / 1000)}
end
local out = {1}
for i = 1, n do
  local b = (i - 1) * 5
  local emission = tonumber(ARGV[b + 1])
  local window = tonumber(ARGV[b + 2])
  local nxt = tats[i] + tonumber(ARGV[b + 3]) * emission
  store(i, nxt)
  local used = nxt - now
  local left = window - used
  if left < 0 then left = 0 end
  out[2 * i] = math.floor(left / emission)
  out[2 * i + 1] = math.ceil(used / 1000)
end
return out
"#;

/// How often a reachable Redis is checked with `ROLE` while no request uses it.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The shared limit store and its health.
pub struct Cluster {
    connector: penghubung_redis::Connector,
    connection: ArcSwapOption<MultiplexedConnection>,
    up: AtomicBool,
    wake: Notify,
    timeout: Duration,
    max_backoff: Duration,
    on_unavailable: OnUnavailable,
    sha: String,
    url: String,
    /// Requests decided by the fallback because Redis was unreachable.
    fallback_requests: AtomicU64,
    /// Times Redis went from reachable to unreachable (the fallback took over).
    fallback_switches: AtomicU64,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Cluster {
    /// Starts the supervisor, which connects in the background. Redis starts out as down.
    pub fn start(config: &RedisConfig) -> Arc<Cluster> {
        // The URL was checked with the config.
        let connector = penghubung_redis::Connector::of_config(config).expect("[redis] url is checked with the config");
        let cluster = Arc::new(Cluster {
            connector,
            connection: ArcSwapOption::empty(),
            up: AtomicBool::new(false),
            wake: Notify::new(),
            timeout: config.timeout.0,
            max_backoff: config.max_reconnect_backoff.0.max(Duration::from_millis(50)),
            on_unavailable: config.on_unavailable,
            sha: redis::Script::new(SCRIPT).get_hash().to_string(),
            url: redacted_url(&config.url),
            fallback_requests: AtomicU64::new(0),
            fallback_switches: AtomicU64::new(0),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(Arc::clone(&cluster).supervise());
        *cluster.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        cluster
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn on_unavailable(&self) -> OnUnavailable {
        self.on_unavailable
    }

    /// Requests decided by the fallback so far.
    pub fn fallback_requests(&self) -> u64 {
        self.fallback_requests.load(Ordering::Relaxed)
    }

    /// Times Redis became unreachable so far.
    pub fn fallback_switches(&self) -> u64 {
        self.fallback_switches.load(Ordering::Relaxed)
    }

    pub(crate) fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }

    /// Evaluates the limits in Redis. `Err(())`: Redis is unreachable, the fallback decides.
    pub(crate) async fn check<'a>(
        &self,
        limits: &RequestLimits<'a>,
        request_bytes: u64,
    ) -> Result<Result<Option<Admitted<'a>>, LimitError>, ()> {
        let connection = match (self.is_up(), self.connection.load_full()) {
            (true, Some(connection)) => connection,
            _ => return self.fall_back(),
        };
        let mut connection = (*connection).clone();
        let mut debts = [0u64; 5];
        for (debt, limit) in debts.iter_mut().zip(limits.iter()) {
            *debt = limit.pending_units.swap(0, Ordering::Relaxed);
        }
        let evalsha = command("EVALSHA", self.sha.as_bytes(), limits, request_bytes, &debts);
        let result = tokio::time::timeout(self.timeout, async {
            match evalsha.query_async::<Vec<i64>>(&mut connection).await {
                Err(e) if e.kind() == ErrorKind::NoScriptError => {
                    command("EVAL", SCRIPT.as_bytes(), limits, request_bytes, &debts)
                        .query_async::<Vec<i64>>(&mut connection)
                        .await
                }
                other => other,
            }
        })
        .await;
        let values = match result {
            Ok(Ok(values)) => values,
            failed => {
                // Not charged: keep the debt for the next call (or the next fallback period).
                for (debt, limit) in debts.iter().zip(limits.iter()) {
                    if *debt > 0 {
                        limit.pending_units.fetch_add(*debt, Ordering::Relaxed);
                    }
                }
                let reason = match failed {
                    Ok(Err(e)) if penghubung_redis::is_demoted(&e) => format!("no longer the primary: {e}"),
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {:?}", self.timeout),
                };
                self.mark_down(&reason);
                return self.fall_back();
            }
        };
        match values.first() {
            Some(1) => {
                let mut tightest = None;
                for (i, limit) in limits.iter().enumerate() {
                    let remaining = values.get(1 + 2 * i).copied().unwrap_or(0).max(0) as u64;
                    let reset_ms = values.get(2 + 2 * i).copied().unwrap_or(0).max(0) as u64;
                    let admitted = Admitted { limit, remaining, reset_secs: reset_secs_from_ms(reset_ms) };
                    tightest = Admitted::tighter(tightest, admitted);
                }
                Ok(Ok(tightest))
            }
            Some(0) => {
                let index = values.get(1).copied().unwrap_or(1).max(1) as usize - 1;
                let retry_ms = values.get(2).copied().unwrap_or(1000).max(0) as u64;
                match limits.iter().nth(index) {
                    Some(limit) => Ok(Err(limit.rejection(Duration::from_millis(retry_ms)))),
                    None => self.fall_back(),
                }
            }
            _ => {
                self.mark_down("the rate-limit script returned an unexpected answer");
                self.fall_back()
            }
        }
    }

    /// Counts a request the fallback decides, and says so (`Err(())`).
    fn fall_back<T>(&self) -> Result<T, ()> {
        self.fallback_requests.fetch_add(1, Ordering::Relaxed);
        Err(())
    }

    fn mark_down(&self, reason: &str) {
        if self.set_down(reason) {
            self.wake.notify_one();
        }
    }

    /// Marks Redis unreachable; true when it was up until now.
    fn set_down(&self, reason: &str) -> bool {
        let was_up = self.up.swap(false, Ordering::AcqRel);
        if was_up {
            self.fallback_switches.fetch_add(1, Ordering::Relaxed);
            self.connection.store(None);
            tracing::warn!(
                redis = %self.url,
                reason,
                fallback = fallback_name(self.on_unavailable),
                "Redis is unreachable: cluster-wide rate limits are suspended, the fallback applies until it is back"
            );
        }
        was_up
    }

    /// Whether the current connection answers `ROLE` within the timeout (at least a second), as the primary:
    /// after a Sentinel failover the old primary answers as a replica, and its connection counts as lost so
    /// that the supervisor reconnects to the new primary.
    async fn ping(&self) -> bool {
        let Some(connection) = self.connection.load_full() else { return false };
        let mut connection = (*connection).clone();
        let command = redis::cmd("ROLE");
        let role = command.query_async::<redis::Value>(&mut connection);
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), role).await {
            Ok(Ok(redis::Value::Array(parts))) => {
                parts.first().and_then(|role| redis::from_redis_value::<String>(role).ok()).as_deref() == Some("master")
            }
            _ => false,
        }
    }

    /// Connects, and reconnects with backoff after every loss.
    async fn supervise(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        let mut ever_connected = false;
        let mut reported = false;
        loop {
            match self.connect().await {
                Ok(connection) => {
                    self.connection.store(Some(Arc::new(connection)));
                    self.up.store(true, Ordering::Release);
                    if ever_connected || reported {
                        tracing::info!(redis = %self.url, "Redis is reachable again: cluster-wide rate limits resume");
                    } else {
                        tracing::info!(redis = %self.url, "cluster-wide rate limits in Redis");
                    }
                    ever_connected = true;
                    reported = false;
                    backoff = Duration::from_millis(50);
                    // Until a request finds Redis gone, or a periodic ROLE does (gone, or demoted to a replica),
                    // so that the ops listener's readiness and metrics follow Redis without traffic.
                    loop {
                        tokio::select! {
                            _ = self.wake.notified() => break,
                            _ = tokio::time::sleep(HEALTH_CHECK_EVERY) => {
                                if !self.ping().await {
                                    self.set_down("ROLE unanswered, or no longer the primary");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    if !ever_connected && !reported {
                        tracing::warn!(
                            redis = %self.url,
                            error = %e,
                            fallback = fallback_name(self.on_unavailable),
                            "Redis is unreachable: the fallback applies until it is reachable"
                        );
                        reported = true;
                    } else {
                        tracing::debug!(redis = %self.url, error = %e, ?backoff, "Redis still unreachable");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let connect_timeout = self.timeout.max(Duration::from_secs(1));
        let attempt = async {
            let mut connection = self.connector.connect(connect_timeout, connect_timeout).await?;
            redis::cmd("SCRIPT").arg("LOAD").arg(SCRIPT).query_async::<String>(&mut connection).await?;
            Ok::<_, redis::RedisError>(connection)
        };
        match tokio::time::timeout(connect_timeout * 2, attempt).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no connection within {:?}", connect_timeout * 2)),
        }
    }
}

/// `EVALSHA sha n keys... args...` (or `EVAL script ...`).
fn command(verb: &str, script: &[u8], limits: &RequestLimits<'_>, request_bytes: u64, debts: &[u64; 5]) -> Cmd {
    let mut cmd = redis::cmd(verb);
    cmd.arg(script).arg(limits.iter().count());
    for limit in limits.iter() {
        cmd.arg(&*limit.redis_key);
    }
    for (limit, debt) in limits.iter().zip(debts) {
        let bytes = limit.scope.counts_bytes();
        cmd.arg(&*limit.emission_arg)
            .arg(&*limit.window_arg)
            .arg(if bytes { request_bytes } else { 1 })
            .arg(*debt)
            .arg(if bytes { "1" } else { "0" });
    }
    cmd
}

fn fallback_name(on_unavailable: OnUnavailable) -> &'static str {
    match on_unavailable {
        OnUnavailable::LocalFallback => "local_fallback",
        OnUnavailable::FailOpen => "fail_open",
        OnUnavailable::FailClosed => "fail_closed",
    }
}
