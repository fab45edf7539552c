//! The labrpc network model: which ends are enabled, the fault settings, and the counters.
//!
//! Every message a peer sends is one labrpc "call" (requests) whose reply is the response the
//! callee produces while handling it. The life of a call, as labrpc does it:
//! - counted (total RPCs, request bytes) when it enters the network, even if it then fails;
//! - if the end is disabled or the server is gone, it fails (after a delay the caller, being
//!   sans-IO, never waits for);
//! - if unreliable: delayed U[0,27) ms, then dropped with probability 1/10 before the handler;
//! - the handler runs; if the callee died or the end was disabled meanwhile, the reply is lost;
//! - if unreliable, the reply is dropped with probability 1/10 (the handler's effects stay);
//! - with long reordering, 2/3 of replies are delayed 200 + U[0, 1 + U[0,2000)) ms;
//! - reply bytes are counted when the reply is delivered.
//!
//! labrpc's reliable mode adds no artificial delay, but it does not deliver instantly either:
//! every call is carried by goroutines (the caller's, the network's, one per request and one
//! for the handler), with labgob encoding on both ends and the handler waiting for the peer's
//! lock, so a call and its reply each take real time, and concurrent calls on one end overtake
//! each other. The simulator stands this in with [`Latency`]: on the reliable network each
//! request and each reply takes its own independent draw, so messages sent close together can
//! arrive in either order. The unreliable mode keeps labrpc's numbers exactly (its U[0,27) ms
//! delay already dwarfs this).

use kvraft_raft::DetRng;

pub const MS: u64 = 1000;

/// Where a request goes next, decided when it is sent.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestFate {
    /// The end is disabled or the server is missing: the call fails, no handler runs.
    Unreachable,
    /// Unreliable network: lost before reaching the handler; the caller learns after
    /// `after_us`.
    Dropped { after_us: u64 },
    /// Reaches the handler after this many microseconds.
    Deliver { delay_us: u64 },
}

/// What happens to a reply the handler produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyFate {
    Dropped,
    Deliver { delay_us: u64 },
}

/// How long one message (a request, or a reply) takes on the reliable network: U[min_us,
/// max_us) microseconds, drawn per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub min_us: u64,
    pub max_us: u64,
}

impl Latency {
    /// Instant delivery, in send order (what the simulator did before it modelled latency).
    pub const ZERO: Latency = Latency { min_us: 0, max_us: 0 };

    /// What a labrpc call costs in real time on the lab's test machines, per direction.
    ///
    /// A call crosses three goroutine hand-offs and a labgob encoding and decoding each way,
    /// and its handler first waits for the peer's mutex, which a typical implementation holds
    /// while it persists its whole state with labgob (a log of hundreds of entries in the
    /// Figure 8 tests) or runs its ticker. Idle, that is tens of microseconds; under the race
    /// detector the lab recommends, with five peers' goroutines on a few cores, it is hundreds
    /// of microseconds and now and then a millisecond or more. U[20 us, 1.5 ms) per direction
    /// gives round trips of 0.04-3 ms, mean 1.5 ms: never instant, usually well under the
    /// tests' 10-50 ms polling periods and far under their 100 ms heartbeat budget, and wide
    /// enough that messages sent within a millisecond of each other are often reordered.
    pub const LABRPC: Latency = Latency { min_us: 20, max_us: 1500 };

    /// One draw (none from the generator when the latency is zero).
    pub fn sample(&self, rng: &mut DetRng) -> u64 {
        if self.max_us <= self.min_us {
            return self.min_us;
        }
        self.min_us + rng.below(self.max_us - self.min_us)
    }
}

/// What "unreliable" means: labrpc's numbers by default; the swarm draws its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreliability {
    pub request_drop_per_mille: u64,
    pub reply_drop_per_mille: u64,
    /// Requests are delayed U[0, max_delay_ms) ms.
    pub max_delay_ms: u64,
    /// Requests delivered twice (not in labrpc; the swarm uses it).
    pub duplicate_per_mille: u64,
}

impl Unreliability {
    /// labrpc: 10% of requests and 10% of replies lost, requests delayed 0-27 ms.
    pub const LABRPC: Unreliability = Unreliability {
        request_drop_per_mille: 100,
        reply_drop_per_mille: 100,
        max_delay_ms: 27,
        duplicate_per_mille: 0,
    };
}

#[derive(Debug)]
pub struct Network {
    /// `enabled[from][to]`: the end from `from` to `to` carries calls.
    enabled: Vec<Vec<bool>>,
    /// The Raft tester's notion of which servers are connected.
    connected: Vec<bool>,
    pub reliable: bool,
    /// The faults of the unreliable mode.
    pub unreliability: Unreliability,
    pub long_delays: bool,
    pub long_reordering: bool,
    /// How long each request and each reply takes when the network is reliable.
    pub latency: Latency,
    /// Mean time a request spends before its handler runs, standing in for the CPU and
    /// scheduling time that virtual time otherwise makes zero. Each request waits U[0, 2 x
    /// mean). 0 (the Raft suite) is labrpc exactly; the KV suite sets it so that operations
    /// take time, as they do in the lab's real runs.
    pub processing_delay_us: u64,
    pub total_rpcs: u64,
    pub total_bytes: u64,
}

impl Network {
    pub fn new(servers: usize) -> Network {
        Network {
            enabled: vec![vec![false; servers]; servers],
            connected: vec![false; servers],
            reliable: true,
            unreliability: Unreliability::LABRPC,
            long_delays: false,
            long_reordering: false,
            latency: Latency::LABRPC,
            processing_delay_us: 0,
            total_rpcs: 0,
            total_bytes: 0,
        }
    }

    /// One more server, not connected: every end to and from it disabled.
    pub fn add_server(&mut self) {
        for row in &mut self.enabled {
            row.push(false);
        }
        self.connected.push(false);
        self.enabled.push(vec![false; self.connected.len()]);
    }

    pub fn is_connected(&self, server: usize) -> bool {
        self.connected[server]
    }

    pub fn is_enabled(&self, from: usize, to: usize) -> bool {
        self.enabled[from][to]
    }

    /// Enables the ends between `server` and every connected server (the Raft tester's connect).
    pub fn connect(&mut self, server: usize) {
        self.connected[server] = true;
        for other in 0..self.connected.len() {
            if self.connected[other] {
                self.enabled[server][other] = true;
                self.enabled[other][server] = true;
            }
        }
    }

    /// Disables every end from and to `server`.
    pub fn disconnect(&mut self, server: usize) {
        self.connected[server] = false;
        for other in 0..self.connected.len() {
            self.enabled[server][other] = false;
            self.enabled[other][server] = false;
        }
    }

    /// Enables every end between servers and marks all connected (the KV tester's ConnectAll).
    pub fn connect_all(&mut self) {
        let n = self.connected.len();
        self.connected = vec![true; n];
        self.enabled = vec![vec![true; n]; n];
    }

    /// Enables or disables the one end from `from` to `to` (asymmetric partitions).
    pub fn set_one_way(&mut self, from: usize, to: usize, enabled: bool) {
        self.enabled[from][to] = enabled;
    }

    /// Enables or disables both ends between two servers (the KV tester's partitions).
    pub fn set_link(&mut self, a: usize, b: usize, enabled: bool) {
        self.enabled[a][b] = enabled;
        self.enabled[b][a] = enabled;
    }

    /// The fate of a request on an end that is `enabled` (or not) to a server that is
    /// `alive` (or not).
    pub fn request_fate(&self, rng: &mut DetRng, enabled: bool, alive: bool) -> RequestFate {
        if !enabled || !alive {
            return RequestFate::Unreachable;
        }
        let processing_us = self.processing_delay(rng);
        if self.reliable {
            return RequestFate::Deliver { delay_us: self.latency.sample(rng) + processing_us };
        }
        let faults = &self.unreliability;
        let delay_us = rng.below(faults.max_delay_ms) * MS + processing_us;
        if rng.chance(faults.request_drop_per_mille, 1000) {
            return RequestFate::Dropped { after_us: delay_us };
        }
        RequestFate::Deliver { delay_us }
    }

    /// With an unreliable network that duplicates, a second copy of a request arrives after
    /// this delay (handled as a separate call, with its own reply).
    pub fn duplicate(&self, rng: &mut DetRng) -> Option<u64> {
        let faults = &self.unreliability;
        if self.reliable
            || faults.duplicate_per_mille == 0
            || !rng.chance(faults.duplicate_per_mille, 1000)
        {
            return None;
        }
        Some(rng.below(faults.max_delay_ms) * MS + self.processing_delay(rng))
    }

    /// How long a call to an unreachable server takes to fail.
    pub fn unreachable_delay(&self, rng: &mut DetRng) -> u64 {
        let max_ms = if self.long_delays { 7000 } else { 100 };
        rng.below(max_ms) * MS
    }

    /// Draws a request's processing delay (none unless `processing_delay_us` is set).
    pub fn processing_delay(&self, rng: &mut DetRng) -> u64 {
        match self.processing_delay_us {
            0 => 0,
            mean => rng.below(2 * mean),
        }
    }

    pub fn reply_fate(&self, rng: &mut DetRng) -> ReplyFate {
        if !self.reliable && rng.chance(self.unreliability.reply_drop_per_mille, 1000) {
            return ReplyFate::Dropped;
        }
        let latency_us = self.reply_latency(rng);
        if self.long_reordering && rng.chance(600, 900) {
            let spread = rng.below(2000);
            let delay_ms = 200 + rng.below(1 + spread);
            return ReplyFate::Deliver { delay_us: latency_us + delay_ms * MS };
        }
        ReplyFate::Deliver { delay_us: latency_us }
    }

    /// The time a reply takes on the way back, besides long reordering: the reliable network's
    /// latency, or nothing on the unreliable one (labrpc's numbers, exactly).
    pub fn reply_latency(&self, rng: &mut DetRng) -> u64 {
        if self.reliable {
            self.latency.sample(rng)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_enables_only_links_between_connected_servers() {
        let mut net = Network::new(3);
        net.connect(0);
        assert!(!net.is_enabled(0, 1));
        net.connect(1);
        assert!(net.is_enabled(0, 1) && net.is_enabled(1, 0));
        assert!(!net.is_enabled(0, 2));
        net.disconnect(0);
        assert!(!net.is_enabled(0, 1) && !net.is_enabled(1, 0));
        assert!(!net.is_connected(0) && net.is_connected(1));
    }

    #[test]
    fn unreliable_fates_have_labrpc_rates() {
        let mut net = Network::new(2);
        net.connect(0);
        net.connect(1);
        net.reliable = false;
        net.long_reordering = true;
        let mut rng = DetRng::new(3);
        let n = 100_000;
        let mut dropped = 0;
        let mut max_delay = 0;
        for _ in 0..n {
            match net.request_fate(&mut rng, net.is_enabled(0, 1), true) {
                RequestFate::Dropped { .. } => dropped += 1,
                RequestFate::Deliver { delay_us } => max_delay = max_delay.max(delay_us),
                RequestFate::Unreachable => unreachable!(),
            }
        }
        assert!((9_000..11_000).contains(&dropped), "request drops {dropped} of {n}");
        assert_eq!(max_delay, 26 * MS);
        let (mut lost, mut long) = (0, 0);
        for _ in 0..n {
            match net.reply_fate(&mut rng) {
                ReplyFate::Dropped => lost += 1,
                ReplyFate::Deliver { delay_us } if delay_us > 0 => {
                    assert!((200 * MS..2200 * MS).contains(&delay_us));
                    long += 1;
                }
                ReplyFate::Deliver { .. } => {}
            }
        }
        assert!((9_000..11_000).contains(&lost), "reply drops {lost} of {n}");
        // 2/3 of the 90% delivered.
        assert!((58_000..62_000).contains(&long), "long reorderings {long} of {n}");
        assert_eq!(net.request_fate(&mut rng, true, false), RequestFate::Unreachable);
    }

    #[test]
    fn reliable_calls_take_the_latency_each_way() {
        let mut net = Network::new(2);
        net.connect(0);
        net.connect(1);
        let mut rng = DetRng::new(5);
        let Latency { min_us, max_us } = Latency::LABRPC;
        let (mut lowest, mut highest) = (u64::MAX, 0);
        for _ in 0..10_000 {
            let RequestFate::Deliver { delay_us } = net.request_fate(&mut rng, true, true) else {
                panic!("a reliable network delivers every request");
            };
            let ReplyFate::Deliver { delay_us: back_us } = net.reply_fate(&mut rng) else {
                panic!("a reliable network delivers every reply");
            };
            for d in [delay_us, back_us] {
                assert!((min_us..max_us).contains(&d), "latency {d} us");
                lowest = lowest.min(d);
                highest = highest.max(d);
            }
        }
        // Spread over the whole range, so that close messages overtake each other.
        assert!(lowest < min_us + 10 && highest > max_us - 10, "{lowest}..{highest}");
        // The unreliable mode keeps labrpc's replies: no added latency.
        net.reliable = false;
        net.unreliability.reply_drop_per_mille = 0;
        assert_eq!(net.reply_fate(&mut rng), ReplyFate::Deliver { delay_us: 0 });
        net.latency = Latency::ZERO;
        net.reliable = true;
        assert_eq!(net.request_fate(&mut rng, true, true), RequestFate::Deliver { delay_us: 0 });
    }
}
