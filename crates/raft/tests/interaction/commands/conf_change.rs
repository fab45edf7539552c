//! `propose-conf-change <id> add-learner[=<id>] | add-voter[=<id>] | promote=<id> |
//! demote=<id> | remove=<id> [expect-index=<n>] [force]`: proposes a membership change on a
//! node (an add without an id takes the configuration's next free id).

use kvraft_raft::{ChangeRequest, LogIndex, MembershipChange, NodeId};

use crate::env::{parse_u64, Env, Out};
use crate::format::fmt_config;

const USAGE: &str = "usage: propose-conf-change <id> add-learner[=<id>] | add-voter[=<id>] | \
                     promote=<id> | demote=<id> | remove=<id> [expect-index=<n>] [force]";

impl Env {
    /// Prints where the config entry went and the configuration now in effect on the node,
    /// or the refusal (`ChangeError`, by name).
    pub(crate) fn handle_propose_conf_change(
        &mut self,
        args: &[&str],
        out: &mut Out,
    ) -> Result<(), String> {
        let Some((id, opts)) = args.split_first() else { return Err(USAGE.into()) };
        let id = parse_u64(id)?;
        let mut change = None;
        let mut expected_config_index = None;
        let mut force = false;
        for opt in opts {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(parse_u64(v)?)),
                None => (*opt, None),
            };
            let address =
                |id: Option<u64>| format!("addr-{}", id.map_or("next".into(), |i| i.to_string()));
            let next = match (key, value) {
                ("add-learner", v) => MembershipChange::AddLearner {
                    id: v.map(NodeId),
                    address: address(v),
                    auto_promote: false,
                },
                ("add-voter", v) => {
                    MembershipChange::AddVoter { id: v.map(NodeId), address: address(v) }
                }
                ("promote", Some(v)) => MembershipChange::Promote { id: NodeId(v) },
                ("demote", Some(v)) => MembershipChange::Demote { id: NodeId(v) },
                ("remove", Some(v)) => MembershipChange::Remove { id: NodeId(v) },
                ("expect-index", Some(v)) => {
                    expected_config_index = Some(LogIndex(v));
                    continue;
                }
                ("force", None) => {
                    force = true;
                    continue;
                }
                _ => return Err(format!("unknown option {opt:?}; {USAGE}")),
            };
            if change.replace(next).is_some() {
                return Err(format!("one change at a time; {USAGE}"));
            }
        }
        let Some(change) = change else { return Err(USAGE.into()) };
        let request = ChangeRequest { change, expected_config_index, force };
        let raw = &mut self.node(id)?.raw;
        match raw.propose_membership_change(request) {
            Ok(proposed) => out.line(format!(
                "proposed at index {} (node {}): {}",
                proposed.index,
                proposed.node,
                fmt_config(&raw.cluster_config().config)
            )),
            Err(e) => out.line(format!("refused: {e:?}")),
        }
        Ok(())
    }
}
