//! A fault test against a three-node kvraft cluster in Docker containers, which the test
//! creates itself and removes when it ends (pass or fail).
//!
//! Several clients run a read/append workload through the containers' published ports
//! while the test, one fault at a time, cuts the leader off from its peers
//! (`docker network disconnect`, then `connect`), freezes the leader (`docker pause`, then
//! `unpause`) and kills the leader (`docker kill`, SIGKILL, then `docker start` on the same data
//! volume). Then the recorded history must be linearizable, and every acknowledged append must
//! be in its key's final value exactly once.
//!
//! Besides the workload's clients (which follow leader hints, so they leave a node as soon as
//! it stops leading), one *pinned reader* per node sends Gets to that node only, and every Get
//! it answers joins the history. A node that answers a read it should not (a deposed leader
//! reading its own state, a leader waking up from a pause) is caught that way.
//!
//! Layout: each node is on two networks of its own. The *peer* network (a /24 chosen at random
//! in 10.0.0.0/8, static addresses .11, .12, .13) carries Raft traffic; each node's cluster
//! address is its IP there. The *client* network carries only the published port
//! (127.0.0.1:<free port> -> 7000). A partition disconnects the peer network alone, so the
//! partitioned leader stays reachable by clients: a deposed leader that still answers is the
//! case where stale reads and lost writes would show. The cluster addresses are IPs, not
//! container names, because followers send clients the leader's cluster address as a hint,
//! and the client on the host can reach a container's IP (Docker routes its bridges to the
//! host on Linux) but cannot resolve a container name. (So the test needs an engine whose
//! bridge networks the host reaches: not rootless Docker, not Docker Desktop. It checks.)
//!
//! Without a Docker daemon (`docker info` fails) the test prints "skipping: no Docker daemon"
//! and passes, unless `CI=true`, where a missing daemon fails it.
//!
//! The image: `KVRAFT_DOCKER_IMAGE=<tag>` uses an existing image as is. Otherwise the test
//! builds `kvraft:test` with `docker/build-image.sh` from the `kvraft` binary Cargo built for
//! this test run (so the image always holds the code under test; unchanged, the build is a
//! cache hit of about a second). `KVRAFT_TEST_KEEP=1` leaves the containers and networks in
//! place; every container carries the label `kvraft-test=<run name>` for cleaning up by hand:
//! `docker rm -fv $(docker ps -aq --filter label=kvraft-test)`.
//!
//! Run it alone with: `cargo test --release -p kvraft --test docker -- --nocapture`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvraft_linearizability::Operation;
use kvraft_proto::v1 as pb;
use kvraft_proto::v1::kv_service_client::KvServiceClient;
use kvraft_raft::DetRng;
use kvraft_testkit::{WorkloadOptions, WorkloadReport};
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

/// The port every node listens on inside its container.
const NODE_PORT: u16 = 7000;
/// The image the test builds unless `KVRAFT_DOCKER_IMAGE` names one.
const TEST_IMAGE: &str = "kvraft:test";
const NODES: usize = 3;

// ------------------------------------------------------------------------------------------
// The docker command
// ------------------------------------------------------------------------------------------

/// Runs `docker args...`; its trimmed stdout, or an error naming the command and its stderr.
fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `docker {}`: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// [`docker`] from async code, off the runtime's worker threads.
async fn docker_async(args: Vec<String>) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args)
    })
    .await
    .expect("the docker command's thread panicked")
}

/// Whether the test should run: a daemon answers. Without one the test is skipped, unless
/// `CI=true`.
fn docker_available() -> bool {
    match docker(&["info", "--format", "{{.ServerVersion}}"]) {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true, and no Docker daemon answers: {e}")
        }
        Err(e) => {
            println!("skipping: no Docker daemon ({e})");
            false
        }
    }
}

/// The image to run: `KVRAFT_DOCKER_IMAGE` if set (it must exist), else [`TEST_IMAGE`] built
/// from this run's `kvraft` binary.
fn image() -> String {
    if let Ok(image) = std::env::var("KVRAFT_DOCKER_IMAGE") {
        if let Err(e) = docker(&["image", "inspect", "--format", "{{.Id}}", &image]) {
            panic!("KVRAFT_DOCKER_IMAGE={image}: no such image: {e}");
        }
        return image;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker/build-image.sh");
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(&script)
        .args(["--binary", env!("CARGO_BIN_EXE_kvraft"), "--tag", TEST_IMAGE, "--quiet"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "image {TEST_IMAGE} from {} ({} ms)",
        env!("CARGO_BIN_EXE_kvraft"),
        started.elapsed().as_millis()
    );
    TEST_IMAGE.to_string()
}

// ------------------------------------------------------------------------------------------
// The cluster
// ------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Node {
    container: String,
    /// Its address on the peer network (and its cluster address, with [`NODE_PORT`]).
    peer_ip: String,
    /// The published port on 127.0.0.1.
    host_port: u16,
}

/// Three containers on two private networks; see the module docs. Dropping it removes the
/// containers (with their volumes) and the networks.
#[derive(Debug)]
struct DockerCluster {
    /// Unique per run: every network and container name starts with it.
    name: String,
    client_net: String,
    peer_net: String,
    /// Networks and containers created so far (for the cleanup).
    networks: Vec<String>,
    nodes: Vec<Node>,
}

impl DockerCluster {
    fn start(image: &str) -> DockerCluster {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!("kvraft-test-{}-{:06x}", std::process::id(), nanos & 0xff_ffff);
        let mut cluster = DockerCluster {
            client_net: format!("{name}-client"),
            peer_net: format!("{name}-peer"),
            name,
            networks: Vec::new(),
            nodes: Vec::new(),
        };
        let client_net = cluster.client_net.clone();
        docker(&["network", "create", "--label", &cluster.label(), &client_net])
            .unwrap_or_else(|e| panic!("{e}"));
        cluster.networks.push(client_net.clone());
        let prefix = cluster.create_peer_network(nanos as u64);

        let ports = kvraft_testkit::free_ports(NODES).expect("free ports");
        let ips: Vec<String> = (1..=NODES).map(|i| format!("{prefix}.{}", 10 + i)).collect();
        let members: Vec<String> =
            ips.iter().enumerate().map(|(i, ip)| format!("{}={ip}:{NODE_PORT}", i + 1)).collect();
        let members = members.join(",");
        for (i, (ip, port)) in ips.into_iter().zip(ports).enumerate() {
            let container = format!("{}-node{}", cluster.name, i + 1);
            let id = format!("KVRAFT_ID={}", i + 1);
            let members = format!("KVRAFT_CLUSTER={members}");
            let listen = format!("KVRAFT_LISTEN=0.0.0.0:{NODE_PORT}");
            let raft_state =
                format!("KVRAFT_MAX_RAFT_STATE_BYTES={}", kvraft_testkit::SMALL_RAFT_STATE_BYTES);
            let publish = format!("127.0.0.1:{port}:{NODE_PORT}");
            let label = cluster.label();
            #[rustfmt::skip]
            let args = [
                "create", "--name", &container, "--label", &label,
                "--network", &client_net, "--publish", &publish,
                "--env", &id, "--env", &members, "--env", &listen, "--env", &raft_state,
                "--env", "RUST_LOG=info", image, "server",
            ];
            docker(&args).unwrap_or_else(|e| panic!("{e}"));
            cluster.nodes.push(Node { container: container.clone(), peer_ip: ip, host_port: port });
            docker(&["start", &container]).unwrap_or_else(|e| panic!("{e}"));
            let connect = cluster.peer_args("connect", i);
            let connect: Vec<&str> = connect.iter().map(String::as_str).collect();
            docker(&connect).unwrap_or_else(|e| panic!("{e}"));
        }
        cluster
    }

    fn label(&self) -> String {
        format!("kvraft-test={}", self.name)
    }

    /// Creates the peer network on a random 10.x.y.0/24 that no other network uses; returns
    /// its first three octets.
    fn create_peer_network(&mut self, seed: u64) -> String {
        let mut rng = DetRng::new(seed);
        let mut last_error = String::new();
        for _ in 0..20 {
            let prefix = format!("10.{}.{}", 100 + rng.below(150), rng.below(256));
            let subnet = format!("--subnet={prefix}.0/24");
            let label = self.label();
            match docker(&["network", "create", "--label", &label, &subnet, &self.peer_net]) {
                Ok(_) => {
                    self.networks.push(self.peer_net.clone());
                    return prefix;
                }
                Err(e) => last_error = e,
            }
        }
        panic!("no free subnet for the peer network: {last_error}");
    }

    fn endpoint(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].host_port)
    }

    /// The published client endpoints, node 1 first.
    fn endpoints(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Node `i`'s container and the peer network, as `docker network` arguments.
    fn peer_args(&self, verb: &str, i: usize) -> Vec<String> {
        let node = &self.nodes[i];
        let mut args = vec!["network".to_string(), verb.to_string()];
        if verb == "connect" {
            args.extend(["--ip".to_string(), node.peer_ip.clone()]);
        }
        args.extend([self.peer_net.clone(), node.container.clone()]);
        args
    }

    /// Cuts node `i` off from its peers; clients still reach it.
    async fn partition(&self, i: usize) {
        docker_async(self.peer_args("disconnect", i)).await.unwrap_or_else(|e| panic!("{e}"));
    }

    async fn heal(&self, i: usize) {
        docker_async(self.peer_args("connect", i)).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// `docker <verb> <node i's container>` (pause, unpause, kill, start).
    async fn container(&self, verb: &str, i: usize) {
        docker_async(vec![verb.to_string(), self.nodes[i].container.clone()])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn status(&self, i: usize, timeout: Duration) -> Option<pb::StatusReply> {
        kvraft_client::remote::status(&self.endpoint(i), timeout).await.ok()
    }

    async fn statuses(&self, timeout: Duration) -> Vec<Option<pb::StatusReply>> {
        futures_util::future::join_all((0..self.nodes.len()).map(|i| self.status(i, timeout))).await
    }

    /// The node among `among` that says it leads, with the highest term if several do.
    async fn leader_among(&self, among: &[usize]) -> Option<usize> {
        let statuses = self.statuses(Duration::from_millis(500)).await;
        statuses
            .iter()
            .enumerate()
            .filter(|(i, _)| among.contains(i))
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
            .filter(|(_, s)| s.role == pb::Role::Leader as i32)
            .max_by_key(|(_, s)| s.term)
            .map(|(i, _)| i)
    }

    /// Waits up to `within` for a leader among `among`; panics if none shows up.
    async fn wait_leader_among(&self, among: &[usize], within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(leader) = self.leader_among(among).await {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no leader among nodes {among:?} within {within:?}: {}",
                self.describe(&self.statuses(Duration::from_millis(500)).await)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_leader(&self, within: Duration) -> usize {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_leader_among(&all, within).await
    }

    /// Panics unless this host can open a TCP connection to every node's peer-network address:
    /// the clients follow leader hints there (see the module docs).
    fn check_host_reaches_nodes(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            let address: std::net::SocketAddr =
                format!("{}:{NODE_PORT}", node.peer_ip).parse().expect("an IPv4 address");
            if let Err(e) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
                panic!(
                    "this host cannot reach node {} at {address} ({e}); the clients follow leader \
                     hints, which name that address, so this test needs a Docker engine whose \
                     bridge networks the host can reach (not rootless Docker or Docker Desktop)",
                    i + 1
                );
            }
        }
    }

    /// Waits up to `within` until node `i` answers `Status`.
    async fn wait_answering(&self, i: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.status(i, Duration::from_millis(500)).await.is_none() {
            assert!(Instant::now() < deadline, "node {} did not answer within {within:?}", i + 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `within` until every node answers with the same term, leader, commit and
    /// applied index; returns that applied index.
    async fn wait_converged(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let statuses = self.statuses(Duration::from_millis(500)).await;
            let all: Vec<&pb::StatusReply> = statuses.iter().flatten().collect();
            if all.len() == self.nodes.len()
                && all.iter().all(|s| {
                    (s.term, s.leader_id, s.commit_index, s.applied_index)
                        == (
                            all[0].term,
                            all[0].leader_id,
                            all[0].commit_index,
                            all[0].applied_index,
                        )
                        && s.applied_index == s.commit_index
                })
                && all[0].leader_id != 0
            {
                return all[0].applied_index;
            }
            assert!(
                Instant::now() < deadline,
                "the nodes did not converge within {within:?}: {}",
                self.describe(&statuses)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One line per node: role, term, leader, commit, applied, snapshot.
    fn describe(&self, statuses: &[Option<pb::StatusReply>]) -> String {
        let mut out = String::new();
        for (i, s) in statuses.iter().enumerate() {
            out.push_str(&match s {
                Some(s) => format!(
                    "\n  node {}: role {:?} term {} leader {} commit {} applied {} snapshot {}",
                    i + 1,
                    pb::Role::try_from(s.role).unwrap_or(pb::Role::Unspecified),
                    s.term,
                    s.leader_id,
                    s.commit_index,
                    s.applied_index,
                    s.snapshot_index
                ),
                None => format!("\n  node {}: no answer", i + 1),
            });
        }
        out
    }

    fn log_tail(&self, i: usize, lines: usize) -> String {
        let lines = lines.to_string();
        let container = &self.nodes[i].container;
        match Command::new("docker").args(["logs", "--tail", &lines, container]).output() {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("(docker logs failed: {e})"),
        }
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                eprintln!(
                    "----- node {} ({}), last 40 lines -----\n{}",
                    i + 1,
                    self.nodes[i].container,
                    self.log_tail(i, 40)
                );
            }
        }
        let containers: Vec<&str> = self.nodes.iter().map(|n| n.container.as_str()).collect();
        if std::env::var_os("KVRAFT_TEST_KEEP").is_some() {
            eprintln!("kept containers {containers:?} and networks {:?}", self.networks);
            return;
        }
        // A paused container may refuse removal on older engines: unpause first.
        for c in &containers {
            let _ = docker(&["unpause", c]);
        }
        if !containers.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(&containers);
            if let Err(e) = docker(&args) {
                eprintln!("cleanup: {e}");
            }
        }
        for net in &self.networks {
            if let Err(e) = docker(&["network", "rm", net]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Pinned readers
// ------------------------------------------------------------------------------------------

/// A Get a pinned reader got an answer to.
#[derive(Debug)]
struct PinnedRead {
    key: String,
    value: String,
    call: Instant,
    ret: Instant,
}

/// What one pinned reader saw.
#[derive(Debug, Default)]
struct PinnedReport {
    reads: Vec<PinnedRead>,
    /// Answers NOT_LEADER, transport errors and timeouts.
    refused: usize,
}

/// How long a pinned reader waits for one answer. Longer than the election timeout, so a read
/// sent to a paused leader can still be waiting when the leader wakes up.
const PINNED_CALL_TIMEOUT: Duration = Duration::from_millis(1500);

/// A random non-zero session id (the client library's scheme).
fn new_session_id() -> u64 {
    kvraft_client::remote::new_client_id().0
}

/// Sends Gets of random keys to `endpoint` alone until `stop`, one at a time, and keeps the
/// answered ones. Every attempt that is not answered with a value (NOT_LEADER, an error, a
/// timeout) ends its session: the next Get starts a new one (new random client id, sequence
/// 1), so no answer can be a deduplicated reply to an earlier attempt. After a value, the
/// session goes on with the next sequence number.
async fn pinned_reader(
    endpoint: String,
    keys: Vec<String>,
    seed: u64,
    stop: watch::Receiver<bool>,
) -> PinnedReport {
    let channel: Channel = Endpoint::from_shared(format!("http://{endpoint}"))
        .expect("a valid endpoint")
        .connect_timeout(PINNED_CALL_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy();
    let mut client = KvServiceClient::new(channel);
    let mut report = PinnedReport::default();
    let (mut client_id, mut sequence) = (new_session_id(), 1u64);
    let mut rng = DetRng::new(seed);
    while !*stop.borrow() {
        let key = keys[rng.below(keys.len() as u64) as usize].clone();
        let mut request =
            tonic::Request::new(pb::GetRequest { client_id, sequence, key: key.clone() });
        request.set_timeout(PINNED_CALL_TIMEOUT);
        let call = Instant::now();
        let answer = tokio::time::timeout(PINNED_CALL_TIMEOUT, client.get(request)).await;
        let ret = Instant::now();
        match answer.ok().and_then(|r| r.ok()).and_then(|r| r.into_inner().result) {
            Some(pb::get_reply::Result::Value(value)) => {
                report.reads.push(PinnedRead { key, value, call, ret });
                sequence += 1;
                // Keep the load moderate: every Get goes through the Raft log.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            _ => {
                report.refused += 1;
                (client_id, sequence) = (new_session_id(), 1);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    report
}

// ------------------------------------------------------------------------------------------
// The test
// ------------------------------------------------------------------------------------------

/// Prints what happens, with the time since the workload started.
struct Timeline {
    start: Instant,
}

impl Timeline {
    fn note(&self, what: String) -> Instant {
        let now = Instant::now();
        println!("[{:6.2} s] {what}", now.duration_since(self.start).as_secs_f64());
        now
    }
}

/// How long after `at` the first write invoked after it was acknowledged, as text.
fn recovery(report: &WorkloadReport, at: Instant) -> String {
    match report.first_write_acked_after(at) {
        Some(d) => format!("{} ms", d.as_millis()),
        None => "never".to_string(),
    }
}

// A scenario script (start, a sequence of faults under load, the history check), each step
// commented: it reads best top to bottom.
#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_in_docker_keep_the_history_linearizable() {
    if !docker_available() {
        return;
    }
    let test_started = Instant::now();
    let image = image();
    let cluster = DockerCluster::start(&image);
    let endpoints = cluster.endpoints();
    println!("cluster {}: endpoints {}", cluster.name, endpoints.join(","));
    for i in 0..NODES {
        cluster.wait_answering(i, Duration::from_secs(20)).await;
    }
    cluster.check_host_reaches_nodes();
    let first_leader = cluster.wait_leader(Duration::from_secs(20)).await;

    // Reads and appends only: with no put to overwrite them, every acknowledged append must
    // survive to the end, so the lost-write check covers the whole run.
    let opts = WorkloadOptions {
        clients: 5,
        keys: 8,
        read_per_mille: 300,
        append_per_mille: 700,
        call_timeout: Duration::from_secs(1),
        op_timeout: Duration::from_secs(5),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let workload = tokio::spawn(kvraft_testkit::run_workload(
        endpoints.clone(),
        opts.clone(),
        stop_rx.clone(),
    ));
    let keys: Vec<String> = (0..opts.keys).map(|k| format!("k{k}")).collect();
    let readers: Vec<_> = endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let seed = u64::from(std::process::id()) << 8 | i as u64;
            tokio::spawn(pinned_reader(e.clone(), keys.clone(), seed, stop_rx.clone()))
        })
        .collect();
    let timeline = Timeline { start: Instant::now() };
    timeline.note(format!("workload started ({opts:?}); node {} leads", first_leader + 1));
    let pause = tokio::time::sleep;
    pause(Duration::from_secs(3)).await;

    // 1. Partition the leader from its peers (clients still reach it), then heal.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await;
    cluster.partition(leader).await;
    let partitioned_at = timeline.note(format!("partitioned node {} (leader)", leader + 1));
    let others: Vec<usize> = (0..NODES).filter(|&i| i != leader).collect();
    let new_leader = cluster.wait_leader_among(&others, Duration::from_secs(10)).await;
    timeline.note(format!("node {} leads the majority", new_leader + 1));
    pause(Duration::from_secs(4)).await;
    cluster.heal(leader).await;
    let healed_at = timeline.note(format!("healed node {}", leader + 1));
    pause(Duration::from_secs(3)).await;

    // 2. Freeze the leader, then thaw it.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await;
    cluster.container("pause", leader).await;
    let paused_at = timeline.note(format!("paused node {} (leader)", leader + 1));
    let others: Vec<usize> = (0..NODES).filter(|&i| i != leader).collect();
    let new_leader = cluster.wait_leader_among(&others, Duration::from_secs(10)).await;
    timeline.note(format!("node {} leads the majority", new_leader + 1));
    pause(Duration::from_secs(3)).await;
    cluster.container("unpause", leader).await;
    let unpaused_at = timeline.note(format!("unpaused node {}", leader + 1));
    pause(Duration::from_secs(3)).await;

    // 3. Kill the leader (SIGKILL), then start it again on its data.
    let leader = cluster.wait_leader(Duration::from_secs(10)).await;
    cluster.container("kill", leader).await;
    let killed_at = timeline.note(format!("killed node {} (leader)", leader + 1));
    let others: Vec<usize> = (0..NODES).filter(|&i| i != leader).collect();
    let new_leader = cluster.wait_leader_among(&others, Duration::from_secs(10)).await;
    timeline.note(format!("node {} leads the majority", new_leader + 1));
    pause(Duration::from_secs(3)).await;
    cluster.container("start", leader).await;
    let restarted_at = timeline.note(format!("restarted node {}", leader + 1));
    cluster.wait_answering(leader, Duration::from_secs(20)).await;
    pause(Duration::from_secs(4)).await;

    stop_tx.send(true).expect("the workload is running");
    let mut report = workload.await.expect("the workload panicked");
    let mut pinned = Vec::new();
    let mut pinned_reads = 0;
    for (i, reader) in readers.into_iter().enumerate() {
        let r = reader.await.expect("a pinned reader panicked");
        pinned.push(format!("node {}: {} answered, {} refused", i + 1, r.reads.len(), r.refused));
        pinned_reads += r.reads.len();
        // Client ids 1000+: the workload's are 0..clients. A read begun before the workload's
        // clock started counts from 0 (a longer interval only weakens its constraint).
        for read in r.reads {
            let (call, ret) = (report.us_at(read.call), report.us_at(read.ret));
            report.history.push(Operation::get(1000 + i as u64, read.key, read.value, call, ret));
        }
    }
    timeline.note(format!("workload stopped; pinned readers: {}", pinned.join("; ")));

    let applied = cluster.wait_converged(Duration::from_secs(20)).await;
    let statuses = cluster.statuses(Duration::from_secs(1)).await;
    timeline.note(format!("all nodes at applied index {applied}:{}", cluster.describe(&statuses)));
    let final_values =
        kvraft_testkit::read_final_values(&endpoints, &mut report, Duration::from_secs(10)).await;

    println!(
        "history: {} operations: workload {} acknowledged, {} failed or timed out ({} writes \
         with unknown outcome); {pinned_reads} pinned reads; {} final reads",
        report.history.len(),
        report.ok,
        report.failed,
        report.unknown(),
        final_values.len()
    );
    println!(
        "first write acknowledged after: partition {}, heal {}, pause {}, unpause {}, kill {}, \
         restart {}",
        recovery(&report, partitioned_at),
        recovery(&report, healed_at),
        recovery(&report, paused_at),
        recovery(&report, unpaused_at),
        recovery(&report, killed_at),
        recovery(&report, restarted_at),
    );
    let linearizability = report.check_linearizable();
    println!("linearizability: {linearizability}");
    let appends = report.check_appends(&final_values);
    println!("appends: {appends}");

    // The workload made progress through every fault.
    for (what, at) in [("partition", partitioned_at), ("pause", paused_at), ("kill", killed_at)] {
        assert!(
            report.first_write_acked_after(at).is_some(),
            "no write was acknowledged after the {what}"
        );
    }
    assert!(report.ok >= 100, "only {} operations were acknowledged", report.ok);
    println!("total {:.1} s", test_started.elapsed().as_secs_f64());
}
