//! Client sessions: each client's last applied request and its reply, so that a retried request
//! is applied exactly once and gets its original answer (Raft thesis, section 6.3).
//!
//! The table is bounded. Expiry is a deterministic function of the applied log (log indices,
//! never wall clocks), so every replica expires the same sessions at the same point.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::{ClientId, Outcome, Sequence};

/// Bounds on the session table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// At most this many sessions; beyond it the least recently active is expired.
    pub max_sessions: usize,
    /// A session idle for this many log entries is expired.
    pub idle_entries: u64,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits { max_sessions: 10_000, idle_entries: 1_000_000 }
    }
}

/// What the state machine remembers of one client: enough to answer a retry of its latest request
/// without applying it twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The number of the client's latest applied request.
    pub last_seq: Sequence,
    /// The reply to that request, repeated to a retry.
    pub reply: Outcome,
    /// Log index of the session's last applied request.
    pub last_active: u64,
}

/// What to do with an incoming request, given the client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dedup {
    /// Not seen before: apply it.
    New,
    /// Already applied: answer with the recorded reply.
    Duplicate(Outcome),
    /// Older than the client's last request: it has moved on.
    Stale,
    /// The session is gone, so whether this request was applied is unknown.
    Expired,
}

/// The session table: one session per client, expired when idle too long or when the table is full
/// (oldest first).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    by_client: BTreeMap<ClientId, Session>,
    /// (last_active, client), oldest first.
    by_activity: BTreeSet<(u64, ClientId)>,
    limits: SessionLimits,
}

impl Sessions {
    /// An empty table with these limits.
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions { by_client: BTreeMap::new(), by_activity: BTreeSet::new(), limits }
    }

    /// The number of live sessions.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// True if no session is live.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// The session of `client`, if it is live.
    pub fn get(&self, client: ClientId) -> Option<&Session> {
        self.by_client.get(&client)
    }

    /// Every live session, in client order (the order snapshots write them in).
    pub fn iter(&self) -> impl Iterator<Item = (&ClientId, &Session)> {
        self.by_client.iter()
    }

    /// What to do with request `seq` of `client`, given its session.
    pub fn check(&self, client: ClientId, seq: Sequence) -> Dedup {
        if cfg!(feature = "bug-no-duplicate-detection") {
            return Dedup::New;
        }
        match self.by_client.get(&client) {
            Some(s) if seq == s.last_seq => Dedup::Duplicate(s.reply.clone()),
            Some(s) if seq < s.last_seq => Dedup::Stale,
            Some(_) => Dedup::New,
            // A client's first request starts its session; a later one means we forgot it.
            None if seq.0 <= 1 => Dedup::New,
            None => Dedup::Expired,
        }
    }

    /// Records an applied request at log index `index`, then expires what the limits demand.
    pub fn record(&mut self, client: ClientId, seq: Sequence, reply: Outcome, index: u64) {
        if let Some(old) =
            self.by_client.insert(client, Session { last_seq: seq, reply, last_active: index })
        {
            // Planted bug: the old activity entry stays behind, so expiry later finds it and
            // drops the client's *current* session early.
            if !cfg!(feature = "bug-session-activity-leak") {
                self.by_activity.remove(&(old.last_active, client));
            }
        }
        self.by_activity.insert((index, client));
        self.expire(index);
    }

    /// Restores a session from a snapshot.
    pub fn restore(&mut self, client: ClientId, session: Session) {
        self.by_activity.insert((session.last_active, client));
        self.by_client.insert(client, session);
    }

    /// Panics if the table is inconsistent: the activity index lists exactly the sessions, and
    /// the table is within its bound.
    pub fn check_invariants(&self) {
        assert_eq!(
            self.by_activity.len(),
            self.by_client.len(),
            "session activity index and table differ in size"
        );
        for (client, session) in &self.by_client {
            assert!(
                self.by_activity.contains(&(session.last_active, *client)),
                "session of client {client} (last active at {}) missing from the activity index",
                session.last_active
            );
        }
        assert!(
            self.by_client.len() <= self.limits.max_sessions,
            "{} sessions, more than the limit of {}",
            self.by_client.len(),
            self.limits.max_sessions
        );
    }

    fn expire(&mut self, now_index: u64) {
        while let Some(&(last_active, client)) = self.by_activity.first() {
            let idle = now_index.saturating_sub(last_active) > self.limits.idle_entries;
            if !idle && self.by_client.len() <= self.limits.max_sessions {
                break;
            }
            self.by_activity.pop_first();
            self.by_client.remove(&client);
        }
    }
}

#[cfg(all(test, not(feature = "bug-no-duplicate-detection")))]
mod tests {
    use super::*;

    #[test]
    fn duplicates_get_the_recorded_reply_and_old_requests_are_stale() {
        let mut s = Sessions::new(SessionLimits::default());
        let c = ClientId(7);
        assert_eq!(s.check(c, Sequence(1)), Dedup::New);
        s.record(c, Sequence(1), Outcome::Value("a".into()), 10);
        assert_eq!(s.check(c, Sequence(1)), Dedup::Duplicate(Outcome::Value("a".into())));
        s.record(c, Sequence(2), Outcome::Done, 11);
        assert_eq!(s.check(c, Sequence(1)), Dedup::Stale);
        assert_eq!(s.check(c, Sequence(3)), Dedup::New);
        assert_eq!(s.check(ClientId(8), Sequence(5)), Dedup::Expired);
    }

    #[test]
    fn the_table_is_bounded_and_expires_by_log_position() {
        let mut s = Sessions::new(SessionLimits { max_sessions: 2, idle_entries: 100 });
        s.record(ClientId(1), Sequence(1), Outcome::Done, 1);
        s.record(ClientId(2), Sequence(1), Outcome::Done, 2);
        s.record(ClientId(1), Sequence(2), Outcome::Done, 3);
        // A third client evicts the least recently active one (client 2).
        s.record(ClientId(3), Sequence(1), Outcome::Done, 4);
        assert_eq!(s.len(), 2);
        assert!(s.get(ClientId(2)).is_none());
        assert_eq!(s.check(ClientId(2), Sequence(2)), Dedup::Expired);
        // Idle for more than 100 entries: expired when the log moves on.
        s.record(ClientId(3), Sequence(2), Outcome::Done, 200);
        assert!(s.get(ClientId(1)).is_none());
        assert_eq!(s.len(), 1);
    }
}
