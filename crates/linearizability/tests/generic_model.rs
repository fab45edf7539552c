//! The generic layer with a model other than the key/value store: one integer register with
//! compare-and-set, unpartitioned (the trait's default), judged by `check_operations`.

use kvraft_linearizability::{check_operations, Failure, Model, Op, Verdict};

#[derive(Clone, Debug)]
enum RegInput {
    Read,
    Write(i64),
    /// Sets the register to `new` if it holds `expected`; outputs whether it did.
    Cas {
        expected: i64,
        new: i64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RegOutput {
    Value(i64),
    Done,
    Swapped(bool),
}

struct Register;

impl Model for Register {
    type State = i64;
    type Input = RegInput;
    type Output = RegOutput;

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, state: &i64, input: &RegInput, output: &RegOutput) -> Option<i64> {
        match (input, output) {
            (RegInput::Read, RegOutput::Value(v)) => (v == state).then_some(*state),
            (RegInput::Write(v), RegOutput::Done) => Some(*v),
            (RegInput::Cas { expected, new }, RegOutput::Swapped(swapped)) => {
                match (state == expected, swapped) {
                    (true, true) => Some(*new),
                    (false, false) => Some(*state),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn op(
    client_id: u64,
    input: RegInput,
    output: RegOutput,
    call: u64,
    ret: u64,
) -> Op<RegInput, RegOutput> {
    Op { client_id, input, output, call, ret }
}

#[test]
fn concurrent_cas_exactly_one_wins() {
    let cas = |c, swapped| {
        op(c, RegInput::Cas { expected: 0, new: c as i64 }, RegOutput::Swapped(swapped), 0, 10)
    };
    // Two racing CAS from 0: one succeeds, the other sees the winner's value and fails.
    let good = [cas(1, false), cas(2, true), op(3, RegInput::Read, RegOutput::Value(2), 20, 30)];
    let (verdict, stats) = check_operations(&Register, &good, 10_000);
    assert_eq!(verdict, Verdict::Linearizable);
    assert_eq!(stats.partitions, 1);

    // Both claiming success is impossible.
    let bad = [cas(1, true), cas(2, true)];
    let (verdict, _) = check_operations(&Register, &bad, 10_000);
    let Verdict::Illegal(Failure { partition, longest_prefix, state_after_prefix }) = verdict
    else {
        panic!("expected Illegal, got {verdict:?}");
    };
    assert_eq!(partition, vec![0, 1]);
    assert_eq!(longest_prefix.len(), 1);
    assert_eq!(state_after_prefix, if longest_prefix == [0] { 1 } else { 2 });
}

#[test]
fn write_then_stale_read_is_illegal() {
    let history = [
        op(1, RegInput::Write(5), RegOutput::Done, 0, 10),
        op(2, RegInput::Read, RegOutput::Value(0), 11, 12),
    ];
    let (verdict, stats) = check_operations(&Register, &history, 10_000);
    assert!(matches!(verdict, Verdict::Illegal(_)), "{verdict:?}");
    assert_eq!(stats.partitions_checked, 1);
    // With no budget at all the answer is Unknown, never a guess.
    assert_eq!(check_operations(&Register, &history, 0).0, Verdict::Unknown);
}
