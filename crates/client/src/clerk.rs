//! The Clerk state machine.

use kvraft_kv::{ClientId, ClientRequest, KvError, Op, Reply, Sequence};

/// What the driver should do after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// The operation finished with this reply (success, or an error that retrying cannot fix).
    Done(Reply),
    /// Send the same request to `target()` after waiting `backoff_ms` (0: at once).
    Retry { backoff_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Clerk {
    client: ClientId,
    servers: usize,
    /// The server believed to lead; tried first.
    leader: usize,
    next_seq: Sequence,
    current: Option<ClientRequest>,
    /// Failed attempts since the last success, to back off once every server has refused.
    failures: usize,
}

/// Pause after a full round of refusals (no leader yet, e.g. during an election).
const ROUND_BACKOFF_MS: u64 = 20;
const MAX_BACKOFF_MS: u64 = 200;

impl Clerk {
    /// A clerk for a cluster of `servers` servers (indices 0..servers).
    pub fn new(client: ClientId, servers: usize) -> Clerk {
        assert!(servers > 0, "a clerk needs at least one server");
        Clerk { client, servers, leader: 0, next_seq: Sequence(1), current: None, failures: 0 }
    }

    pub fn client_id(&self) -> ClientId {
        self.client
    }

    /// Starts an operation; returns the tagged request to send. Writes take the next sequence
    /// number; a Get is served without the log or the session table (ReadIndex), so it carries
    /// the next number without using it up: the server's sessions must see a client's writes
    /// numbered 1, 2, 3... with no gaps.
    pub fn begin(&mut self, op: Op) -> ClientRequest {
        assert!(self.current.is_none(), "one operation at a time per clerk");
        let consumes = !matches!(op, Op::Get { .. });
        let req = ClientRequest { client: self.client, seq: self.next_seq, op };
        if consumes {
            self.next_seq = Sequence(self.next_seq.0 + 1);
        }
        self.current = Some(req.clone());
        req
    }

    /// The request in progress.
    pub fn request(&self) -> &ClientRequest {
        self.current.as_ref().expect("no operation in progress")
    }

    /// The server to send the current request to.
    pub fn target(&self) -> usize {
        self.leader
    }

    /// The number of servers the clerk chooses among (indices `0..servers()`).
    pub fn servers(&self) -> usize {
        self.servers
    }

    /// Grows the server list by one (a driver that learned of a server it was not configured
    /// with, e.g. from a leader hint); returns the new server's index. Existing indices keep
    /// their meaning.
    pub fn add_server(&mut self) -> usize {
        self.servers += 1;
        self.servers - 1
    }

    /// Whether an operation is in progress (begun, not yet `Done` or abandoned).
    pub fn is_busy(&self) -> bool {
        self.current.is_some()
    }

    /// Gives up on the operation in progress, if any (the driver's deadline passed, or its
    /// caller went away). Its outcome stays unknown. The next operation gets the next sequence
    /// number, so once that one is applied, a late copy of the abandoned one is refused as
    /// stale rather than applied after it.
    pub fn abandon(&mut self) {
        self.current = None;
        self.failures = 0;
    }

    /// Starts a new session under `client`: sequence numbers restart at 1. For a driver that
    /// was told its session expired. Keeps the leader guess and the server list.
    pub fn renew_session(&mut self, client: ClientId) {
        assert!(self.current.is_none(), "renewing the session during an operation");
        self.client = client;
        self.next_seq = Sequence(1);
    }

    /// Feeds the answer from `target()`: `None` if the call failed or timed out.
    pub fn on_answer(&mut self, answer: Option<Reply>) -> NextStep {
        assert!(self.current.is_some(), "answer without an operation");
        match answer {
            Some(Err(KvError::WrongLeader { leader_hint })) => {
                self.leader = match leader_hint {
                    Some(h) if h < self.servers && h != self.leader => h,
                    _ => (self.leader + 1) % self.servers,
                };
            }
            None => self.leader = (self.leader + 1) % self.servers,
            Some(reply) => {
                self.current = None;
                self.failures = 0;
                return NextStep::Done(reply);
            }
        }
        self.failures += 1;
        let rounds = self.failures / self.servers;
        let backoff_ms = if self.failures.is_multiple_of(self.servers) {
            (ROUND_BACKOFF_MS * rounds as u64).min(MAX_BACKOFF_MS)
        } else {
            0
        };
        NextStep::Retry { backoff_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvraft_kv::Outcome;

    fn get() -> Op {
        Op::Get { key: "k".into() }
    }

    fn put() -> Op {
        Op::Put { key: "k".into(), value: "v".into() }
    }

    #[test]
    fn retries_keep_the_sequence_and_follow_hints() {
        let mut c = Clerk::new(ClientId(5), 3);
        let r1 = c.begin(put());
        assert_eq!(r1.seq, Sequence(1));
        assert_eq!(c.target(), 0);
        assert_eq!(
            c.on_answer(Some(Err(KvError::WrongLeader { leader_hint: Some(2) }))),
            NextStep::Retry { backoff_ms: 0 }
        );
        assert_eq!(c.target(), 2);
        assert_eq!(c.request().seq, Sequence(1));
        assert_eq!(c.on_answer(Some(Ok(Outcome::Done))), NextStep::Done(Ok(Outcome::Done)));
        // The leader is remembered; the next write gets the next sequence number.
        let r2 = c.begin(put());
        assert_eq!((r2.seq, c.target()), (Sequence(2), 2));
    }

    #[test]
    fn gets_do_not_use_up_sequence_numbers() {
        let mut c = Clerk::new(ClientId(5), 3);
        assert_eq!(c.begin(get()).seq, Sequence(1));
        c.on_answer(Some(Ok(Outcome::Value(String::new()))));
        assert_eq!(c.begin(put()).seq, Sequence(1));
        c.on_answer(Some(Ok(Outcome::Done)));
        assert_eq!(c.begin(get()).seq, Sequence(2));
        c.on_answer(Some(Ok(Outcome::Value(String::new()))));
        assert_eq!(c.begin(put()).seq, Sequence(2));
    }

    #[test]
    fn backs_off_after_every_server_refused() {
        let mut c = Clerk::new(ClientId(5), 3);
        c.begin(get());
        assert_eq!(c.on_answer(None), NextStep::Retry { backoff_ms: 0 });
        assert_eq!(
            c.on_answer(Some(Err(KvError::WrongLeader { leader_hint: None }))),
            NextStep::Retry { backoff_ms: 0 }
        );
        assert_eq!(c.on_answer(None), NextStep::Retry { backoff_ms: ROUND_BACKOFF_MS });
        assert_eq!(c.target(), 0);
    }

    #[test]
    fn added_servers_can_be_hinted_and_are_in_the_rotation() {
        let mut c = Clerk::new(ClientId(5), 2);
        c.begin(get());
        // A hint beyond the known servers is ignored: next server.
        c.on_answer(Some(Err(KvError::WrongLeader { leader_hint: Some(2) })));
        assert_eq!(c.target(), 1);
        assert_eq!(c.add_server(), 2);
        assert_eq!(c.servers(), 3);
        c.on_answer(Some(Err(KvError::WrongLeader { leader_hint: Some(2) })));
        assert_eq!(c.target(), 2);
        c.on_answer(None);
        assert_eq!(c.target(), 0);
    }

    #[test]
    fn abandoning_moves_on_and_renewing_restarts_the_sequence() {
        let mut c = Clerk::new(ClientId(5), 3);
        c.begin(put());
        assert!(c.is_busy());
        c.abandon();
        assert!(!c.is_busy());
        assert_eq!(c.begin(put()).seq, Sequence(2));
        c.on_answer(Some(Err(KvError::SessionExpired)));
        c.renew_session(ClientId(9));
        let r = c.begin(put());
        assert_eq!((r.client, r.seq), (ClientId(9), Sequence(1)));
    }

    #[test]
    fn non_retryable_errors_end_the_operation() {
        let mut c = Clerk::new(ClientId(5), 3);
        c.begin(get());
        assert_eq!(
            c.on_answer(Some(Err(KvError::SessionExpired))),
            NextStep::Done(Err(KvError::SessionExpired))
        );
    }
}
