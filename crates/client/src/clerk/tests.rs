//! One test per row of the policy table in the module docs, and the session rules.

use super::*;
use kvraft_kv::Outcome;

fn get() -> Op {
    Op::Get { key: "k".into() }
}

fn put() -> Op {
    Op::Put { key: "k".into(), value: "v".into() }
}

/// Three servers, nodes 1, 2, 3 in order.
fn clerk() -> Clerk {
    Clerk::new(ClientId(5), (1..=3).map(|i| Some(NodeId(i))).collect())
}

fn not_leader(hint: Option<u64>) -> Answer {
    Answer::Reply(Err(KvError::WrongLeader { leader: hint.map(NodeId) }))
}

fn done() -> Answer {
    Answer::Reply(Ok(Outcome::Done))
}

fn value() -> Answer {
    Answer::Reply(Ok(Outcome::Value(String::new())))
}

#[test]
fn a_reply_finishes_and_the_leader_is_remembered() {
    let mut c = clerk();
    c.begin(put());
    assert_eq!(c.on_answer(not_leader(Some(3))), NextStep::Retry { target: 2, backoff_ms: 0 });
    assert_eq!(c.on_answer(done()), NextStep::Done(Ok(Outcome::Done)));
    assert!(!c.is_busy());
    let r2 = c.begin(put());
    assert_eq!((r2.seq, c.target()), (Sequence(2), 2));
}

#[test]
fn retries_keep_the_sequence_number() {
    let mut c = clerk();
    let r1 = c.begin(put());
    c.on_answer(Answer::Failed);
    c.on_answer(not_leader(None));
    assert_eq!(c.request(), &r1);
}

#[test]
fn a_hint_the_clerk_cannot_place_moves_to_the_next_server() {
    let mut c = Clerk::new(ClientId(5), vec![Some(NodeId(1)), None, None]);
    c.begin(put());
    // Node 3's server is unknown: next server. A hint naming the server asked is no hint.
    assert_eq!(c.on_answer(not_leader(Some(3))), NextStep::Retry { target: 1, backoff_ms: 0 });
    c.learn_node(1, NodeId(2));
    assert_eq!(c.on_answer(not_leader(Some(2))), NextStep::Retry { target: 2, backoff_ms: 0 });
    c.learn_node(2, NodeId(2));
    assert_eq!(c.index_of(NodeId(2)), Some(2), "a node is at one server at a time");
}

#[test]
fn a_failed_call_marks_the_server_and_moves_on() {
    let mut c = clerk();
    c.begin(put());
    assert_eq!(c.on_answer(Answer::Failed), NextStep::Retry { target: 1, backoff_ms: 0 });
    assert!(c.servers[0].failing);
    assert_eq!(c.on_answer(done()), NextStep::Done(Ok(Outcome::Done)));
    assert!(!c.servers[1].failing);
}

#[test]
fn a_round_of_refusals_backs_off_longer_each_round() {
    let mut c = clerk();
    c.begin(get());
    assert_eq!(c.on_answer(Answer::Failed), NextStep::Retry { target: 1, backoff_ms: 0 });
    assert_eq!(c.on_answer(not_leader(None)), NextStep::Retry { target: 2, backoff_ms: 0 });
    assert_eq!(c.on_answer(Answer::Failed), NextStep::Retry { target: 0, backoff_ms: 20 });
    for _ in 0..2 {
        c.on_answer(Answer::Failed);
    }
    assert_eq!(c.on_answer(Answer::Failed), NextStep::Retry { target: 0, backoff_ms: 40 });
    for _ in 0..30 {
        c.on_answer(Answer::Failed);
    }
    assert_eq!(c.on_answer(Answer::Failed), NextStep::Retry { target: 1, backoff_ms: 0 });
    c.on_answer(Answer::Failed);
    let NextStep::Retry { backoff_ms, .. } = c.on_answer(Answer::Failed) else { panic!() };
    assert_eq!(backoff_ms, MAX_BACKOFF_MS);
}

#[test]
fn an_overloaded_server_is_retried_with_doubling_pauses_then_given_up() {
    let mut c = clerk();
    c.begin(put());
    for pause in [50, 100, 200, 400] {
        assert_eq!(
            c.on_answer(Answer::Overloaded),
            NextStep::Retry { target: 0, backoff_ms: pause }
        );
    }
    assert_eq!(c.on_answer(Answer::Overloaded), NextStep::Overloaded { attempts: 5 });
    assert!(!c.is_busy());
    // Nothing of this session reached the cluster: it must be renewed.
    assert!(c.wants_new_session());
}

#[test]
fn session_errors_end_the_operation_and_ask_for_a_new_session() {
    for error in [KvError::SessionExpired, KvError::Stale] {
        let mut c = clerk();
        c.begin(put());
        c.on_answer(done());
        c.begin(put());
        assert_eq!(c.on_answer(Answer::Reply(Err(error.clone()))), NextStep::Done(Err(error)));
        assert!(c.wants_new_session());
        c.renew_session(ClientId(9));
        let r = c.begin(put());
        assert_eq!((r.client, r.seq), (ClientId(9), Sequence(1)));
    }
}

#[test]
fn gets_do_not_use_up_sequence_numbers() {
    let mut c = clerk();
    assert_eq!(c.begin(get()).seq, Sequence(1));
    c.on_answer(value());
    assert_eq!(c.begin(put()).seq, Sequence(1));
    c.on_answer(done());
    assert_eq!(c.begin(get()).seq, Sequence(2));
    c.on_answer(value());
    assert_eq!(c.begin(put()).seq, Sequence(2));
}

#[test]
fn only_an_applied_write_makes_the_session_known() {
    // A Get confirms nothing: the cluster keeps no session for reads. So abandoning the first
    // write after a Get still needs a new session (its sequence 1 may never have applied, and
    // the next write's 2 would then find no session).
    let mut c = clerk();
    c.begin(get());
    c.on_answer(value());
    c.begin(put());
    c.abandon();
    assert!(c.wants_new_session());
    c.renew_session(ClientId(6));
    c.begin(put());
    c.on_answer(done());
    c.begin(put());
    c.abandon();
    assert!(!c.wants_new_session(), "the session is known: the next number makes the old stale");
    assert_eq!(c.begin(put()).seq, Sequence(3));
}

#[test]
fn reads_go_to_the_read_server_first_without_moving_the_leader_guess() {
    let mut c = clerk();
    c.read_from(Some(2));
    c.begin(get());
    assert_eq!(c.target(), 2);
    // Refused there (follower reads off, say): on to the leader guess, whatever the hint.
    assert_eq!(c.on_answer(not_leader(Some(2))), NextStep::Retry { target: 0, backoff_ms: 0 });
    assert_eq!(c.leader_guess(), 0);
    c.on_answer(value());
    // Served there: done.
    c.begin(get());
    assert_eq!(c.on_answer(value()), NextStep::Done(Ok(Outcome::Value(String::new()))));
    // A failing read server is skipped until it answers again.
    c.begin(get());
    assert_eq!(c.on_answer(Answer::Failed), NextStep::Retry { target: 0, backoff_ms: 0 });
    c.on_answer(value());
    c.begin(get());
    assert_eq!(c.target(), 0, "the failing read server is skipped");
    c.on_answer(value());
    // Writes always go to the leader guess.
    c.begin(put());
    assert_eq!(c.target(), 0);
}

#[test]
fn a_failed_server_learned_from_a_hint_is_not_followed_again() {
    let mut c = clerk();
    c.begin(put());
    let hinted = c.add_server(Some(NodeId(7)), true);
    assert_eq!(c.on_answer(not_leader(Some(7))), NextStep::Retry { target: hinted, backoff_ms: 0 });
    // Unreachable (an address only the cluster resolves): rotate instead of bouncing back.
    assert_eq!(c.on_answer(Answer::Failed), NextStep::Retry { target: 0, backoff_ms: 0 });
    assert_eq!(c.on_answer(not_leader(Some(7))), NextStep::Retry { target: 1, backoff_ms: 0 });
}

#[test]
fn begin_at_sends_the_first_attempt_elsewhere_and_follows_answers_as_usual() {
    let mut c = clerk();
    c.begin_at(put(), 1);
    assert_eq!(c.target(), 1);
    assert_eq!(c.on_answer(not_leader(Some(3))), NextStep::Retry { target: 2, backoff_ms: 0 });
    assert_eq!(c.leader_guess(), 2);
}

#[test]
fn abandoning_moves_on_to_the_next_sequence_number() {
    let mut c = clerk();
    c.begin(put());
    c.on_answer(done());
    c.begin(put());
    assert!(c.is_busy());
    c.abandon();
    assert!(!c.is_busy());
    assert_eq!(c.begin(put()).seq, Sequence(3));
}
