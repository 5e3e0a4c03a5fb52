//! A replica with the module loaded: clients connected to the replica track keys, every write
//! reaches it through replication (the primary-link client), and the module's counters on the
//! replica must equal the invalidation messages those clients really receive.
//!
//! One primary and one replica per server binary, both with the module. On the replica, six
//! clients track: RESP3 default (its own pushes), RESP2 default redirecting to a subscribed
//! RESP2 connection, RESP3 OPTIN reading with and without `CLIENT CACHING yes`, RESP3 default
//! with NOLOOP (the primary link's writes are not its own), RESP2 BCAST with two prefixes
//! redirecting to a RESP3 connection, and RESP3 BCAST NOLOOP. A client on the primary tracks
//! too. Writes go to the primary only: SET, DEL, EXPIRE (later and now), MULTI/EXEC, a Lua
//! script, a key that expires on the primary (its DEL is replicated), FLUSHALL, and finally a
//! full resync (it empties the replica's data: a null invalidation, as for FLUSHALL).
//! After each phase the replica has caught up (its offset equals the primary's), every receiver
//! is drained (PING, then read until the PONG) and each client's `TRACKINFO.CLIENT` is compared
//! with what arrived, `TRACKINFO.KEYS` with the keys the writes then invalidated, and
//! `TRACKINFO.CLIENTS` with the server's own CLIENT LIST.
//!
//! On Redis 7.0 the module has no command filter (no client ids): it must still list exactly
//! the replica's tracking clients, with fidelity partial and counters approximate and -1; the
//! messages are still read, to prove the clients were really tracking.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use common::mirror::{assert_client_mirror, Expect};
use common::{module_path, servers, Conn, Resp, Server};

const SYNC_DEADLINE: Duration = Duration::from_secs(30);
const CHANNEL: &[u8] = b"__redis__:invalidate";

/// Polls `f` until it answers `Some`, or fails with `what` after `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// One field of an INFO section.
fn info_field(conn: &mut Conn, section: &str, name: &str) -> Option<String> {
    let text = conn.cmd(&["INFO", section]).text()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
}

fn info_int(conn: &mut Conn, section: &str, name: &str) -> i64 {
    info_field(conn, section, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no integer {name}"))
}

/// Waits until the replica's link is up and it has processed everything the primary has sent
/// it so far (its `master_repl_offset` equals the primary's).
fn wait_caught_up(primary: &mut Conn, replica: &mut Conn) {
    let target = info_int(primary, "replication", "master_repl_offset");
    wait_for(SYNC_DEADLINE, "the replica catching up", || {
        let up = info_field(replica, "replication", "master_link_status");
        let offset = info_field(replica, "replication", "master_repl_offset")
            .and_then(|v| v.parse::<i64>().ok());
        (up.as_deref() == Some("up") && offset.is_some_and(|o| o >= target)).then_some(())
    });
}

/// One invalidation message: the keys it names, or `None` for a flush ("invalidate everything").
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

/// The invalidation carried by a frame: a RESP3 push `invalidate`, or a RESP2 Pub/Sub message
/// on `__redis__:invalidate`.
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

/// Every invalidation message that reached `c`: those set aside while it waited for replies,
/// then everything queued before the PONG of a new PING (the server answers in order).
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

/// `TRACKINFO.CLIENT <id>` over RESP2, as name -> value.
fn module_entry(obs: &mut Conn, id: i64) -> BTreeMap<String, Resp> {
    let r = obs.cmd(&["TRACKINFO.CLIENT", &id.to_string()]);
    let items = r
        .items()
        .unwrap_or_else(|| panic!("TRACKINFO.CLIENT {id} answered {r}"));
    items
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

/// `prefix-stats` (a flat prefix/count array in RESP2), entries with 0 left out.
fn prefix_stats(e: &BTreeMap<String, Resp>) -> BTreeMap<String, i64> {
    let flat = e
        .get("prefix-stats")
        .and_then(Resp::items)
        .unwrap_or_else(|| panic!("no prefix-stats in {e:?}"));
    flat.chunks(2)
        .filter_map(|kv| Some((kv[0].text()?, kv[1].int()?)))
        .filter(|(_, n)| *n != 0)
        .collect()
}

/// The ids CLIENT LIST shows with the `t` flag (tracking on), or of one TYPE.
fn listed_ids(conn: &mut Conn, args: &[&str], tracking_only: bool) -> BTreeSet<i64> {
    let mut cmd = vec!["CLIENT", "LIST"];
    cmd.extend_from_slice(args);
    let text = conn.cmd(&cmd).text().unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            };
            let id = field("id")?.parse().ok()?;
            let tracks = field("flags").is_some_and(|f| f.contains('t'));
            (!tracking_only || tracks).then_some(id)
        })
        .collect()
}

/// The ids TRACKINFO.CLIENTS lists.
fn module_clients(obs: &mut Conn) -> BTreeSet<i64> {
    let r = obs.cmd(&["TRACKINFO.CLIENTS"]);
    r.items()
        .unwrap_or_else(|| panic!("TRACKINFO.CLIENTS answered {r}"))
        .iter()
        .map(|entry| {
            let items = entry.items().unwrap_or_else(|| panic!("entry {entry}"));
            items
                .chunks(2)
                .find(|kv| kv[0].text().as_deref() == Some("id"))
                .and_then(|kv| kv[1].int())
                .unwrap_or_else(|| panic!("no id in {entry}"))
        })
        .collect()
}

/// TRACKINFO.KEYS <id> COUNT 0 as a set.
fn module_keys(obs: &mut Conn, id: i64) -> Result<BTreeSet<String>, Resp> {
    let r = obs.cmd(&["TRACKINFO.KEYS", &id.to_string(), "COUNT", "0"]);
    match r.items() {
        Some(items) if r.marker() == '*' => Ok(items.iter().filter_map(Resp::text).collect()),
        _ => Err(r),
    }
}

/// A tracking client and where its messages arrive.
struct Tracker {
    name: &'static str,
    conn: Conn,
    id: i64,
    /// The redirect target and its id; `None`: the messages arrive on `conn` itself.
    receiver: Option<(Conn, i64)>,
    /// BCAST prefixes (empty: not BCAST).
    prefixes: Vec<&'static str>,
    expect_delivery: &'static str,
    /// Every message received since tracking was switched on.
    got: Vec<Message>,
}

impl Tracker {
    fn new(
        server: &Server,
        name: &'static str,
        proto: u8,
        receiver: Option<(Conn, i64)>,
    ) -> Tracker {
        let mut conn = server.conn_proto(proto);
        let id = conn.client_id();
        let expect_delivery = if receiver.is_some() {
            "redirect"
        } else {
            "self"
        };
        Tracker {
            name,
            conn,
            id,
            receiver,
            prefixes: Vec::new(),
            expect_delivery,
            got: Vec::new(),
        }
    }

    /// Switches tracking on with `opts`, plus REDIRECT to the receiver if there is one.
    fn track(&mut self, opts: &[&'static str]) {
        let mut cmd: Vec<String> = ["CLIENT", "TRACKING", "ON"].map(String::from).to_vec();
        cmd.extend(opts.iter().map(|s| s.to_string()));
        if let Some((_, rid)) = &self.receiver {
            cmd.push("REDIRECT".into());
            cmd.push(rid.to_string());
        }
        self.conn.ok(&cmd);
        let mut it = opts.iter();
        while let Some(o) = it.next() {
            if o.eq_ignore_ascii_case("PREFIX") {
                self.prefixes.extend(it.next());
            }
        }
    }

    fn collect(&mut self) -> Vec<Message> {
        // Messages for the client itself can arrive while it waits for a reply.
        let mut new = drain(&mut self.conn);
        if let Some((r, _)) = self.receiver.as_mut() {
            assert!(
                new.is_empty(),
                "{}: redirects, yet messages came to itself",
                self.name
            );
            new = drain(r);
        }
        self.got.extend(new.iter().cloned());
        new
    }
}

/// Keys named in `msgs` (flushes left out), with repeats.
fn keys_in(msgs: &[Message]) -> Vec<String> {
    msgs.iter().flatten().flatten().cloned().collect()
}

fn flushes_in(msgs: &[Message]) -> usize {
    msgs.iter().filter(|m| m.is_none()).count()
}

/// Compares what the module says about each tracker with what it received, and its flags
/// with the client's own CLIENT TRACKINGINFO.
fn check_trackers(server: &Server, trackers: &mut [Tracker], obs2: &mut Conn, obs3: &mut Conn) {
    let d = server.describe();
    for t in trackers.iter_mut() {
        let obs = if t.conn.proto == 3 {
            &mut *obs3
        } else {
            &mut *obs2
        };
        let expect = Expect::for_client(&server.info, true);
        assert_client_mirror(server, &mut t.conn, t.id, obs, expect);
        let e = module_entry(obs2, t.id);
        let who = format!("{} (id {}) on {d}", t.name, t.id);
        assert_eq!(text_of(&e, "delivery"), t.expect_delivery, "{who}: {e:?}");
        assert_eq!(int_of(&e, "resp"), i64::from(t.conn.proto), "{who}");
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
            continue;
        }
        assert_eq!(
            text_of(&e, "counters"),
            "exact",
            "{who}: replicated writes are plain writes: {e:?}"
        );
        let keys = keys_in(&t.got);
        assert_eq!(
            int_of(&e, "invalidated-keys"),
            keys.len() as i64,
            "{who}: invalidated-keys vs the keys that arrived {keys:?}: {e:?}"
        );
        assert_eq!(
            int_of(&e, "flush-invalidations"),
            flushes_in(&t.got) as i64,
            "{who}: flush-invalidations vs the null messages that arrived: {e:?}"
        );
        assert_eq!(
            int_of(&e, "last-invalidation") == -1,
            t.got.is_empty(),
            "{who}: last-invalidation: {e:?}"
        );
        if !t.prefixes.is_empty() {
            let mut per_prefix: BTreeMap<String, i64> = BTreeMap::new();
            for k in &keys {
                let p = t
                    .prefixes
                    .iter()
                    .find(|p| k.starts_with(*p))
                    .unwrap_or_else(|| panic!("{who}: key {k} under none of its prefixes"));
                *per_prefix.entry(p.to_string()).or_default() += 1;
            }
            assert_eq!(prefix_stats(&e), per_prefix, "{who}: prefix-stats: {e:?}");
            assert_eq!(int_of(&e, "tracked-keys"), 0, "{who}: BCAST: {e:?}");
        }
    }
}

/// The tracking clients on `server` are the module's TRACKINFO.CLIENTS, exactly as CLIENT LIST
/// shows them; the replication link (`link_type`: the primary link on the replica, the
/// replica's connection on the primary) is not among them, and its own entry says off.
fn check_listing(server: &Server, obs: &mut Conn, expected: &BTreeSet<i64>, link_type: &str) {
    let d = server.describe();
    let server_says = listed_ids(obs, &[], true);
    assert_eq!(&server_says, expected, "CLIENT LIST t flags on {d}");
    assert_eq!(
        &module_clients(obs),
        expected,
        "TRACKINFO.CLIENTS on {d} (CLIENT LIST says {server_says:?})"
    );
    let links = listed_ids(obs, &["TYPE", link_type], false);
    assert_eq!(links.len(), 1, "one {link_type} link on {d}: {links:?}");
    for link in links {
        assert!(!expected.contains(&link), "the {link_type} link tracks?");
        let e = module_entry(obs, link);
        let flags = e.get("flags").and_then(Resp::items).map(|f| f.to_vec());
        assert_eq!(
            flags,
            Some(vec![Resp::Bulk(b"off".to_vec())]),
            "the {link_type} link {link} on {d}: {e:?}"
        );
        assert_eq!(text_of(&e, "fidelity"), "exact", "{e:?}");
    }
    let stats = obs.cmd(&["TRACKINFO.STATS"]);
    let stats: BTreeMap<String, Resp> = stats
        .items()
        .unwrap_or_else(|| panic!("TRACKINFO.STATS: {stats}"))
        .chunks(2)
        .map(|kv| (kv[0].text().unwrap_or_default(), kv[1].clone()))
        .collect();
    assert_eq!(
        int_of(&stats, "tracking-clients"),
        expected.len() as i64,
        "TRACKINFO.STATS on {d}: {stats:?}"
    );
    assert_eq!(
        int_of(&stats, "server-tracking-clients"),
        expected.len() as i64,
        "{stats:?}"
    );
    if !server.info.is_redis70() {
        let server_items = info_int(obs, "stats", "tracking_total_items");
        let server_keys = info_int(obs, "stats", "tracking_total_keys");
        assert_eq!(
            (int_of(&stats, "keys"), int_of(&stats, "items")),
            (server_keys, server_items),
            "the module's table vs the server's tracking_total_keys/items on {d}"
        );
    }
}

/// The keys TRACKINFO.KEYS lists now for each non-BCAST tracker (`None` on Redis 7.0, where it
/// must refuse), checked against `tracked-keys`.
fn listed_keys(
    server: &Server,
    trackers: &[Tracker],
    obs: &mut Conn,
) -> Vec<Option<BTreeSet<String>>> {
    trackers
        .iter()
        .map(|t| {
            let listed = module_keys(obs, t.id);
            if server.info.is_redis70() {
                assert!(listed.is_err(), "TRACKINFO.KEYS on Redis 7.0: {listed:?}");
                return None;
            }
            let listed = listed.unwrap_or_else(|r| panic!("TRACKINFO.KEYS {}: {r}", t.id));
            let e = module_entry(obs, t.id);
            assert_eq!(
                int_of(&e, "tracked-keys"),
                listed.len() as i64,
                "{}: tracked-keys vs TRACKINFO.KEYS {listed:?} on {}",
                t.name,
                server.describe()
            );
            Some(listed)
        })
        .collect()
}

/// Runs `cmd` on the primary, which must not answer an error.
fn write(primary: &mut Conn, cmd: &[&str]) -> Resp {
    let r = primary.cmd(cmd);
    assert!(!r.is_error(), "{cmd:?} on the primary answered {r}");
    r
}

const SCRIPT: &str = "redis.call('set', KEYS[1], 'lua') redis.call('del', KEYS[2]) return 1";

fn replica_run(bin: &std::path::Path) {
    let module = module_path();
    // No delay before a diskless full sync: the replica is in sync within a second.
    let primary = Server::start_with(bin, Some(&module), &["--repl-diskless-sync-delay", "0"]);
    let port = primary.port.to_string();
    let replica = Server::start_with(bin, Some(&module), &["--replicaof", "127.0.0.1", &port]);
    let d = replica.describe();
    let mut p = primary.conn_proto(2);
    let mut r = replica.conn_proto(2);
    let mut r3 = replica.conn_proto(3);

    let all = [
        "r:a1", "r:a2", "r:a3", "r:b1", "r:b2", "r:c1", "r:c2", "r:c3", "r:f1", "r:shared",
    ];
    for k in all {
        write(&mut p, &["SET", k, "v0"]);
    }
    wait_caught_up(&mut p, &mut r);
    let got = r.cmd(&["GET", "r:shared"]);
    assert_eq!(got, Resp::Bulk(b"v0".to_vec()), "replicated value on {d}");

    // The tracking clients on the replica.
    let mut a = Tracker::new(&replica, "RESP3 default", 3, None);
    a.track(&[]);
    let mut sub = replica.conn_proto(2);
    let sub_id = sub.client_id(); // before SUBSCRIBE, which allows no CLIENT ID
    sub.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    let mut b = Tracker::new(
        &replica,
        "RESP2 default redirecting",
        2,
        Some((sub, sub_id)),
    );
    b.track(&[]);
    let mut c = Tracker::new(&replica, "RESP3 optin", 3, None);
    c.track(&["OPTIN"]);
    let mut f = Tracker::new(&replica, "RESP3 default noloop", 3, None);
    f.track(&["NOLOOP"]);
    let mut target = replica.conn_proto(3);
    let target_id = target.client_id();
    let mut bc = Tracker::new(
        &replica,
        "RESP2 bcast redirecting",
        2,
        Some((target, target_id)),
    );
    bc.track(&["BCAST", "PREFIX", "r:b", "PREFIX", "r:c"]);
    let mut bn = Tracker::new(&replica, "RESP3 bcast noloop", 3, None);
    bn.track(&["BCAST", "PREFIX", "r:a", "NOLOOP"]);

    // A tracking client on the primary: the replica must not list it, nor the primary the
    // replica's clients.
    let mut on_primary = Tracker::new(&primary, "RESP3 default on the primary", 3, None);
    on_primary.track(&[]);
    on_primary.conn.cmd(&["GET", "r:a1"]);

    // Reads on the replica. Each key is read once per client, so that every read is remembered
    // once and invalidated once.
    a.conn.cmd(&["GET", "r:a1"]);
    a.conn.cmd(&["GET", "r:a2"]);
    a.conn.cmd(&["MGET", "r:a3", "r:shared"]);
    b.conn.cmd(&["GET", "r:b1"]);
    b.conn.cmd(&["MGET", "r:b2", "r:shared"]);
    b.conn.cmd(&["EXISTS", "r:b3"]); // a missing key is tracked too
    c.conn.ok(&["CLIENT", "CACHING", "YES"]);
    c.conn.cmd(&["GET", "r:c1"]);
    c.conn.cmd(&["GET", "r:c2"]); // OPTIN without CACHING yes: not tracked
    c.conn.ok(&["CLIENT", "CACHING", "YES"]);
    c.conn.cmd(&["MGET", "r:c3", "r:shared"]);
    f.conn.cmd(&["GET", "r:f1"]);
    f.conn.cmd(&["GET", "r:shared"]);

    let mut trackers = vec![a, b, c, f, bc, bn];
    let ids: BTreeSet<i64> = trackers.iter().map(|t| t.id).collect();
    check_listing(&replica, &mut r, &ids, "master");
    check_listing(
        &primary,
        &mut p,
        &BTreeSet::from([on_primary.id]),
        "replica",
    );
    let before = listed_keys(&replica, &trackers, &mut r);

    // Writes on the primary, in every shape replication carries them.
    write(&mut p, &["SET", "r:a1", "v1"]);
    write(&mut p, &["DEL", "r:a2", "r:b1"]);
    write(&mut p, &["EXPIRE", "r:a3", "1000"]);
    write(&mut p, &["EXPIRE", "r:c1", "0"]); // deleted at once: replicated as DEL
    write(&mut p, &["MULTI"]);
    write(&mut p, &["SET", "r:b2", "multi"]);
    write(&mut p, &["DEL", "r:c2"]);
    write(&mut p, &["EXEC"]);
    write(&mut p, &["EVAL", SCRIPT, "2", "r:b3", "r:c3"]); // creates r:b3, deletes r:c3
    write(&mut p, &["PEXPIRE", "r:f1", "1"]);
    // Expired on the primary: EXISTS deletes it there and replicates a DEL.
    wait_for(SYNC_DEADLINE, "r:f1 expiring on the primary", || {
        (p.cmd(&["EXISTS", "r:f1"]) == Resp::Int(0)).then_some(())
    });
    write(&mut p, &["SET", "r:shared", "v1"]);
    write(&mut p, &["SET", "r:z", "untracked"]);
    wait_caught_up(&mut p, &mut r);

    for (t, listed) in trackers.iter_mut().zip(&before) {
        let new = t.collect();
        assert!(
            !new.is_empty(),
            "{}: no invalidation reached it on {d}, though every key it tracks was written",
            t.name
        );
        assert_eq!(flushes_in(&new), 0, "{}: a flush before FLUSHALL?", t.name);
        if let Some(listed) = listed {
            if t.prefixes.is_empty() {
                let arrived: BTreeSet<String> = keys_in(&new).into_iter().collect();
                assert_eq!(
                    &arrived,
                    listed,
                    "{} on {d}: the keys invalidated after every tracked key was written, vs TRACKINFO.KEYS just before",
                    t.name
                );
                // Each key was read once and written once: every remembered read came back.
                let e = module_entry(&mut r, t.id);
                assert_eq!(
                    int_of(&e, "tracked-reads"),
                    arrived.len() as i64,
                    "{} on {d}: tracked-reads vs the keys it read that came back: {e:?}",
                    t.name
                );
            }
        }
        println!(
            "  {}: {} messages, {} keys arrived",
            t.name,
            new.len(),
            keys_in(&new).len()
        );
    }
    let primary_new = on_primary.collect();
    assert_eq!(
        keys_in(&primary_new),
        ["r:a1"],
        "the primary's own tracking client on {d}"
    );
    check_trackers(&replica, &mut trackers, &mut r, &mut r3);
    {
        let mut p3 = primary.conn_proto(3);
        check_trackers(
            &primary,
            std::slice::from_mut(&mut on_primary),
            &mut p,
            &mut p3,
        );
    }
    check_listing(&replica, &mut r, &ids, "master");

    // Read again, then flush everything on the primary: one null message for every tracking
    // client on the replica, BCAST and NOLOOP included.
    trackers[0].conn.cmd(&["GET", "r:a1"]);
    trackers[1].conn.cmd(&["GET", "r:shared"]);
    trackers[3].conn.cmd(&["MGET", "r:a1", "r:shared"]);
    check_listing(&replica, &mut r, &ids, "master");
    listed_keys(&replica, &trackers, &mut r);
    write(&mut p, &["FLUSHALL"]);
    wait_caught_up(&mut p, &mut r);
    for t in trackers.iter_mut() {
        let new = t.collect();
        assert_eq!(
            (flushes_in(&new), keys_in(&new).len()),
            (1, 0),
            "{}: after FLUSHALL on the primary, on {d}: {new:?}",
            t.name
        );
    }
    check_trackers(&replica, &mut trackers, &mut r, &mut r3);
    check_listing(&replica, &mut r, &ids, "master");
    for keys in listed_keys(&replica, &trackers, &mut r)
        .into_iter()
        .flatten()
    {
        assert!(keys.is_empty(), "keys left after FLUSHALL on {d}: {keys:?}");
    }

    // A full resync empties the replica's data, and the server sends every tracking client a
    // null invalidation (replication.c emptyData -> signalFlushedDb), as for FLUSHALL. Forced
    // by writing to the replica while it is detached: its offset then runs ahead of the
    // primary's, which refuses a partial resync.
    write(&mut p, &["SET", "r:a1", "v2"]);
    wait_caught_up(&mut p, &mut r);
    for t in trackers.iter_mut() {
        t.collect(); // the BCAST client on r:a hears of r:a1; counted in the checks below
    }
    trackers[0].conn.cmd(&["GET", "r:a1"]);
    r.ok(&["REPLICAOF", "NO", "ONE"]);
    r.ok(&["SET", "r:local", "written while detached"]);
    r.ok(&["REPLICAOF", "127.0.0.1", &port]);
    wait_for(SYNC_DEADLINE, "a full resync", || {
        let gone = r.cmd(&["EXISTS", "r:local"]) == Resp::Int(0);
        let up = info_field(&mut r, "replication", "master_link_status");
        (gone && up.as_deref() == Some("up")).then_some(())
    });
    wait_caught_up(&mut p, &mut r);
    for t in trackers.iter_mut() {
        let new = t.collect();
        assert_eq!(
            (flushes_in(&new), keys_in(&new).len()),
            (1, 0),
            "{}: after a full resync, on {d}: {new:?}",
            t.name
        );
    }
    check_trackers(&replica, &mut trackers, &mut r, &mut r3);
    check_listing(&replica, &mut r, &ids, "master");
}

#[test]
fn replicated_writes_are_counted_as_the_invalidations_replica_clients_receive() {
    for bin in servers() {
        replica_run(&bin);
    }
}
