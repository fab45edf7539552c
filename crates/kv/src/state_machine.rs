//! The key/value state machine. The apply loop is its only owner.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{put_string, DecodeError, Reader};
use crate::command::{ClientId, ClientRequest, Command, KvError, Op, Outcome, Reply, Sequence};
use crate::sessions::{Dedup, Session, SessionLimits, Sessions};

const SNAPSHOT_VERSION: u8 = 1;

/// The key/value map and the client sessions, as the applied log commands made them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvStateMachine {
    data: BTreeMap<String, String>,
    sessions: Sessions,
    /// Log index of the last applied command.
    applied: u64,
}

impl KvStateMachine {
    /// An empty store: the state before the first command.
    pub fn new(limits: SessionLimits) -> KvStateMachine {
        KvStateMachine { data: BTreeMap::new(), sessions: Sessions::new(limits), applied: 0 }
    }

    /// The log index of the last applied command (0 before any).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The value of `key`, empty if it was never written.
    pub fn get(&self, key: &str) -> &str {
        self.data.get(key).map_or("", |v| v.as_str())
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True if no key was ever written.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The client sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Panics if the state is inconsistent: the session table's own invariants, and no
    /// session active after the last applied index.
    pub fn check_invariants(&self) {
        self.sessions.check_invariants();
        if let Some((client, session)) =
            self.sessions.iter().find(|(_, s)| s.last_active > self.applied)
        {
            panic!(
                "session of client {client} active at {}, after the last applied index {}",
                session.last_active, self.applied
            );
        }
    }

    /// Whether a request would be new, a duplicate, stale or expired, without applying it.
    pub fn dedup(&self, client: ClientId, seq: Sequence) -> Dedup {
        self.sessions.check(client, seq)
    }

    /// An entry with no command at log index `index` (a new leader's no-op).
    pub fn apply_noop(&mut self, index: u64) {
        assert!(index > self.applied, "applying index {index} after {}", self.applied);
        self.applied = index;
    }

    /// Applies the command at log index `index`. Deterministic: every replica gets the same
    /// reply for the same log.
    pub fn apply(&mut self, index: u64, cmd: &Command) -> Reply {
        assert!(index > self.applied, "applying index {index} after {}", self.applied);
        self.applied = index;
        let Command::Client(ClientRequest { client, seq, op }) = cmd;
        match self.sessions.check(*client, *seq) {
            Dedup::Duplicate(reply) => return Ok(reply),
            Dedup::Stale => return Err(KvError::Stale),
            Dedup::Expired => return Err(KvError::SessionExpired),
            Dedup::New => {}
        }
        let outcome = match op {
            Op::Get { key } => Outcome::Value(self.get(key).to_string()),
            Op::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                Outcome::Done
            }
            Op::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                Outcome::Done
            }
        };
        self.sessions.record(*client, *seq, outcome.clone(), index);
        Ok(outcome)
    }

    /// The whole state, sessions included (without them, a retry after a restart would be
    /// applied twice).
    pub fn encode_snapshot(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_u8(SNAPSHOT_VERSION);
        buf.put_u64_le(self.applied);
        buf.put_u32_le(self.data.len() as u32);
        for (k, v) in &self.data {
            put_string(&mut buf, k);
            put_string(&mut buf, v);
        }
        let sessions: Vec<_> = if cfg!(feature = "bug-snapshot-without-sessions") {
            Vec::new()
        } else {
            self.sessions.iter().collect()
        };
        buf.put_u32_le(sessions.len() as u32);
        for (client, s) in sessions {
            buf.put_u64_le(client.0);
            buf.put_u64_le(s.last_seq.0);
            buf.put_u64_le(s.last_active);
            match &s.reply {
                Outcome::Done => buf.put_u8(0),
                Outcome::Value(v) => {
                    buf.put_u8(1);
                    put_string(&mut buf, v);
                }
            }
        }
        buf.freeze()
    }

    /// Rebuilds a state machine from `encode_snapshot`'s bytes, with `limits` for its sessions;
    /// refuses a bad version or trailing bytes.
    pub fn decode_snapshot(
        data: &[u8],
        limits: SessionLimits,
    ) -> Result<KvStateMachine, DecodeError> {
        let mut r = Reader::new(data);
        let version = r.u8()?;
        if version != SNAPSHOT_VERSION {
            return Err(r.unknown("snapshot version", version as u64));
        }
        let applied = r.u64()?;
        let mut sm = KvStateMachine::new(limits);
        sm.applied = applied;
        for _ in 0..r.u32()? {
            let k = r.string()?;
            let v = r.string()?;
            sm.data.insert(k, v);
        }
        for _ in 0..r.u32()? {
            let client = ClientId(r.u64()?);
            let last_seq = Sequence(r.u64()?);
            let last_active = r.u64()?;
            let reply = match r.u8()? {
                0 => Outcome::Done,
                1 => Outcome::Value(r.string()?),
                other => return Err(r.unknown("reply kind", other as u64)),
            };
            sm.sessions.restore(client, Session { last_seq, reply, last_active });
        }
        r.finish()?;
        Ok(sm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(client: u64, seq: u64, op: Op) -> Command {
        Command::Client(ClientRequest { client: ClientId(client), seq: Sequence(seq), op })
    }

    fn append(key: &str, value: &str) -> Op {
        Op::Append { key: key.into(), value: value.into() }
    }

    #[test]
    fn put_append_get() {
        let mut sm = KvStateMachine::new(SessionLimits::default());
        assert_eq!(
            sm.apply(1, &req(1, 1, Op::Get { key: "k".into() })),
            Ok(Outcome::Value(String::new()))
        );
        assert_eq!(sm.apply(2, &req(1, 2, append("k", "a"))), Ok(Outcome::Done));
        assert_eq!(sm.apply(3, &req(1, 3, append("k", "b"))), Ok(Outcome::Done));
        assert_eq!(sm.get("k"), "ab");
        sm.apply(4, &req(1, 4, Op::Put { key: "k".into(), value: "x".into() })).unwrap();
        assert_eq!(
            sm.apply(5, &req(1, 5, Op::Get { key: "k".into() })),
            Ok(Outcome::Value("x".into()))
        );
    }

    #[cfg(not(feature = "bug-no-duplicate-detection"))]
    #[test]
    fn a_retried_append_is_applied_once() {
        let mut sm = KvStateMachine::new(SessionLimits::default());
        sm.apply(1, &req(9, 1, append("k", "a"))).unwrap();
        sm.apply(2, &req(9, 1, append("k", "a"))).unwrap();
        assert_eq!(sm.get("k"), "a");
    }

    #[cfg(not(feature = "bug-snapshot-without-sessions"))]
    #[test]
    fn snapshots_round_trip_with_sessions() {
        let mut sm = KvStateMachine::new(SessionLimits::default());
        sm.apply(1, &req(9, 1, append("k", "a"))).unwrap();
        sm.apply(2, &req(8, 1, Op::Get { key: "k".into() })).unwrap();
        let back = KvStateMachine::decode_snapshot(&sm.encode_snapshot(), SessionLimits::default())
            .unwrap();
        assert_eq!(back, sm);
        assert_eq!(
            back.dedup(ClientId(8), Sequence(1)),
            Dedup::Duplicate(Outcome::Value("a".into()))
        );
    }

    #[test]
    fn corrupt_snapshots_are_errors() {
        let mut sm = KvStateMachine::new(SessionLimits::default());
        sm.apply(1, &req(9, 1, append("k", "a"))).unwrap();
        let data = sm.encode_snapshot();
        for cut in 0..data.len() {
            assert!(
                KvStateMachine::decode_snapshot(&data[..cut], SessionLimits::default()).is_err()
            );
        }
    }
}
