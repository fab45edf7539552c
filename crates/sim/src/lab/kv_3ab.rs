//! The KV lab suite (3A and 3B): GenericTest and its variants, the speed tests, and the custom
//! tests. Every GenericTest records its history and checks it for linearizability.

use std::cell::Cell;
use std::rc::Rc;

use crate::kv_tester::{
    check_clnt_appends, check_concurrent_appends, KvTester, ELECTION_TIMEOUT_MS,
};

/// GenericTest's knobs, as in the lab.
#[derive(Debug, Clone, Copy)]
pub struct Generic {
    pub part: &'static str,
    pub clients: usize,
    pub unreliable: bool,
    pub crash: bool,
    pub partitions: bool,
    pub random_keys: bool,
}

fn title(g: &Generic, maxraftstate: i64) -> String {
    let mut t = String::from("Test: ");
    if g.unreliable {
        t += "unreliable net, ";
    }
    if g.crash {
        t += "restarts, ";
    }
    if g.partitions {
        t += "partitions, ";
    }
    if maxraftstate != -1 {
        t += "snapshots, ";
    }
    if g.random_keys {
        t += "random keys, ";
    }
    t += if g.clients > 1 { "many clients" } else { "one client" };
    format!("{t} ({})", g.part)
}

/// One GenericTest client: appends, puts and gets until told to stop; returns how many
/// appends/puts it did.
async fn generic_client(t: KvTester, cli: usize, g: Generic, stop: Rc<Cell<bool>>) -> usize {
    let ck = t.make_client(&t.all());
    let mut j = 0;
    let mut last = String::new();
    let own_key = cli.to_string();
    if !g.random_keys {
        t.put(&ck, &own_key, &last, true, cli as u64).await;
    }
    while !stop.get() {
        let key =
            if g.random_keys { t.rand(g.clients as u64).to_string() } else { own_key.clone() };
        let nv = format!("x {cli} {j} y");
        if t.rand(1000) < 500 {
            t.append(&ck, &key, &nv, true, cli as u64).await;
            if !g.random_keys {
                last += &nv;
            }
            j += 1;
        } else if g.random_keys && t.rand(1000) < 100 {
            t.put(&ck, &key, &nv, true, cli as u64).await;
            j += 1;
        } else {
            let v = t.get(&ck, &key, true, cli as u64).await;
            if !g.random_keys {
                assert_eq!(v, last, "get wrong value, key {key}");
            }
        }
    }
    j
}

/// Repartitions the servers at random about once a second until told to stop.
async fn partitioner(t: KvTester, stop: Rc<Cell<bool>>) {
    while !stop.get() {
        t.random_partition();
        t.sleep(ELECTION_TIMEOUT_MS + t.rand(200)).await;
    }
}

pub async fn generic_test(t: KvTester, g: Generic) {
    let n = t.n;
    t.begin(&title(&g, t.maxraftstate));
    let ck = t.make_client(&t.all());
    for _ in 0..3 {
        let stop_clients = Rc::new(Cell::new(false));
        let stop_partitioner = Rc::new(Cell::new(false));
        let clients: Vec<_> = (0..g.clients)
            .map(|cli| t.sim.spawn(generic_client(t.clone(), cli, g, stop_clients.clone())))
            .collect();
        let partitioner_task = if g.partitions {
            // Allow the clients to perform some operations without interruption.
            t.sleep(1000).await;
            Some(t.sim.spawn(partitioner(t.clone(), stop_partitioner.clone())))
        } else {
            None
        };
        t.sleep(5000).await;
        stop_clients.set(true);
        stop_partitioner.set(true);
        if let Some(p) = partitioner_task {
            p.await;
            t.connect_all();
            // Wait for a while so that we have a new term.
            t.sleep(ELECTION_TIMEOUT_MS).await;
        }
        if g.crash {
            for i in 0..n {
                t.shutdown_server(i);
            }
            // Wait for a while for servers to shut down, since shutdown isn't a real crash.
            t.sleep(ELECTION_TIMEOUT_MS).await;
            for i in 0..n {
                t.start_server(i);
            }
            t.connect_all();
        }
        for (cli, c) in clients.into_iter().enumerate() {
            let j = c.await;
            let v = t.get(&ck, &cli.to_string(), true, 0).await;
            if !g.random_keys {
                check_clnt_appends(cli, &v, j);
            }
        }
        if t.maxraftstate > 0 {
            // Strictest of the lab's bounds: at most 2 x maxraftstate.
            let size = t.log_size();
            assert!(
                size <= 2 * t.maxraftstate as usize,
                "logs were not trimmed ({size} > 2*{})",
                t.maxraftstate
            );
        }
        if t.maxraftstate < 0 {
            let size = t.snapshot_size();
            assert_eq!(
                size, 0,
                "snapshot too large ({size}), should not be used when maxraftstate = -1"
            );
        }
    }
    t.end();
    t.check_history();
}

pub async fn generic_test_speed(t: KvTester, part: &str) {
    const NUM_OPS: usize = 1000;
    t.begin(&format!("Test: ops complete fast enough ({part})"));
    let ck = t.make_client(&t.all());
    // Wait until the first op completes: a leader is elected and the servers serve.
    t.get(&ck, "x", false, 0).await;
    let start = t.sim.now_us();
    for i in 0..NUM_OPS {
        t.append(&ck, "x", &format!("x 0 {i} y"), false, 0).await;
    }
    let elapsed_us = t.sim.now_us() - start;
    let v = t.get(&ck, "x", false, 0).await;
    check_clnt_appends(0, &v, NUM_OPS);
    // Heartbeats are every 100 ms; require at least 3 ops per heartbeat interval.
    let limit_us = NUM_OPS as u64 * 100_000 / 3;
    assert!(
        elapsed_us <= limit_us,
        "operations completed too slowly: {} us/op > {} us/op",
        elapsed_us / NUM_OPS as u64,
        limit_us / NUM_OPS as u64
    );
    t.end();
}

pub async fn unreliable_one_key(t: KvTester) {
    t.begin("Test: concurrent append to same key, unreliable (3A)");
    let ck = t.make_client(&t.all());
    t.put(&ck, "k", "", false, 0).await;
    const CLIENTS: usize = 5;
    const UPTO: usize = 10;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|me| {
            let t2 = t.clone();
            t.sim.spawn(async move {
                let ck = t2.make_client(&t2.all());
                for n in 0..UPTO {
                    t2.append(&ck, "k", &format!("x {me} {n} y"), false, 0).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
    let v = t.get(&ck, "k", false, 0).await;
    check_concurrent_appends(&v, &[UPTO; CLIENTS]);
    t.end();
}

pub async fn one_partition(t: KvTester) {
    let ck = t.make_client(&t.all());
    t.put(&ck, "1", "13", false, 0).await;

    t.begin("Test: progress in majority (3A)");
    let (p1, p2) = t.make_partition();
    t.partition(&p1, &p2);
    let ckp1 = t.make_client(&p1); // connect ckp1 to p1
    let ckp2a = Rc::new(t.make_client(&p2)); // connect ckp2a to p2
    let ckp2b = Rc::new(t.make_client(&p2)); // connect ckp2b to p2
    t.put(&ckp1, "1", "14", false, 0).await;
    t.check(&ckp1, "1", "14").await;
    t.end();

    t.begin("Test: no progress in minority (3A)");
    let done0 = Rc::new(Cell::new(false));
    let done1 = Rc::new(Cell::new(false));
    {
        let (t2, ck, done) = (t.clone(), ckp2a.clone(), done0.clone());
        t.sim.spawn(async move {
            t2.put(&ck, "1", "15", false, 0).await;
            done.set(true);
        });
        let (t2, ck, done) = (t.clone(), ckp2b.clone(), done1.clone());
        t.sim.spawn(async move {
            t2.get(&ck, "1", false, 0).await; // different clerk in p2
            done.set(true);
        });
    }
    t.sleep(1000).await;
    assert!(!done0.get(), "Put in minority completed");
    assert!(!done1.get(), "Get in minority completed");
    t.check(&ckp1, "1", "14").await;
    t.put(&ckp1, "1", "16", false, 0).await;
    t.check(&ckp1, "1", "16").await;
    t.end();

    t.begin("Test: completion after heal (3A)");
    t.connect_all();
    t.connect_client(&ckp2a, &t.all());
    t.connect_client(&ckp2b, &t.all());
    t.sleep(ELECTION_TIMEOUT_MS).await;
    for _ in 0..30 {
        if done0.get() {
            break;
        }
        t.sleep(100).await;
    }
    assert!(done0.get(), "Put did not complete");
    t.check(&ck, "1", "15").await;
    t.end();
}

pub async fn snapshot_rpc(t: KvTester) {
    let maxraftstate = t.maxraftstate as usize;
    let ck = t.make_client(&t.all());
    t.begin("Test: InstallSnapshot RPC (3B)");
    t.put(&ck, "a", "A", false, 0).await;
    t.check(&ck, "a", "A").await;
    // A bunch of puts into the majority partition.
    t.partition(&[0, 1], &[2]);
    {
        let ck1 = t.make_client(&[0, 1]);
        for i in 0..50 {
            t.put(&ck1, &i.to_string(), &i.to_string(), false, 0).await;
        }
        t.sleep(ELECTION_TIMEOUT_MS).await;
        t.put(&ck1, "b", "B", false, 0).await;
    }
    // The majority must have thrown away most of its log.
    let size = t.log_size();
    assert!(size <= 2 * maxraftstate, "logs were not trimmed ({size} > 2*{maxraftstate})");
    // A group that needs the lagging server, which must catch up.
    t.partition(&[0, 2], &[1]);
    {
        let ck1 = t.make_client(&[0, 2]);
        t.put(&ck1, "c", "C", false, 0).await;
        t.put(&ck1, "d", "D", false, 0).await;
        t.check(&ck1, "a", "A").await;
        t.check(&ck1, "b", "B").await;
        t.check(&ck1, "1", "1").await;
        t.check(&ck1, "49", "49").await;
    }
    // Now everybody.
    t.partition(&[0, 1, 2], &[]);
    t.put(&ck, "e", "E", false, 0).await;
    t.check(&ck, "c", "C").await;
    t.check(&ck, "e", "E").await;
    t.check(&ck, "1", "1").await;
    t.end();
}

pub async fn snapshot_size(t: KvTester) {
    let maxraftstate = t.maxraftstate as usize;
    const MAX_SNAPSHOT_STATE: usize = 500;
    let ck = t.make_client(&t.all());
    t.begin("Test: snapshot size is reasonable (3B)");
    for _ in 0..200 {
        t.put(&ck, "x", "0", false, 0).await;
        t.check(&ck, "x", "0").await;
        t.put(&ck, "x", "1", false, 0).await;
        t.check(&ck, "x", "1").await;
    }
    // The servers must have thrown away most of their logs.
    let size = t.log_size();
    assert!(size <= 2 * maxraftstate, "logs were not trimmed ({size} > 2*{maxraftstate})");
    let snapshot = t.snapshot_size();
    assert!(
        snapshot <= MAX_SNAPSHOT_STATE,
        "snapshot too large ({snapshot} > {MAX_SNAPSHOT_STATE})"
    );
    t.end();
}
