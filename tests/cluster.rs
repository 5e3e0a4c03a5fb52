//! A 3-primary cluster with the module loaded on every node. TRACKINFO.* answers on each node
//! about that node's connections: a logical client (one connection per node, as cluster
//! clients have) tracking keys on two nodes shows up on both, each node counting what it sent
//! that node's connection, and listing only its own keys.
//!
//! Per server binary: three nodes, slots assigned with CLUSTER ADDSLOTSRANGE, joined with
//! CLUSTER MEET, used once every node says `cluster_state:ok`. Keys are placed by hash tag, with
//! the owner of each tag's slot taken from CLUSTER KEYSLOT and CLUSTER SLOTS. Two logical
//! clients: one RESP3 default on nodes 0 and 1, one RESP2 redirecting to a subscribed connection
//! (OPTIN on node 1, BCAST on node 2). Reads that the server refuses are sent too (MOVED,
//! CROSSSLOT, a script reading a key another node serves): the server remembers nothing for
//! them, and neither may the module. Then every key is written on its node, and a FLUSHALL on
//! node 2 must reach node 2's connections only.
//!
//! On Redis 7.0 the module has no command filter (no client ids): each node must still list
//! exactly its own tracking connections, with fidelity partial and counters approximate and -1.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use common::mirror::{assert_client_mirror, Expect};
use common::{module_path, servers, Conn, Resp, Server};

const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);
const CHANNEL: &[u8] = b"__redis__:invalidate";
const SLOTS: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// Polls `f` until it answers `Some`, or fails with `what` after `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn field_of(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
}

fn info_int(conn: &mut Conn, section: &str, name: &str) -> i64 {
    let text = conn.cmd(&["INFO", section]).text().unwrap_or_default();
    field_of(&text, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no integer {name}"))
}

/// A cluster node: the server (with the module) and its cluster bus port.
struct Node {
    server: Server,
    bus: u16,
}

/// Starts a cluster node. The bus port is chosen free here (the default, port + 10000, may not
/// exist); a port taken meanwhile makes the start fail, and another one is tried.
fn start_node(bin: &std::path::Path) -> Node {
    let module = module_path();
    let mut last = String::new();
    for _ in 0..3 {
        let bus = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let bus_s = bus.to_string();
        let started = catch_unwind(AssertUnwindSafe(|| {
            Server::start_with(
                bin,
                Some(&module),
                &[
                    "--cluster-enabled",
                    "yes",
                    // Relative to the server's own dir (its working directory).
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    "--cluster-port",
                    &bus_s,
                ],
            )
        }));
        match started {
            Ok(server) => return Node { server, bus },
            Err(e) => {
                last = e
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "start failed".into())
            }
        }
    }
    panic!("cannot start a cluster node of {}: {last}", bin.display());
}

/// Three primaries, each owning a third of the slots, all saying `cluster_state:ok`.
fn start_cluster(bin: &std::path::Path) -> Vec<Node> {
    let nodes: Vec<Node> = (0..3).map(|_| start_node(bin)).collect();
    for (node, (lo, hi)) in nodes.iter().zip(SLOTS) {
        node.server
            .conn()
            .ok(&["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()]);
    }
    let mut first = nodes[0].server.conn();
    for other in &nodes[1..] {
        first.ok(&[
            "CLUSTER",
            "MEET",
            "127.0.0.1",
            &other.server.port.to_string(),
            &other.bus.to_string(),
        ]);
    }
    for node in &nodes {
        let mut c = node.server.conn();
        wait_for(
            CLUSTER_DEADLINE,
            &format!("cluster_state:ok on {}", node.server.describe()),
            || {
                let text = c.cmd(&["CLUSTER", "INFO"]).text().unwrap_or_default();
                let ok = field_of(&text, "cluster_state").as_deref() == Some("ok")
                    && field_of(&text, "cluster_known_nodes").as_deref() == Some("3")
                    && field_of(&text, "cluster_slots_assigned").as_deref() == Some("16384");
                ok.then_some(())
            },
        );
    }
    nodes
}

/// The port serving each slot, from CLUSTER SLOTS on `conn`.
fn slot_owners(conn: &mut Conn) -> BTreeMap<(i64, i64), i64> {
    let r = conn.cmd(&["CLUSTER", "SLOTS"]);
    r.items()
        .unwrap_or_else(|| panic!("CLUSTER SLOTS: {r}"))
        .iter()
        .map(|range| {
            let v = range.items().unwrap_or_else(|| panic!("range {range}"));
            let port = v[2].items().and_then(|n| n.get(1)).and_then(Resp::int);
            match (v[0].int(), v[1].int(), port) {
                (Some(lo), Some(hi), Some(port)) => ((lo, hi), port),
                _ => panic!("CLUSTER SLOTS range {range}"),
            }
        })
        .collect()
}

fn key_slot(conn: &mut Conn, key: &str) -> i64 {
    let r = conn.cmd(&["CLUSTER", "KEYSLOT", key]);
    r.int()
        .unwrap_or_else(|| panic!("CLUSTER KEYSLOT {key}: {r}"))
}

fn owner(owners: &BTreeMap<(i64, i64), i64>, slot: i64) -> i64 {
    owners
        .iter()
        .find(|((lo, hi), _)| (*lo..=*hi).contains(&slot))
        .map(|(_, port)| *port)
        .unwrap_or_else(|| panic!("no owner for slot {slot}"))
}

/// Hash tags whose slot the node on `port` serves: `count` of them, in distinct slots.
fn tags_on(
    conn: &mut Conn,
    owners: &BTreeMap<(i64, i64), i64>,
    port: u16,
    count: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut slots = BTreeSet::new();
    for i in 0.. {
        let tag = format!("{{t{i}}}");
        let slot = key_slot(conn, &tag);
        if owner(owners, slot) == i64::from(port) && slots.insert(slot) {
            out.push(tag);
            if out.len() == count {
                break;
            }
        }
    }
    out
}

/// One invalidation message: its keys, or `None` for a flush.
type Message = Option<Vec<String>>;

fn keys_of(r: &Resp) -> Message {
    match r {
        Resp::Null | Resp::NilBulk | Resp::NilArray => None,
        other => Some(
            other
                .items()
                .unwrap_or_else(|| panic!("invalidation with keys {other}"))
                .iter()
                .map(|k| k.text().unwrap_or_else(|| panic!("key {k}")))
                .collect(),
        ),
    }
}

/// A RESP3 `invalidate` push, or a RESP2 Pub/Sub message on `__redis__:invalidate`.
fn invalidation(frame: &Resp) -> Option<Message> {
    let items = frame.items()?;
    match (frame, items) {
        (Resp::Push(_), [kind, payload]) if kind.text().as_deref() == Some("invalidate") => {
            Some(keys_of(payload))
        }
        (Resp::Array(_) | Resp::Push(_), [kind, channel, payload])
            if kind.text().as_deref() == Some("message")
                && channel == &Resp::Bulk(CHANNEL.to_vec()) =>
        {
            Some(keys_of(payload))
        }
        _ => None,
    }
}

fn is_pong(frame: &Resp) -> bool {
    match frame {
        Resp::Simple(s) => s == b"PONG",
        // A RESP2 connection in Pub/Sub mode answers PING with ["pong", ""].
        Resp::Array(v) => v.first().and_then(Resp::text).as_deref() == Some("pong"),
        _ => false,
    }
}

/// Every invalidation that reached `c`: those set aside while it waited for replies, then
/// everything queued before the PONG of a new PING.
fn drain(c: &mut Conn) -> Vec<Message> {
    let mut out: Vec<Message> = std::mem::take(&mut c.pushes)
        .iter()
        .filter_map(invalidation)
        .collect();
    c.send(&["PING"]);
    loop {
        let (frame, _) = c
            .try_read_frame()
            .unwrap_or_else(|e| panic!("draining port {}: {e}", c.port()));
        if let Some(m) = invalidation(&frame) {
            out.push(m);
        } else if is_pong(&frame) {
            return out;
        } else {
            panic!("unexpected frame while draining: {frame}");
        }
    }
}

fn keys_in(msgs: &[Message]) -> Vec<String> {
    msgs.iter().flatten().flatten().cloned().collect()
}

fn flushes_in(msgs: &[Message]) -> usize {
    msgs.iter().filter(|m| m.is_none()).count()
}

/// A reply as name -> value (a RESP2 flat name/value array).
fn pairs(r: &Resp) -> BTreeMap<String, Resp> {
    r.items()
        .unwrap_or_else(|| panic!("not name/value pairs: {r}"))
        .chunks(2)
        .map(|kv| (kv[0].text().unwrap_or_default(), kv[1].clone()))
        .collect()
}

fn int_of(e: &BTreeMap<String, Resp>, name: &str) -> i64 {
    e.get(name)
        .and_then(Resp::int)
        .unwrap_or_else(|| panic!("no integer `{name}` in {e:?}"))
}

fn text_of(e: &BTreeMap<String, Resp>, name: &str) -> String {
    e.get(name)
        .and_then(Resp::text)
        .unwrap_or_else(|| panic!("no text `{name}` in {e:?}"))
}

/// A cluster redirection or slot error: what a keyed command on the wrong node gets.
fn is_routing_error(r: &Resp) -> bool {
    let t = r.text().unwrap_or_default();
    r.is_error()
        && ["MOVED", "ASK", "CROSSSLOT", "TRYAGAIN", "CLUSTERDOWN"]
            .iter()
            .any(|p| t.starts_with(p))
}

/// The ids CLIENT LIST shows with the `t` flag.
fn tracking_ids_listed(conn: &mut Conn) -> BTreeSet<i64> {
    let text = conn.cmd(&["CLIENT", "LIST"]).text().unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            };
            let id = field("id")?.parse().ok()?;
            field("flags")?.contains('t').then_some(id)
        })
        .collect()
}

fn module_clients(obs: &mut Conn) -> BTreeSet<i64> {
    let r = obs.cmd(&["TRACKINFO.CLIENTS"]);
    assert!(!is_routing_error(&r), "TRACKINFO.CLIENTS answered {r}");
    r.items()
        .unwrap_or_else(|| panic!("TRACKINFO.CLIENTS answered {r}"))
        .iter()
        .map(|entry| int_of(&pairs(entry), "id"))
        .collect()
}

/// One connection of a logical client: the node it is on, and where its messages arrive.
struct Leg {
    name: String,
    node: usize,
    conn: Conn,
    id: i64,
    /// The redirect target; `None`: the messages arrive on `conn` itself.
    receiver: Option<Conn>,
    bcast: bool,
    got: Vec<Message>,
}

impl Leg {
    fn new(nodes: &[Node], name: &str, node: usize, proto: u8, redirect: bool) -> Leg {
        let server = &nodes[node].server;
        let mut conn = server.conn_proto(proto);
        let id = conn.client_id();
        let receiver = redirect.then(|| {
            let mut sub = server.conn_proto(2);
            let sid = sub.client_id(); // before SUBSCRIBE, which allows no CLIENT ID
            sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
            (sub, sid)
        });
        let mut cmd: Vec<String> = ["CLIENT", "TRACKING", "ON"].map(String::from).to_vec();
        if let Some((_, sid)) = &receiver {
            cmd.extend(["REDIRECT".to_string(), sid.to_string()]);
        }
        conn.ok(&cmd);
        Leg {
            name: format!("{name} on node {node}"),
            node,
            conn,
            id,
            receiver: receiver.map(|(c, _)| c),
            bcast: false,
            got: Vec::new(),
        }
    }

    /// Switches tracking on again with `opts` (the REDIRECT, if any, is kept).
    fn retrack(&mut self, opts: &[&str]) {
        let redirect = self.conn.cmd(&["CLIENT", "GETREDIR"]).int().unwrap_or(-1);
        let mut cmd: Vec<String> = ["CLIENT", "TRACKING", "ON"].map(String::from).to_vec();
        cmd.extend(opts.iter().map(|s| s.to_string()));
        if redirect > 0 {
            cmd.extend(["REDIRECT".to_string(), redirect.to_string()]);
        }
        self.conn.ok(&["CLIENT", "TRACKING", "OFF"]);
        self.conn.ok(&cmd);
        self.bcast = opts.iter().any(|o| o.eq_ignore_ascii_case("BCAST"));
    }

    fn collect(&mut self) -> Vec<Message> {
        let mut new = drain(&mut self.conn);
        if let Some(r) = self.receiver.as_mut() {
            assert!(new.is_empty(), "{}: redirects, yet got {new:?}", self.name);
            new = drain(r);
        }
        self.got.extend(new.iter().cloned());
        new
    }
}

/// The module's entry for `leg` on its node, against the connection's own CLIENT TRACKINGINFO
/// and against every message it received there.
fn check_leg(nodes: &[Node], leg: &mut Leg) {
    let server = &nodes[leg.node].server;
    let d = server.describe();
    let mut obs = server.conn_proto(leg.conn.proto);
    assert_client_mirror(
        server,
        &mut leg.conn,
        leg.id,
        &mut obs,
        Expect::for_client(&server.info, true),
    );
    let mut obs2 = server.conn_proto(2);
    let e = pairs(&obs2.cmd(&["TRACKINFO.CLIENT", &leg.id.to_string()]));
    let who = format!("{} (id {}), {d}", leg.name, leg.id);
    let counters = [
        "tracked-keys",
        "tracked-reads",
        "invalidated-keys",
        "flush-invalidations",
        "last-invalidation",
    ];
    if server.info.is_redis70() {
        // No command filter on 7.0: the module cannot attribute reads, so it claims nothing.
        assert_eq!(text_of(&e, "counters"), "approximate", "{who}: {e:?}");
        for c in counters {
            assert_eq!(int_of(&e, c), -1, "{who}: {c} on Redis 7.0: {e:?}");
        }
        return;
    }
    assert_eq!(text_of(&e, "counters"), "exact", "{who}: {e:?}");
    assert_eq!(
        int_of(&e, "invalidated-keys"),
        keys_in(&leg.got).len() as i64,
        "{who}: invalidated-keys vs the keys that arrived {:?}: {e:?}",
        leg.got
    );
    assert_eq!(
        int_of(&e, "flush-invalidations"),
        flushes_in(&leg.got) as i64,
        "{who}: flush-invalidations vs the null messages that arrived: {e:?}"
    );
    if leg.bcast {
        // One prefix: every key that arrived is counted under it.
        let per_prefix: i64 = e
            .get("prefix-stats")
            .and_then(Resp::items)
            .unwrap_or_else(|| panic!("{who}: no prefix-stats: {e:?}"))
            .iter()
            .skip(1)
            .step_by(2)
            .filter_map(Resp::int)
            .sum();
        assert_eq!(
            per_prefix,
            keys_in(&leg.got).len() as i64,
            "{who}: prefix-stats: {e:?}"
        );
        assert_eq!(int_of(&e, "tracked-keys"), 0, "{who}: BCAST: {e:?}");
    }
}

/// TRACKINFO.KEYS for `leg` on its node (`None` on Redis 7.0, where it must refuse): every key
/// in a slot that node serves, and as many as `tracked-keys`.
fn keys_listed(
    nodes: &[Node],
    leg: &Leg,
    owners: &BTreeMap<(i64, i64), i64>,
) -> Option<BTreeSet<String>> {
    let server = &nodes[leg.node].server;
    let mut obs = server.conn_proto(2);
    let r = obs.cmd(&["TRACKINFO.KEYS", &leg.id.to_string(), "COUNT", "0"]);
    assert!(!is_routing_error(&r), "TRACKINFO.KEYS answered {r}");
    if server.info.is_redis70() {
        assert!(r.is_error(), "TRACKINFO.KEYS on Redis 7.0: {r}");
        return None;
    }
    let keys: BTreeSet<String> = r
        .items()
        .unwrap_or_else(|| panic!("TRACKINFO.KEYS: {r}"))
        .iter()
        .filter_map(Resp::text)
        .collect();
    for k in &keys {
        let slot = key_slot(&mut obs, k);
        assert_eq!(
            owner(owners, slot),
            i64::from(server.port),
            "{}: TRACKINFO.KEYS lists {k} (slot {slot}), which another node serves",
            leg.name
        );
    }
    let e = pairs(&obs.cmd(&["TRACKINFO.CLIENT", &leg.id.to_string()]));
    assert_eq!(
        int_of(&e, "tracked-keys"),
        keys.len() as i64,
        "{}: tracked-keys vs TRACKINFO.KEYS {keys:?}",
        leg.name
    );
    let stats = pairs(&obs.cmd(&["TRACKINFO.STATS"]));
    assert_eq!(
        (int_of(&stats, "keys"), int_of(&stats, "items")),
        (
            info_int(&mut obs, "stats", "tracking_total_keys"),
            info_int(&mut obs, "stats", "tracking_total_items")
        ),
        "{}: the module's table vs the server's totals: {stats:?}",
        server.describe()
    );
    Some(keys)
}

/// Each node's TRACKINFO.CLIENTS lists exactly the tracking connections CLIENT LIST shows
/// there, which are the legs on that node.
fn check_listings(nodes: &[Node], legs: &[&Leg]) {
    for (i, node) in nodes.iter().enumerate() {
        let mut obs = node.server.conn_proto(2);
        let ours: BTreeSet<i64> = legs.iter().filter(|l| l.node == i).map(|l| l.id).collect();
        let listed = tracking_ids_listed(&mut obs);
        assert_eq!(listed, ours, "CLIENT LIST on {}", node.server.describe());
        assert_eq!(
            module_clients(&mut obs),
            ours,
            "TRACKINFO.CLIENTS on node {i}, {}",
            node.server.describe()
        );
    }
}

fn cluster_run(bin: &std::path::Path) {
    let nodes = start_cluster(bin);
    let mut c0 = nodes[0].server.conn();
    let owners = slot_owners(&mut c0);
    let tags: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| tags_on(&mut c0, &owners, n.server.port, 2))
        .collect();
    let key = |node: usize, name: &str| format!("{}:{name}", tags[node][0]);
    let other_slot = |node: usize, name: &str| format!("{}:{name}", tags[node][1]);
    let mut writers: Vec<Conn> = nodes.iter().map(|n| n.server.conn()).collect();
    for (i, w) in writers.iter_mut().enumerate() {
        for name in ["x", "y", "z"] {
            w.ok(&["SET", &key(i, name), "v0"]);
        }
    }

    // Logical client L: RESP3, on nodes 0 and 1. Logical client M: RESP2 redirecting, OPTIN on
    // node 1 and BCAST on node 2.
    let mut l0 = Leg::new(&nodes, "L", 0, 3, false);
    let mut l1 = Leg::new(&nodes, "L", 1, 3, false);
    let mut m1 = Leg::new(&nodes, "M", 1, 2, true);
    let mut m2 = Leg::new(&nodes, "M", 2, 2, true);
    m1.retrack(&["OPTIN"]);
    let bcast_prefix = tags[2][0].clone();
    m2.retrack(&["BCAST", "PREFIX", &bcast_prefix]);

    l0.conn.cmd(&["GET", &key(0, "x")]);
    l0.conn.cmd(&["MGET", &key(0, "y"), &key(0, "z")]);
    l1.conn.cmd(&["GET", &key(1, "x")]);
    l1.conn.cmd(&["EXISTS", &key(1, "missing")]);
    m1.conn.ok(&["CLIENT", "CACHING", "YES"]);
    m1.conn.cmd(&["GET", &key(1, "y")]);
    m1.conn.cmd(&["GET", &key(1, "z")]); // OPTIN without CACHING yes: not tracked

    // Reads the server refuses before running them: a key another node serves (MOVED), and
    // keys of two slots (CROSSSLOT). The server remembers nothing for them.
    let refused = [
        (&mut l0, vec!["GET".to_string(), key(1, "x")]),
        (
            &mut l1,
            vec!["MGET".to_string(), key(1, "y"), other_slot(1, "y")],
        ),
    ];
    for (leg, cmd) in refused {
        let r = leg.conn.cmd(&cmd);
        assert!(is_routing_error(&r), "{cmd:?} on {}: {r}", leg.name);
    }
    // A script's reads count for its caller (Redis 7.2+): one of a local key, and one the
    // server refuses inside the script (a key another node serves).
    let script = "return redis.call('get', KEYS[1])";
    let r = l0.conn.cmd(&["EVAL", script, "1", &key(0, "w")]);
    assert!(!r.is_error(), "a script reading a local key: {r}");
    let foreign = format!("return redis.call('get', '{}')", key(1, "z"));
    let r = l0.conn.cmd(&["EVAL", &foreign, "0"]);
    assert!(
        r.is_error(),
        "a script reading a key of node 1 on node 0: {r}"
    );

    // The TRACKINFO commands name no keys: every node answers them itself.
    for (i, node) in nodes.iter().enumerate() {
        let mut c = node.server.conn_proto(2);
        let id = c.client_id().to_string();
        for cmd in [
            vec!["TRACKINFO.GET"],
            vec!["TRACKINFO.CLIENT", &id],
            vec!["TRACKINFO.CLIENTS"],
            vec!["TRACKINFO.STATS"],
        ] {
            let r = c.cmd(&cmd);
            assert!(!r.is_error(), "{cmd:?} on node {i}: {r}");
        }
        let r = c.cmd(&["TRACKINFO.KEYS", &id]);
        assert!(!is_routing_error(&r), "TRACKINFO.KEYS on node {i}: {r}");
        assert_eq!(
            r.is_error(),
            node.server.info.is_redis70(),
            "TRACKINFO.KEYS on node {i}: {r}"
        );
        let info = c.cmd(&["INFO", "trackinfo"]).text().unwrap_or_default();
        assert!(
            field_of(&info, "trackinfo_tracking_clients").is_some(),
            "INFO trackinfo on node {i}: {info}"
        );
    }

    check_listings(&nodes, &[&l0, &l1, &m1, &m2]);
    let before: Vec<Option<BTreeSet<String>>> = [&l0, &l1, &m1, &m2]
        .iter()
        .map(|l| keys_listed(&nodes, l, &owners))
        .collect();

    // Every key is written on the node that serves it.
    for (i, w) in writers.iter_mut().enumerate() {
        for name in ["x", "y", "z", "w", "missing"] {
            w.ok(&["SET", &key(i, name), "v1"]);
        }
        w.ok(&["SET", &other_slot(i, "y"), "v1"]);
    }
    let mut legs = [l0, l1, m1, m2];
    for (leg, listed) in legs.iter_mut().zip(&before) {
        let new = leg.collect();
        let arrived: BTreeSet<String> = keys_in(&new).into_iter().collect();
        let d = nodes[leg.node].server.describe();
        assert!(!arrived.is_empty(), "{}: nothing arrived on {d}", leg.name);
        if let (Some(listed), false) = (listed, leg.bcast) {
            assert_eq!(
                &arrived, listed,
                "{} on {d}: the keys invalidated after every key was written, vs TRACKINFO.KEYS just before",
                leg.name
            );
        }
        println!(
            "  {}: {} messages, {} keys arrived",
            leg.name,
            new.len(),
            arrived.len()
        );
        check_leg(&nodes, leg);
    }

    // A flush on node 2 reaches node 2's connections only.
    writers[2].ok(&["FLUSHALL"]);
    for leg in legs.iter_mut() {
        let new = leg.collect();
        let want = usize::from(leg.node == 2);
        assert_eq!(
            (flushes_in(&new), keys_in(&new).len()),
            (want, 0),
            "{} after FLUSHALL on node 2: {new:?}",
            leg.name
        );
        check_leg(&nodes, leg);
    }
    let refs: Vec<&Leg> = legs.iter().collect();
    check_listings(&nodes, &refs);
}

#[test]
fn each_cluster_node_reports_its_own_connections_and_keys() {
    for bin in servers() {
        cluster_run(&bin);
    }
}
