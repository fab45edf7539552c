//! Membership change and leadership transfer in the simulator (the design:
//! `../shared/specs/membership.md`; the core: `kvraft_raft::conf_change`,
//! `membership_change`, `transfer`; the requests: `kvraft_replica::admin`).
//!
//! - [`operator`]: what the `kvraft member` CLI does (administration calls that follow leader
//!   hints and retry safely with compare-and-set; bringing new servers into the world);
//! - [`swarm`]: the membership swarm, `sweep --suite membership`: each seed mixes adds,
//!   removes, promotions, demotions, replacements and transfers (1 to 7 voters) with
//!   partitions, loss, duplication, crashes, disk wipes, torn writes and pauses under a
//!   linearizable KV workload, then heals everything and checks that the cluster converges;
//! - [`scenarios`]: seeded scenarios for the moments each membership planted bug needs;
//! - [`figures`]: the measurements (the time to replace a dead voter, the writes'
//!   unavailability during a leadership transfer), `sweep --suite membership-figures --stats`.
//!
//! The invariants (I1-I10) are checked after every event by `checker` and by each peer.

pub mod figures;
pub mod operator;
pub mod scenarios;
pub mod swarm;
