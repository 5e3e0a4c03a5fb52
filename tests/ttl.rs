//! Keys with a TTL, expiring while trackers read them, as caches really run: lazily (inside the
//! tracker's own read, inside another client's command) and actively (the server's cron and
//! before-sleep cycles), on a server that is also full and evicts under `maxmemory`. Active
//! expiry stays on and nothing waits for a deadline, so an expiry lands anywhere around a read.
//! Whenever a tracker's counters say `exact`, they must equal the invalidations its connection
//! received, and the module's table must hold as many items as the server's (issue 12).
//!
//! Each tracker asks for its own entry with TRACKINFO.GET on its own connection: the server
//! writes every invalidation sent before that command ahead of its reply, so what arrived up to
//! the reply is exactly what the counters can have seen.

mod common;

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

#[test]
fn counters_stay_exact_while_keys_with_a_ttl_expire_and_a_full_server_evicts() {
    for_each_server(|server| {
        let d = server.describe();
        if server.info.is_redis70() {
            return; // the module cannot tell who sends a command there: nothing is exact
        }
        let seed = seed();
        let mut rng = Rng(seed);
        let mut writer = server.conn_proto(2);
        // A small cache that is full most of the time.
        writer.ok(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        let used = info_int(&mut writer, "memory", "used_memory");
        let limit = (used + 1024 * 1024).to_string();
        writer.ok(&["CONFIG", "SET", "maxmemory", &limit]);
        let mut trackers = [
            Tracker::open(server, false),
            Tracker::open(server, true),
            Tracker::open(server, false),
        ];
        let big = "x".repeat(8192);
        let (mut exact, mut checks) = (0usize, 0usize);
        // The last steps, for a failure report.
        let mut history: std::collections::VecDeque<String> = Default::default();
        let n = steps();
        for step in 1..=n {
            let k = format!("ttl:{}", rng.below(KEYS));
            let ttl = (1 + rng.below(30)).to_string();
            let action = rng.below(20);
            let who = rng.below(trackers.len());
            history.push_back(format!(
                "{step}: action {action} tracker {who} key {k} ttl {ttl}"
            ));
            if history.len() > 40 {
                history.pop_front();
            }
            match action {
                0..=5 => writer.ok(&["SET", &k, "v", "PX", &ttl]),
                // Filler that makes the server evict (keys nobody reads, and read keys).
                6..=7 => writer.ok(&["SET", &format!("fill:{step}"), &big]),
                8 => trackers[who].conn.ok(&["SET", &k, "w", "PX", &ttl]),
                9 => {
                    let t = who;
                    let j = format!("ttl:{}", rng.below(KEYS));
                    let r = trackers[t].conn.cmd(&["MGET", &k, &j]);
                    assert!(r.items().is_some(), "MGET on {d}: {r}");
                }
                _ => {
                    let r = trackers[who].conn.cmd(&["GET", &k]);
                    assert!(!r.is_error(), "GET on {d}: {r}");
                }
            }
            if rng.chance(10) {
                // Time for TTLs to run out: the cron's and before-sleep's cycles find some.
                std::thread::sleep(Duration::from_millis(rng.below(4) as u64));
            }
            if step % 50 == 0 || step == n {
                if step == n {
                    // Every TTL has run out; the cron expires what nobody touches.
                    std::thread::sleep(Duration::from_millis(300));
                }
                for (i, t) in trackers.iter_mut().enumerate() {
                    let (is_exact, counted) = t.check();
                    checks += 1;
                    if !is_exact {
                        continue;
                    }
                    exact += 1;
                    assert_eq!(
                        counted,
                        t.arrived as i64,
                        "tracker {i} (noloop {}) says exact with {counted} invalidated keys, \
                         its connection received {} (step {step}, seed {seed}) on {d}\n{}\n{}",
                        t.noloop,
                        t.arrived,
                        history.iter().cloned().collect::<Vec<_>>().join("\n"),
                        server.log_tail(20)
                    );
                }
                // The module's table against the server's totals, in one reply.
                let stats = trackinfo_stats(&mut writer);
                if stats.get("counters").and_then(Resp::text).as_deref() == Some("exact") {
                    assert_eq!(
                        int_of(&stats, "items"),
                        int_of(&stats, "server-tracking-total-items"),
                        "the table's items against the server's (step {step}, seed {seed}) on {d}"
                    );
                }
            }
        }
        let evicted = info_int(&mut writer, "stats", "evicted_keys");
        let expired = info_int(&mut writer, "stats", "expired_keys");
        let share = exact as f64 / checks as f64;
        println!(
            "{d}: seed {seed}, {n} steps, {checks} checks, {exact} exact ({:.1}%), {expired} keys expired, {evicted} evicted",
            100.0 * share
        );
        assert!(
            evicted > 0 || common::under_valgrind(),
            "the server never evicted on {d}"
        );
        assert!(
            share >= MIN_EXACT_SHARE,
            "only {exact} of {checks} checks found the counters exact on {d} (seed {seed}); \
             at least {:.0}% must\n{}",
            100.0 * MIN_EXACT_SHARE,
            server.log_tail(30)
        );
    });
}
