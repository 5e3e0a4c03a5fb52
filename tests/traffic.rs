//! Traffic as caches really see it, with no model of the server: whenever a tracker's counters
//! say `exact`, they must equal the invalidations its connection received, and the module's
//! table must hold as many items as the server's (issue 12). At least 99% of the checks must
//! find the counters exact on Redis 7.2+ and Valkey.
//!
//! - Keys with a TTL expire while trackers read them: lazily (inside the tracker's own read,
//!   inside another client's command) and actively (the server's cron and before-sleep cycles),
//!   on a server that is also full and evicts under `maxmemory`. Active expiry stays on and
//!   nothing waits for a deadline, so an expiry lands anywhere around a read.
//! - A replica whose trackers read keys with a TTL set on its primary is promoted (`REPLICAOF NO
//!   ONE`), and from then on expires them itself, actively and lazily.
//! - PFCOUNT stores the cardinality it computed back into the key when the cached one is stale:
//!   the server invalidates the key for its trackers, with no keyspace event.
//!
//! - Reads over every data type (strings, bitmaps, lists, hashes, sets, sorted sets,
//!   HyperLogLogs, streams, geo) while 38 kinds of writes (PFCOUNT's hidden one, Valkey's quiet
//!   no-op LTRIM, expiring SETs, COPY, RENAME, SORT STORE ...) change them, on a full server.
//!
//! Each tracker asks for its own entry with TRACKINFO.GET on its own connection: the server
//! writes every invalidation sent before that command ahead of its reply, so what arrived up to
//! the reply is exactly what the counters can have seen.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use common::fuzz::{seed, steps, Rng};
use common::{for_each_server, info_int, int_of, trackinfo_stats, Conn, Resp, Server};

const KEYS: usize = 20;
/// At least this share of checks must find the counters exact on Redis 7.2+ and Valkey.
const MIN_EXACT_SHARE: f64 = 0.99;

struct Tracker {
    conn: Conn,
    noloop: bool,
    /// Keys named in invalidation messages received so far.
    arrived: u64,
}

impl Tracker {
    fn open(server: &Server, noloop: bool) -> Tracker {
        let mut conn = server.conn_proto(3);
        let mut on = vec!["CLIENT", "TRACKING", "ON"];
        if noloop {
            on.push("NOLOOP");
        }
        conn.ok(&on);
        Tracker {
            conn,
            noloop,
            arrived: 0,
        }
    }

    /// Counts the keys of the invalidation messages read so far.
    fn take_pushes(&mut self) {
        for p in std::mem::take(&mut self.conn.pushes) {
            let Resp::Push(items) = p else { continue };
            if items.first().and_then(Resp::text).as_deref() != Some("invalidate") {
                continue;
            }
            if let Some(keys) = items.get(1).and_then(Resp::items) {
                self.arrived += keys.len() as u64;
            }
        }
    }

    /// `(exact, invalidated-keys)` from its own TRACKINFO.GET, with every message sent before it.
    fn check(&mut self) -> (bool, i64) {
        let r = self.conn.cmd(&["TRACKINFO.GET"]);
        self.take_pushes();
        let field = |name: &str| match &r {
            Resp::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.text().as_deref() == Some(name))
                .map(|(_, v)| v.clone()),
            _ => None,
        };
        let counters = field("counters").and_then(|v| v.text());
        let invalidated = field("invalidated-keys").and_then(|v| v.int());
        match (counters.as_deref(), invalidated) {
            (Some(c), Some(n)) => (c == "exact", n),
            _ => panic!("TRACKINFO.GET answered {r}"),
        }
    }
}

/// A run of random traffic and its checks.
struct Run<'s> {
    server: &'s Server,
    d: String,
    seed: u64,
    rng: Rng,
    /// Writes (to this server, or to its primary).
    writer: Conn,
    /// Asks this server's module for its totals.
    obs: Conn,
    trackers: Vec<Tracker>,
    exact: usize,
    checks: usize,
    /// The last steps, for a failure report.
    history: VecDeque<String>,
}

impl<'s> Run<'s> {
    /// A writer and three trackers (the second with NOLOOP); `None` on Redis 7.0, where the
    /// module cannot tell who sends a command, so nothing is exact.
    fn start(server: &'s Server) -> Option<Run<'s>> {
        if server.info.is_redis70() {
            return None;
        }
        let seed = seed();
        // The module says why counters go approximate at verbose level (in a failure's log tail).
        server.conn().ok(&["CONFIG", "SET", "loglevel", "verbose"]);
        Some(Run {
            server,
            d: server.describe(),
            seed,
            rng: Rng(seed),
            writer: server.conn_proto(2),
            obs: server.conn_proto(2),
            trackers: vec![
                Tracker::open(server, false),
                Tracker::open(server, true),
                Tracker::open(server, false),
            ],
            exact: 0,
            checks: 0,
            history: VecDeque::new(),
        })
    }

    fn note(&mut self, step: usize, what: String) {
        self.history.push_back(format!("{step}: {what}"));
        if self.history.len() > 40 {
            self.history.pop_front();
        }
    }

    /// Every tracker's counters against what arrived, and the table against the server's.
    fn check(&mut self, step: usize) {
        let (seed, d) = (self.seed, &self.d);
        for (i, t) in self.trackers.iter_mut().enumerate() {
            let (is_exact, counted) = t.check();
            self.checks += 1;
            if !is_exact {
                continue;
            }
            self.exact += 1;
            assert_eq!(
                counted,
                t.arrived as i64,
                "tracker {i} (noloop {}) says exact with {counted} invalidated keys, its \
                 connection received {} (step {step}, seed {seed}) on {d}\n{}\n{}",
                t.noloop,
                t.arrived,
                self.history.iter().cloned().collect::<Vec<_>>().join("\n"),
                self.server.log_tail(20)
            );
        }
        // The module's table against the server's totals, in one reply.
        let stats = trackinfo_stats(&mut self.obs);
        if stats.get("counters").and_then(Resp::text).as_deref() == Some("exact") {
            assert_eq!(
                int_of(&stats, "items"),
                int_of(&stats, "server-tracking-total-items"),
                "the table's items against the server's (step {step}, seed {seed}) on {d}"
            );
        }
    }

    /// After a step of TTL traffic: now and then a pause for TTLs to run out (the cron's and
    /// before-sleep's cycles find some), a check every 50 steps, and before the last check a
    /// pause every TTL outlasts (the cron expires what nobody touches).
    fn end_step(&mut self, step: usize, n: usize) {
        if self.rng.chance(10) {
            std::thread::sleep(Duration::from_millis(self.rng.below(4) as u64));
        }
        if step == n {
            std::thread::sleep(Duration::from_millis(300));
        }
        if step.is_multiple_of(50) || step == n {
            self.check(step);
        }
    }

    /// The share of exact checks, which must be at least MIN_EXACT_SHARE.
    fn finish(&self, what: &str) {
        let share = self.exact as f64 / self.checks as f64;
        let mut causes: Vec<String> = self
            .server
            .log_tail(100_000)
            .lines()
            .filter_map(|l| l.split_once("counters approximate from now on: "))
            .map(|(_, why)| why.to_string())
            .collect();
        causes.sort();
        causes.dedup();
        if !causes.is_empty() {
            println!("{}: why counters went approximate: {causes:?}", self.d);
        }
        println!(
            "{}: {what}: seed {}, {} checks, {} exact ({:.1}%)",
            self.d,
            self.seed,
            self.checks,
            self.exact,
            100.0 * share
        );
        assert!(
            share >= MIN_EXACT_SHARE,
            "only {} of {} checks found the counters exact on {} (seed {}); at least {:.0}% \
             must\n{}",
            self.exact,
            self.checks,
            self.d,
            self.seed,
            100.0 * MIN_EXACT_SHARE,
            self.server.log_tail(30)
        );
    }
}

/// Runs `f` on a fresh server of each kind where the module can be exact (not Redis 7.0).
fn for_each_run(mut f: impl FnMut(&mut Run)) {
    for_each_server(|server| {
        if let Some(mut run) = Run::start(server) {
            f(&mut run);
        }
    });
}

#[test]
fn counters_stay_exact_while_keys_with_a_ttl_expire_and_a_full_server_evicts() {
    for_each_run(|run| {
        let d = run.d.clone();
        // A small cache that is full most of the time.
        let w = &mut run.writer;
        w.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        let limit = (info_int(w, "memory", "used_memory") + 1024 * 1024).to_string();
        w.ok(&["CONFIG", "SET", "maxmemory", &limit]);
        let big = "x".repeat(8192);
        let n = steps();
        for step in 1..=n {
            let k = format!("ttl:{}", run.rng.below(KEYS));
            let ttl = (1 + run.rng.below(30)).to_string();
            let action = run.rng.below(20);
            let who = run.rng.below(run.trackers.len());
            run.note(
                step,
                format!("action {action} tracker {who} key {k} ttl {ttl}"),
            );
            let t = &mut run.trackers[who].conn;
            match action {
                0..=5 => run.writer.ok(&["SET", &k, "v", "PX", &ttl]),
                // Filler that makes the server evict (keys nobody reads, and read keys).
                6..=7 => run.writer.ok(&["SET", &format!("fill:{step}"), &big]),
                8 => t.ok(&["SET", &k, "w", "PX", &ttl]),
                9 => {
                    let j = format!("ttl:{}", run.rng.below(KEYS));
                    let r = t.cmd(&["MGET", &k, &j]);
                    assert!(r.items().is_some(), "MGET on {d}: {r}");
                }
                _ => {
                    let r = t.cmd(&["GET", &k]);
                    assert!(!r.is_error(), "GET on {d}: {r}");
                }
            }
            run.end_step(step, n);
        }
        let evicted = info_int(&mut run.writer, "stats", "evicted_keys");
        let expired = info_int(&mut run.writer, "stats", "expired_keys");
        assert!(
            evicted > 0 || common::under_valgrind(),
            "the server never evicted on {d}"
        );
        run.finish(&format!(
            "{n} steps, {expired} keys expired, {evicted} evicted"
        ));
    });
}

#[test]
fn counters_stay_exact_when_pfcount_stores_its_cardinality() {
    for_each_run(|run| {
        let d = run.d.clone();
        let n = steps() / 2;
        let (mut stored, mut pfcounts) = (0, 0);
        for step in 1..=n {
            let k = format!("hll:{}", run.rng.below(KEYS / 2));
            let e = run.rng.below(40).to_string();
            let action = run.rng.below(12);
            let who = run.rng.below(run.trackers.len());
            run.note(
                step,
                format!("action {action} tracker {who} key {k} element {e}"),
            );
            const SCRIPT: &str = "return redis.call('pfcount', KEYS[1])";
            let dirty = info_int(
                &mut run.writer,
                "persistence",
                "rdb_changes_since_last_save",
            );
            let t = &mut run.trackers[who].conn;
            let r = match action {
                0..=2 => run.writer.cmd(&["PFADD", &k, &e]),
                3 => t.cmd(&["PFADD", &k, &e]),
                // PFCOUNT by a client nobody tracks, and by the trackers themselves.
                4..=5 => run.writer.cmd(&["PFCOUNT", &k]),
                6..=8 => t.cmd(&["PFCOUNT", &k]),
                // Inside a script, by a client nobody tracks and by a tracker.
                9 => run.writer.cmd(&["EVAL", SCRIPT, "1", &k]),
                10 => t.cmd(&["EVAL", SCRIPT, "1", &k]),
                _ => t.cmd(&["GET", &k]),
            };
            assert!(!r.is_error(), "action {action} on {d}: {r}");
            if (4..=10).contains(&action) {
                pfcounts += 1;
                let now = info_int(
                    &mut run.writer,
                    "persistence",
                    "rdb_changes_since_last_save",
                );
                stored += usize::from(now > dirty);
            }
            if step.is_multiple_of(50) || step == n {
                run.check(step);
            }
        }
        assert!(stored > 0, "no PFCOUNT stored its cardinality on {d}");
        run.finish(&format!("{n} steps, {pfcounts} PFCOUNTs, {stored} stored"));
    });
}

/// Waits until `f` says yes, for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn counters_stay_exact_on_a_replica_promoted_while_keys_with_a_ttl_expire() {
    for bin in common::servers() {
        let module = common::module_path();
        let primary = Server::start_with(&bin, Some(&module), &["--repl-diskless-sync-delay", "0"]);
        let port = primary.port.to_string();
        let replica = Server::start_with(&bin, Some(&module), &["--replicaof", "127.0.0.1", &port]);
        let Some(mut run) = Run::start(&replica) else {
            continue;
        };
        let d = run.d.clone();
        wait_until(Duration::from_secs(20), "the replica's link", || {
            run.obs
                .cmd(&["INFO", "replication"])
                .text()
                .is_some_and(|t| t.contains("master_link_status:up"))
        });
        run.writer = primary.conn_proto(2);
        let n = steps();
        let mut promoted = false;
        for step in 1..=n {
            if step == n / 2 {
                // The primary is lost; the replica takes over, and now expires keys itself.
                run.obs.ok(&["REPLICAOF", "NO", "ONE"]);
                run.writer = replica.conn_proto(2);
                promoted = true;
            }
            let k = format!("ttl:{}", run.rng.below(KEYS));
            let ttl = (1 + run.rng.below(30)).to_string();
            let action = run.rng.below(10);
            let who = run.rng.below(run.trackers.len());
            run.note(
                step,
                format!("promoted {promoted} action {action} tracker {who} key {k} ttl {ttl}"),
            );
            match action {
                0..=3 => run.writer.ok(&["SET", &k, "v", "PX", &ttl]),
                _ => {
                    let r = run.trackers[who].conn.cmd(&["GET", &k]);
                    assert!(!r.is_error(), "GET on {d}: {r}");
                }
            }
            run.end_step(step, n);
        }
        let expired = info_int(&mut run.obs, "stats", "expired_keys");
        assert!(
            expired > 0 || common::under_valgrind(),
            "the promoted replica expired nothing on {d}"
        );
        run.finish(&format!(
            "{n} steps, promoted at {}, {expired} keys expired after",
            n / 2
        ));
    }
}

#[test]
fn a_pfcount_queued_in_multi_is_counted_or_doubted_never_missed() {
    for_each_run(|run| {
        let d = run.d.clone();
        for round in 0..20 {
            run.writer.cmd(&["PFADD", "hll:m", &round.to_string()]);
            for t in run.trackers.iter_mut() {
                t.conn.cmd(&["GET", "hll:m"]);
            }
            // The cached cardinality is stale: EXEC's PFCOUNT stores it, no keyspace event.
            run.writer.ok(&["MULTI"]);
            run.writer.cmd(&["PFCOUNT", "hll:m"]);
            let r = run.writer.cmd(&["EXEC"]);
            assert!(r.items().is_some(), "EXEC on {d}: {r}");
            run.check(round);
        }
        // Every tracker held the key at each stored cardinality: the module cannot place the
        // write among EXEC's commands, so it must say so.
        assert_eq!(run.exact, 0, "a tracker claimed exact counters on {d}");
        println!(
            "{d}: PFCOUNT in MULTI: {} checks, all approximate",
            run.checks
        );
    });
}

#[test]
fn a_tracking_change_inside_exec_never_leaves_counters_exact_and_wrong() {
    for_each_run(|run| {
        let d = run.d.clone();
        // Each shape changes the tracker's own tracking inside EXEC around its own write of a
        // key it holds, and around another client's; tracking restarts (and its counters with
        // it) before each round.
        let shapes: [&[&[&str]]; 4] = [
            &[
                &["CLIENT", "TRACKING", "ON", "NOLOOP"],
                &["SET", "tx:k", "1"],
            ],
            &[
                &["SET", "tx:k", "2"],
                &["CLIENT", "TRACKING", "ON", "NOLOOP"],
            ],
            &[&["CLIENT", "TRACKING", "OFF"], &["SET", "tx:k", "3"]],
            &[
                &["CLIENT", "CACHING", "YES"],
                &["GET", "tx:j"],
                &["SET", "tx:k", "4"],
            ],
        ];
        for (round, shape) in shapes.iter().cycle().take(24).enumerate() {
            let t = &mut run.trackers[round % 3].conn;
            t.ok(&["CLIENT", "TRACKING", "OFF"]);
            t.ok(&["CLIENT", "TRACKING", "ON"]);
            run.trackers[round % 3].arrived = 0;
            let t = &mut run.trackers[round % 3].conn;
            t.cmd(&["GET", "tx:k"]);
            t.ok(&["MULTI"]);
            for cmd in shape.iter() {
                assert_eq!(
                    t.cmd(cmd),
                    Resp::Simple(b"QUEUED".to_vec()),
                    "{cmd:?} on {d}"
                );
            }
            let r = t.cmd(&["EXEC"]);
            assert!(r.items().is_some(), "EXEC of {shape:?} on {d}: {r}");
            run.writer.ok(&["SET", "tx:k", "other"]);
            run.check(round);
        }
        println!(
            "{d}: tracking changes inside EXEC: {} checks, {} exact",
            run.checks, run.exact
        );
    });
}

#[test]
fn transactions_aborted_by_an_acl_denial_or_oom_remember_nothing() {
    for_each_run(|run| {
        let d = run.d.clone();
        run.writer.ok(&[
            "ACL",
            "SETUSER",
            "nowipe",
            "on",
            "nopass",
            "+@all",
            "~*",
            "-flushall",
        ]);
        for (round, cause) in ["acl", "oom"].iter().cycle().take(8).enumerate() {
            let i = round % 3;
            run.writer.ok(&["SET", "ab:k", "v"]);
            let t = &mut run.trackers[i].conn;
            if *cause == "acl" {
                t.ok(&["AUTH", "nowipe", "x"]);
            } else {
                run.writer
                    .ok(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
                run.writer.ok(&["CONFIG", "SET", "maxmemory", "1"]);
            }
            t.ok(&["MULTI"]);
            assert_eq!(
                t.cmd(&["GET", "ab:k"]),
                Resp::Simple(b"QUEUED".to_vec()),
                "{d}"
            );
            let refused = if *cause == "acl" {
                t.cmd(&["FLUSHALL"])
            } else {
                t.cmd(&["SET", "ab:other", "v"])
            };
            assert!(
                refused.is_error(),
                "{cause} queuing error on {d}: {refused}"
            );
            let r = t.cmd(&["EXEC"]);
            assert!(
                matches!(&r, Resp::Error(e) if e.starts_with(b"EXECABORT")),
                "{cause}: EXEC on {d}: {r}"
            );
            if *cause == "acl" {
                t.ok(&["AUTH", "default", "x"]);
            } else {
                run.writer.ok(&["CONFIG", "SET", "maxmemory", "0"]);
            }
            // The aborted GET remembered nothing: this write sends nothing to the tracker.
            run.writer.ok(&["SET", "ab:k", "w"]);
            run.check(round);
        }
        assert_eq!(run.exact, run.checks, "every check exact on {d}");
        println!(
            "{d}: aborted transactions: {} checks, all exact",
            run.checks
        );
    });
}

#[test]
fn counters_stay_exact_when_hash_fields_expire_under_reads() {
    for_each_run(|run| {
        let d = run.d.clone();
        let info = run.writer.cmd(&["COMMAND", "INFO", "hpexpire"]);
        let known = |c: &Resp| c.items().is_some();
        if info
            .items()
            .and_then(|i| i.first())
            .is_none_or(|c| !known(c))
        {
            println!("{d}: no hash field expiry (HPEXPIRE) here");
            return;
        }
        let n = steps() / 2;
        for step in 1..=n {
            let k = format!("h:{}", run.rng.below(KEYS / 2));
            let ttl = (1 + run.rng.below(30)).to_string();
            let action = run.rng.below(10);
            let who = run.rng.below(run.trackers.len());
            run.note(
                step,
                format!("action {action} tracker {who} key {k} ttl {ttl}"),
            );
            let t = &mut run.trackers[who].conn;
            let r = match action {
                0..=1 => {
                    run.writer.cmd(&["HSET", &k, "f", "v"]);
                    run.writer.cmd(&["HPEXPIRE", &k, &ttl, "FIELDS", "1", "f"])
                }
                2 => {
                    run.writer.cmd(&["HSET", &k, "f", "v", "g", "w"]);
                    run.writer.cmd(&["HPEXPIRE", &k, &ttl, "FIELDS", "1", "f"])
                }
                // HMGET by a client nobody tracks, and by the trackers (a read that may delete).
                3..=4 => run.writer.cmd(&["HMGET", &k, "f", "g"]),
                5..=7 => t.cmd(&["HMGET", &k, "f", "g"]),
                _ => t.cmd(&["HGET", &k, "f"]),
            };
            assert!(!r.is_error(), "action {action} on {d}: {r}");
            run.end_step(step, n);
        }
        run.finish(&format!("{n} steps of hash field expiry"));
    });
}

/// Reads over every data type, as caches make them: `{k}` is a key of the read's type.
const BREADTH_READS: [&[&str]; 26] = [
    &["GET", "s:{k}"],
    &["STRLEN", "s:{k}"],
    &["GETRANGE", "s:{k}", "0", "3"],
    &["MGET", "s:{k}", "s:{j}"],
    &["EXISTS", "s:{k}", "l:{j}"],
    &["BITCOUNT", "s:{k}"],
    &["GETBIT", "s:{k}", "3"],
    &["LRANGE", "l:{k}", "0", "-1"],
    &["LLEN", "l:{k}"],
    &["LINDEX", "l:{k}", "0"],
    &["HGET", "h:{k}", "f1"],
    &["HGETALL", "h:{k}"],
    &["HMGET", "h:{k}", "f1", "f2"],
    &["HLEN", "h:{k}"],
    &["SMEMBERS", "t:{k}"],
    &["SISMEMBER", "t:{k}", "a"],
    &["SCARD", "t:{k}"],
    &["ZRANGE", "z:{k}", "0", "-1", "WITHSCORES"],
    &["ZSCORE", "z:{k}", "a"],
    &["ZCARD", "z:{k}"],
    &["PFCOUNT", "p:{k}"],
    &["XRANGE", "x:{k}", "-", "+"],
    &["XLEN", "x:{k}"],
    &["GEOPOS", "g:{k}", "a"],
    &["TYPE", "h:{k}"],
    &["TTL", "s:{k}"],
];

/// Writes of 38 kinds over the same keys (each type stays on its own keys).
const BREADTH_WRITES: [&[&str]; 38] = [
    &["SET", "s:{k}", "{v}"],
    &["SET", "s:{k}", "{v}", "PX", "{ttl}"],
    &["APPEND", "s:{k}", "x"],
    &["SETRANGE", "s:{k}", "2", "yy"],
    &["SETBIT", "s:{k}", "5", "1"],
    &["GETDEL", "s:{k}"],
    &["MSET", "s:{k}", "{v}", "s:{j}", "{v}"],
    &["COPY", "s:{k}", "s:{j}", "REPLACE"],
    &["RENAME", "s:{k}", "s:{j}"],
    &["LPUSH", "l:{k}", "{v}"],
    &["RPUSH", "l:{k}", "{v}", "{v}"],
    &["LPOP", "l:{k}"],
    &["LTRIM", "l:{k}", "0", "2"],
    &["LMOVE", "l:{k}", "l:{j}", "LEFT", "RIGHT"],
    &["HSET", "h:{k}", "f1", "{v}", "f2", "{v}"],
    &["HDEL", "h:{k}", "f1"],
    &["HINCRBY", "h:{k}", "n", "1"],
    &["SADD", "t:{k}", "a", "{v}"],
    &["SREM", "t:{k}", "a"],
    &["SPOP", "t:{k}"],
    &["SMOVE", "t:{k}", "t:{j}", "a"],
    &["SUNIONSTORE", "t:{k}", "t:{j}", "t:{k}"],
    &["ZADD", "z:{k}", "{n}", "a", "{n}", "{v}"],
    &["ZREM", "z:{k}", "a"],
    &["ZINCRBY", "z:{k}", "1", "a"],
    &["ZUNIONSTORE", "z:{k}", "2", "z:{k}", "z:{j}"],
    &["PFADD", "p:{k}", "{v}"],
    &["PFMERGE", "p:{k}", "p:{j}"],
    &["XADD", "x:{k}", "*", "f", "{v}"],
    &["XTRIM", "x:{k}", "MAXLEN", "2"],
    &["GEOADD", "g:{k}", "13.36", "38.11", "a"],
    &["DEL", "h:{k}", "s:{j}"],
    &["UNLINK", "l:{k}"],
    &["PEXPIRE", "t:{k}", "{ttl}"],
    &["EXPIRE", "z:{k}", "100"],
    &["PERSIST", "z:{k}"],
    &["INCR", "n:{k}"],
    &["SORT", "l:{k}", "ALPHA", "STORE", "l:{j}"],
];

#[test]
fn counters_stay_exact_over_every_data_type_and_command_family() {
    for_each_run(|run| {
        let d = run.d.clone();
        // Full, evicting, and with keys that expire.
        let w = &mut run.writer;
        w.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        let limit = (info_int(w, "memory", "used_memory") + 2 * 1024 * 1024).to_string();
        w.ok(&["CONFIG", "SET", "maxmemory", &limit]);
        let big = "x".repeat(8192);
        let n = steps();
        let (mut reads, mut writes, mut errors) = (0, 0, 0);
        for step in 1..=n {
            // Two different keys of a type (COPY refuses the same key twice).
            let k = run.rng.below(KEYS / 2);
            let j = (k + 1 + run.rng.below(KEYS / 2 - 1)) % (KEYS / 2);
            let v = run.rng.below(1000).to_string();
            let ttl = (1 + run.rng.below(40)).to_string();
            let action = run.rng.below(20);
            let who = run.rng.below(run.trackers.len());
            let template: &[&str] = match action {
                0..=7 => BREADTH_READS[run.rng.below(BREADTH_READS.len())],
                8 => &["SET", "fill:{v}", "{big}"],
                _ => BREADTH_WRITES[run.rng.below(BREADTH_WRITES.len())],
            };
            let args: Vec<String> = template
                .iter()
                .map(|a| {
                    a.replace("{k}", &k.to_string())
                        .replace("{j}", &j.to_string())
                        .replace("{v}", &v)
                        .replace("{n}", &(k + 1).to_string())
                        .replace("{ttl}", &ttl)
                        .replace("{big}", &big)
                })
                .collect();
            // Reads by the trackers; writes by the writer mostly, by a tracker now and then.
            let by_tracker = action <= 7 || run.rng.chance(25);
            run.note(
                step,
                format!(
                    "{} {}",
                    if by_tracker {
                        format!("tracker {who}")
                    } else {
                        "writer".into()
                    },
                    args.iter()
                        .map(|a| if a.len() > 20 { "<big>" } else { a.as_str() })
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
            let r = if by_tracker {
                run.trackers[who].conn.cmd(&args)
            } else {
                run.writer.cmd(&args)
            };
            if action <= 7 {
                reads += 1;
            } else {
                writes += 1;
            }
            if r.is_error() {
                // Only what the key space allows: a key renamed away, a LSET past the end.
                let e = r.text().unwrap_or_default();
                assert!(
                    e.starts_with("ERR no such key") || e.starts_with("OOM"),
                    "{args:?} on {d}: {r}"
                );
                errors += 1;
            }
            run.end_step(step, n);
        }
        let evicted = info_int(&mut run.writer, "stats", "evicted_keys");
        run.finish(&format!(
            "{n} steps over every type ({reads} reads, {writes} writes, {errors} refused), \
             {evicted} evicted"
        ));
    });
}
