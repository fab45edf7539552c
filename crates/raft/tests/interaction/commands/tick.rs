//! `tick <id> [n]` and `tick-heartbeat <id>`: advance a node's clock, printing each role
//! change.

use crate::env::{parse_u64, Env, Out};
use crate::format::fmt_role;

impl Env {
    /// `tick <id> [n]`: `n` ticks (default 1).
    pub(crate) fn handle_tick(&mut self, args: &[&str], out: &mut Out) -> Result<(), String> {
        let (id, n) = match args {
            [id] => (parse_u64(id)?, 1),
            [id, n] => (parse_u64(id)?, parse_u64(n)?),
            _ => return Err("usage: tick <id> [n]".into()),
        };
        self.tick(id, n, out)
    }

    /// `tick-heartbeat <id>`: as many ticks as a heartbeat interval.
    pub(crate) fn handle_tick_heartbeat(
        &mut self,
        args: &[&str],
        out: &mut Out,
    ) -> Result<(), String> {
        let [id] = args else { return Err("usage: tick-heartbeat <id>".into()) };
        let id = parse_u64(id)?;
        let n = self.node(id)?.config.heartbeat_interval_ticks as u64;
        self.tick(id, n, out)
    }

    pub(crate) fn tick(&mut self, id: u64, n: u64, out: &mut Out) -> Result<(), String> {
        let node = self.node(id)?;
        for i in 1..=n {
            let before = fmt_role(&node.raw);
            node.raw.tick();
            let after = fmt_role(&node.raw);
            if before != after {
                out.line(format!("tick {i}: {id} {before} -> {after}"));
            }
        }
        Ok(())
    }
}
