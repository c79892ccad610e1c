//! Console sessions: the [`SessionStore`] trait (in this process, [`MemorySessions`]; shared by a cluster's
//! replicas, [`crate::redis_sessions::RedisSessions`]) with an idle timeout and an absolute lifetime. A session id is 256 random bits, sent only in the
//! `penghubung_session` cookie (`Secure; HttpOnly; SameSite=Strict`); every request of a session refreshes its
//! idle clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

/// One signed-in operator's session.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: String,
    /// The operator id.
    pub operator: String,
    pub created: Instant,
    pub last_seen: Instant,
}

/// Where sessions live. Implementations check the idle timeout and the absolute lifetime themselves.
pub trait SessionStore: Send + Sync {
    /// A new session for `operator`, with a fresh random id.
    fn create(&self, operator: &str) -> Option<Session>;
    /// The live session `id`, its idle clock refreshed; `None` when unknown, idle too long or too old (and then
    /// it is removed).
    fn touch(&self, id: &str) -> Option<Session>;
    /// Ends the session.
    fn remove(&self, id: &str);
}

/// A fresh random id: 32 bytes as 64 hex digits.
pub fn random_id() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Sessions in this process's memory (lost on restart: operators sign in again).
pub struct MemorySessions {
    idle: Duration,
    absolute: Duration,
    sessions: Mutex<HashMap<String, Session>>,
}

impl MemorySessions {
    pub fn new(idle: Duration, absolute: Duration) -> MemorySessions {
        MemorySessions { idle, absolute, sessions: Mutex::new(HashMap::new()) }
    }

    fn live(&self, session: &Session, now: Instant) -> bool {
        now.duration_since(session.last_seen) < self.idle && now.duration_since(session.created) < self.absolute
    }
}

impl SessionStore for MemorySessions {
    fn create(&self, operator: &str) -> Option<Session> {
        let now = Instant::now();
        let session = Session { id: random_id()?, operator: operator.to_string(), created: now, last_seen: now };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| self.live(s, now));
        sessions.insert(session.id.clone(), session.clone());
        Some(session)
    }

    fn touch(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let session = sessions.get_mut(id)?;
        if !self.live(session, now) {
            sessions.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    fn remove(&self, id: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_when_idle_and_when_old() {
        let store = MemorySessions::new(Duration::from_millis(80), Duration::from_millis(300));
        let session = store.create("ani").unwrap();
        assert_eq!(session.id.len(), 64);
        assert_ne!(store.create("ani").unwrap().id, session.id, "fresh ids");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(40));
            assert!(store.touch(&session.id).is_some(), "each request refreshes the idle clock");
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(store.touch(&session.id).is_none(), "idle too long");

        let old = store.create("ani").unwrap();
        for _ in 0..8 {
            std::thread::sleep(Duration::from_millis(40));
            let _ = store.touch(&old.id);
        }
        assert!(store.touch(&old.id).is_none(), "past the absolute lifetime");

        let ended = store.create("ani").unwrap();
        store.remove(&ended.id);
        assert!(store.touch(&ended.id).is_none());
    }
}
