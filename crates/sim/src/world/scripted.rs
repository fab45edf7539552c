//! Scripted interference, for scenario tests that must reach one precise moment: rules that
//! drop, delay or merely count the peer messages matching a predicate (a leader's appends to
//! one follower but not its heartbeats, a `TimeoutNow` held back past an abort), restarting a
//! server with or without its bootstrap voters (a server started with or without
//! `--cluster`), and writing the bootstrap configuration to an initial member's empty disk as
//! the server does when it creates a data directory.
//!
//! A rule sees every message a server sends to another (requests, one-way messages and
//! responses) when it enters the network, before the network's own fate; the first rule that
//! matches decides. Client calls and administration calls are not peer messages: rules never
//! see them.

use kvraft_raft::{ClusterConfig, Message, PersistBatch, Snapshot};

use super::World;

/// What a rule does to the messages it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Lost, as if the link were down for this message alone.
    Drop,
    /// Delivered (if the network delivers it) this many microseconds later than it would be.
    Delay(u64),
    /// Delivered as usual; only counted.
    Count,
}

type Matcher = Box<dyn Fn(&Message) -> bool>;

/// One rule: a name to remove it by, what it does, what it matches, and how many messages it
/// matched so far.
struct MessageRule {
    name: String,
    action: RuleAction,
    matches: Matcher,
    hits: u64,
}

/// The rules in force, in the order they were added (the first match decides).
#[derive(Default)]
pub(crate) struct MessageRules {
    rules: Vec<MessageRule>,
    /// Hits of rules since removed, by name, so that a count survives its rule.
    retired: Vec<(String, u64)>,
}

impl std::fmt::Debug for MessageRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.rules.iter().map(|r| r.name.as_str()).collect();
        write!(f, "MessageRules({names:?})")
    }
}

impl MessageRules {
    /// The action of the first rule matching `msg` (counting the hit), if any.
    pub(crate) fn apply(&mut self, msg: &Message) -> Option<RuleAction> {
        let rule = self.rules.iter_mut().find(|r| (r.matches)(msg))?;
        rule.hits += 1;
        Some(rule.action)
    }
}

impl World {
    /// Adds a rule (see the module docs); a rule of the same name is replaced.
    pub fn add_message_rule(
        &mut self,
        name: &str,
        action: RuleAction,
        matches: impl Fn(&Message) -> bool + 'static,
    ) {
        self.remove_message_rule(name);
        self.message_rules.rules.push(MessageRule {
            name: name.to_string(),
            action,
            matches: Box::new(matches),
            hits: 0,
        });
        self.trace.record(self.now_us, "add-rule", 0, 0);
    }

    /// Removes the rule of that name, if there is one (its count is kept).
    pub fn remove_message_rule(&mut self, name: &str) {
        let rules = &mut self.message_rules;
        if let Some(i) = rules.rules.iter().position(|r| r.name == name) {
            let rule = rules.rules.remove(i);
            rules.retired.push((rule.name, rule.hits));
            self.trace.record(self.now_us, "remove-rule", 0, 0);
        }
    }

    /// Removes every rule.
    pub fn clear_message_rules(&mut self) {
        let names: Vec<String> = self.message_rules.rules.iter().map(|r| r.name.clone()).collect();
        for name in names {
            self.remove_message_rule(&name);
        }
    }

    /// How many messages the rules of that name have matched (the one in force and any
    /// removed).
    pub fn message_rule_hits(&self, name: &str) -> u64 {
        let rules = &self.message_rules;
        let live = rules.rules.iter().filter(|r| r.name == name).map(|r| r.hits);
        let retired = rules.retired.iter().filter(|(n, _)| n == name).map(|(_, h)| *h);
        live.chain(retired).sum()
    }

    /// Whether `server` starts with the world's bootstrap voters (`--cluster` given) the next
    /// time it is started. A server's storage holds its configuration once it has one, so the
    /// voters matter only to a server whose storage holds none.
    pub fn set_bootstrap(&mut self, server: usize, bootstrap: bool) {
        self.servers[server].bootstrap = bootstrap;
    }

    /// Writes the cluster's first configuration, as the snapshot at index 0, to the empty disk
    /// of server `server` (one the world began with), as the server does to a data directory
    /// it creates (`Snapshot::bootstrap`): later starts then find the configuration on disk
    /// whatever their bootstrap voters. Call it before the server's first event.
    pub fn write_bootstrap_config(&mut self, server: usize) {
        let config = ClusterConfig::bootstrap(self.initial_voters().iter().copied());
        let snapshot = Snapshot::bootstrap(config);
        let batch = [PersistBatch { hard_state: None, snapshot: Some(&snapshot), entries: &[] }];
        let storage = &mut self.servers[server].storage;
        assert!(
            storage.durable_state().snapshot.config.is_unknown(),
            "server {server}'s disk is not empty"
        );
        storage
            .begin(&batch)
            .and_then(|()| storage.finish(&batch))
            .expect("an empty disk takes it");
        self.trace.record(self.now_us, "write-bootstrap", server as u64, 0);
    }
}
