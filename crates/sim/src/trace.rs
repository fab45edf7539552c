//! The event trace: a running hash of everything that happens (so two runs of one seed can be
//! compared cheaply), optionally printed line by line (`SIM_TRACE=1`, see `options`).

use kvraft_raft::Message;

#[derive(Debug)]
pub struct Trace {
    hash: u64,
    print: bool,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    /// A trace that prints every record to stderr if `print`.
    pub fn new(print: bool) -> Trace {
        Trace { hash: FNV_OFFSET, print }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    fn mix(&mut self, value: u64) {
        for byte in value.to_le_bytes() {
            self.hash ^= byte as u64;
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
    }

    fn mix_str(&mut self, s: &str) {
        for byte in s.bytes() {
            self.hash ^= byte as u64;
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
    }

    pub fn record(&mut self, now_us: u64, what: &str, a: u64, b: u64) {
        self.mix(now_us);
        self.mix_str(what);
        self.mix(a);
        self.mix(b);
        if self.print {
            eprintln!("{:>12.3}ms {what} {a} {b}", now_us as f64 / 1000.0);
        }
    }

    pub fn record_message(&mut self, now_us: u64, what: &str, m: &Message) {
        self.mix(now_us);
        self.mix_str(what);
        self.mix(m.from.0);
        self.mix(m.to.0);
        self.mix(m.term.0);
        self.mix_str(m.body.kind());
        if self.print {
            eprintln!(
                "{:>12.3}ms {what} {}->{} term={} {:?}",
                now_us as f64 / 1000.0,
                m.from,
                m.to,
                m.term,
                m.body
            );
        }
    }
}

/// FNV-1a of a byte string (entry identities in the checker).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}
