//! `dropped-keys` and `dropped-flushes` against real receivers whose delivery breaks and mends
//! while their trackers keep tracking (issue 12): at every check, each tracker whose counters
//! say `exact` must have `invalidated-keys` = keys its receivers got + `dropped-keys`, and
//! `flush-invalidations` = null messages they got + `dropped-flushes`; the totals of
//! TRACKINFO.STATS and INFO must be the sums.
//!
//! A seeded walk (`TRACKINFO_FUZZ_SEED`, `TRACKINFO_FUZZ_STEPS`). Three trackers read and write
//! a small key space while a writer writes, deletes and now and then flushes:
//! - a RESP3 tracker without REDIRECT, which switches itself to RESP2 (`HELLO 2`: its messages
//!   are dropped) and back;
//! - a RESP2 tracker redirecting to a RESP2 subscriber, which unsubscribes (dropped) and
//!   resubscribes;
//! - a RESP3 tracker redirecting to a RESP3 connection, which switches to RESP2 (dropped),
//!   subscribes in RESP2 (delivered again, as Pub/Sub messages), goes into MULTI or blocks in
//!   BLPOP while messages are generated (still delivered).
//!
//! Either receiver now and then disconnects (its tracker's messages are dropped from then on),
//! and later its tracker redirects to a new one with `CLIENT TRACKING ON REDIRECT`.

mod common;

use common::fuzz::{seed, steps, Rng};
use common::{for_each_server, int_of, trackinfo_stats, Conn, Resp, Server};

const CHANNEL: &str = "__redis__:invalidate";
const KEYS: usize = 12;
/// At least this share of the checks must find the counters exact (Redis 7.2+ and Valkey).
const MIN_EXACT_SHARE: f64 = 0.99;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Inside MULTI, nothing queued.
    Multi,
    /// Blocked in BLPOP, its reply not read.
    Blocked,
}

/// A connection that may receive invalidation messages, counting those it reads.
struct Endpoint {
    conn: Conn,
    id: i64,
    resp: u8,
    subscribed: bool,
    mode: Mode,
    keys: u64,
    flushes: u64,
}

/// The keys of an invalidation frame (`Some(None)`: a null, flush message).
fn invalidation(frame: &Resp) -> Option<Option<usize>> {
    let payload = match frame {
        Resp::Push(items)
            if items.first().and_then(Resp::text).as_deref() == Some("invalidate") =>
        {
            items.get(1)?
        }
        Resp::Array(items) | Resp::Push(items)
            if items.len() == 3
                && items[0].text().as_deref() == Some("message")
                && items[1].text().as_deref() == Some(CHANNEL) =>
        {
            &items[2]
        }
        _ => return None,
    };
    match payload {
        Resp::Array(keys) => Some(Some(keys.len())),
        Resp::NilBulk | Resp::NilArray | Resp::Null => Some(None),
        _ => None,
    }
}

impl Endpoint {
    fn open(server: &Server, resp: u8) -> Endpoint {
        let mut conn = server.conn_proto(resp);
        let id = conn.client_id();
        Endpoint {
            conn,
            id,
            resp,
            subscribed: false,
            mode: Mode::Normal,
            keys: 0,
            flushes: 0,
        }
    }

    /// The next frame that is not an invalidation; those are counted.
    fn reply(&mut self) -> Resp {
        loop {
            let (frame, _) = self
                .conn
                .try_read_frame()
                .unwrap_or_else(|e| panic!("client {}: {e}", self.id));
            match invalidation(&frame) {
                Some(Some(n)) => self.keys += n as u64,
                Some(None) => self.flushes += 1,
                // A RESP3 tracker whose target is gone is told so, at each message it loses.
                None if matches!(&frame, Resp::Push(p)
                    if p.first().and_then(Resp::text).as_deref() == Some("tracking-redir-broken")) =>
                    {}
                None => return frame,
            }
        }
    }

    fn cmd(&mut self, args: &[&str]) -> Resp {
        self.conn.send(args);
        let r = self.reply();
        assert!(!r.is_error(), "client {}: {args:?} answered {r}", self.id);
        r
    }

    /// A RESP2 connection in Pub/Sub mode may only (un)subscribe and PING.
    fn restricted(&self) -> bool {
        self.subscribed && self.resp == 2
    }

    /// Back to normal, then everything sent to it so far is read (a PING is answered after
    /// anything already written to it).
    fn settle(&mut self, obs: &mut Conn) {
        match self.mode {
            Mode::Normal => {}
            Mode::Multi => {
                self.cmd(&["EXEC"]);
            }
            Mode::Blocked => {
                let r = obs.cmd(&["CLIENT", "UNBLOCK", &self.id.to_string()]);
                assert_eq!(r, Resp::Int(1), "CLIENT UNBLOCK {}", self.id);
                self.reply();
            }
        }
        self.mode = Mode::Normal;
        let pong = self.cmd(&["PING"]);
        assert!(
            format!("{pong}").to_ascii_lowercase().contains("pong"),
            "PING answered {pong}"
        );
    }

    /// One random change of how it receives: protocol, Pub/Sub, MULTI, blocked.
    fn change(&mut self, rng: &mut Rng, obs: &mut Conn) -> String {
        if self.mode != Mode::Normal {
            self.settle(obs);
            return "back to normal".into();
        }
        match rng.below(5) {
            0 if !self.restricted() => {
                let p = if self.resp == 3 { 2 } else { 3 };
                self.cmd(&["HELLO", &p.to_string()]);
                self.resp = p;
                format!("HELLO {p}")
            }
            1 | 2 if self.subscribed => {
                self.cmd(&["UNSUBSCRIBE", CHANNEL]);
                self.subscribed = false;
                "UNSUBSCRIBE".into()
            }
            1 | 2 => {
                self.cmd(&["SUBSCRIBE", CHANNEL]);
                self.subscribed = true;
                "SUBSCRIBE".into()
            }
            3 if !self.subscribed => {
                self.cmd(&["MULTI"]);
                self.mode = Mode::Multi;
                "MULTI".into()
            }
            4 if !self.subscribed => {
                self.conn
                    .send(&["BLPOP", &format!("drop:block:{}", self.id), "0"]);
                self.mode = Mode::Blocked;
                "BLPOP".into()
            }
            _ => "nothing".into(),
        }
    }
}

struct Tracker {
    conn: Endpoint,
    /// Where its messages go when it redirects (`None` once closed, until it redirects anew).
    receiver: Option<Endpoint>,
    redirects: bool,
    /// Counted on receivers that are closed now.
    gone_keys: u64,
    gone_flushes: u64,
}

impl Tracker {
    fn arrived(&self) -> (u64, u64) {
        let mut k = self.conn.keys + self.gone_keys;
        let mut f = self.conn.flushes + self.gone_flushes;
        if let Some(r) = &self.receiver {
            k += r.keys;
            f += r.flushes;
        }
        (k, f)
    }

    /// Switches tracking on, redirecting to a new receiver if it redirects.
    fn track(&mut self, server: &Server, resp: u8) {
        let mut on = vec!["CLIENT".to_string(), "TRACKING".into(), "ON".into()];
        if self.redirects {
            let mut r = Endpoint::open(server, resp);
            if resp == 2 {
                r.cmd(&["SUBSCRIBE", CHANNEL]);
                r.subscribed = true;
            }
            on.extend(["REDIRECT".to_string(), r.id.to_string()]);
            self.receiver = Some(r);
        }
        let on: Vec<&str> = on.iter().map(String::as_str).collect();
        let r = self.conn.cmd(&on);
        assert!(r.is_ok(), "{on:?} answered {r}");
    }
}

/// `name`'s value in a RESP2 (flat) TRACKINFO.CLIENT reply.
fn field(r: &Resp, name: &str) -> Resp {
    let items = r
        .items()
        .unwrap_or_else(|| panic!("TRACKINFO.CLIENT answered {r}"));
    items
        .chunks(2)
        .find(|kv| kv[0].text().as_deref() == Some(name))
        .map(|kv| kv[1].clone())
        .unwrap_or_else(|| panic!("no `{name}` in {r}"))
}

fn walk(server: &Server) {
    let d = server.describe();
    let seed = seed();
    let mut rng = Rng(seed);
    let mut obs = server.conn_proto(2);
    let mut writer = server.conn_proto(2);
    let mut trackers: Vec<Tracker> = [(3, false, 3), (2, true, 2), (3, true, 3)]
        .into_iter()
        .map(|(own, redirects, receiver)| {
            let mut t = Tracker {
                conn: Endpoint::open(server, own),
                receiver: None,
                redirects,
                gone_keys: 0,
                gone_flushes: 0,
            };
            t.track(server, receiver);
            t
        })
        .collect();
    let n = steps() / 2;
    let (mut checks, mut exact, mut dropped_seen, mut flushes_seen) = (0usize, 0usize, 0i64, 0i64);
    let mut history: Vec<String> = Vec::new();
    for step in 1..=n {
        let k = format!("drop:{}", rng.below(KEYS));
        let who = rng.below(trackers.len());
        let action = rng.below(40);
        let what = match action {
            0..=11 => {
                writer.ok(&["SET", &k, "v"]);
                "writer SET".to_string()
            }
            12..=13 => {
                let j = format!("drop:{}", rng.below(KEYS));
                writer.ok(&["MSET", &k, "1", &j, "2"]);
                "writer MSET".into()
            }
            14 => {
                writer.cmd(&["DEL", &k]);
                "writer DEL".into()
            }
            15 if rng.chance(25) => {
                writer.ok(&["FLUSHALL"]);
                "FLUSHALL".into()
            }
            16..=17 => {
                trackers[who].conn.cmd(&["SET", &k, "t"]);
                format!("tracker {who} SET")
            }
            18..=21 => {
                // How its messages travel changes.
                let t = &mut trackers[who];
                match t.receiver.as_mut() {
                    _ if !t.redirects => {
                        let p = if t.conn.resp == 3 { 2 } else { 3 };
                        t.conn.cmd(&["HELLO", &p.to_string()]);
                        t.conn.resp = p;
                        format!("tracker {who} HELLO {p}")
                    }
                    Some(r) => format!("receiver of {who}: {}", r.change(&mut rng, &mut obs)),
                    None => {
                        let resp = if rng.chance(50) { 2 } else { 3 };
                        t.track(server, resp);
                        format!("tracker {who} redirects to a new RESP{resp} receiver")
                    }
                }
            }
            22 if rng.chance(40) => {
                let t = &mut trackers[who];
                match t.receiver.take() {
                    Some(mut r) => {
                        r.settle(&mut obs);
                        t.gone_keys += r.keys;
                        t.gone_flushes += r.flushes;
                        let id = r.id;
                        drop(r);
                        server.wait_client_gone(&mut obs, id);
                        format!("receiver of {who} disconnected")
                    }
                    None => "nothing".into(),
                }
            }
            _ => {
                let t = &mut trackers[who];
                let r = t.conn.cmd(&["GET", &k]);
                assert!(!r.is_error());
                format!("tracker {who} GET {k}")
            }
        };
        history.push(format!("{step}: {what}"));
        if !step.is_multiple_of(25) && step != n {
            continue;
        }
        // Every message generated so far is in some connection's buffer: read them all.
        for t in trackers.iter_mut() {
            t.conn.settle(&mut obs);
            if let Some(r) = t.receiver.as_mut() {
                r.settle(&mut obs);
            }
        }
        let (mut sum_keys, mut sum_flushes, mut with_drops, mut all_exact) = (0, 0, 0, true);
        for (i, t) in trackers.iter().enumerate() {
            let r = obs.cmd(&["TRACKINFO.CLIENT", &t.conn.id.to_string()]);
            let get = |name: &str| field(&r, name).int().unwrap_or(-2);
            checks += 1;
            if field(&r, "counters").text().as_deref() != Some("exact") {
                all_exact = false;
                continue;
            }
            exact += 1;
            let (keys, flushes) = t.arrived();
            let (dk, df) = (get("dropped-keys"), get("dropped-flushes"));
            let tail = || {
                let from = history.len().saturating_sub(30);
                format!("seed {seed} on {d}\n{}", history[from..].join("\n"))
            };
            assert_eq!(
                get("invalidated-keys"),
                keys as i64 + dk,
                "tracker {i}: invalidated-keys against {keys} received + {dk} dropped; {}",
                tail()
            );
            assert_eq!(
                get("flush-invalidations"),
                flushes as i64 + df,
                "tracker {i}: flush-invalidations against {flushes} received + {df} dropped; {}",
                tail()
            );
            sum_keys += dk;
            sum_flushes += df;
            with_drops += i64::from(dk + df > 0);
        }
        dropped_seen = dropped_seen.max(sum_keys);
        flushes_seen = flushes_seen.max(sum_flushes);
        if all_exact {
            // Only these trackers ever tracked on this server: the totals are their sums.
            let stats = trackinfo_stats(&mut obs);
            assert_eq!(
                int_of(&stats, "dropped-keys"),
                sum_keys,
                "STATS dropped-keys on {d}"
            );
            assert_eq!(int_of(&stats, "dropped-flushes"), sum_flushes, "on {d}");
            assert_eq!(int_of(&stats, "clients-with-drops"), with_drops, "on {d}");
            let info = common::info_int(&mut obs, "trackinfo", "trackinfo_dropped_keys");
            assert_eq!(info, sum_keys, "INFO trackinfo_dropped_keys on {d}");
        }
    }
    let share = exact as f64 / checks as f64;
    println!(
        "{d}: seed {seed}, {n} steps, {checks} checks, {exact} exact ({:.1}%), dropped keys {dropped_seen}, dropped flushes {flushes_seen}",
        100.0 * share
    );
    assert!(
        dropped_seen > 0,
        "no message was dropped on {d} (seed {seed})"
    );
    assert!(
        share >= MIN_EXACT_SHARE,
        "only {exact} of {checks} checks exact on {d} (seed {seed})\n{}",
        server.log_tail(20)
    );
}

#[test]
fn dropped_counters_equal_what_broken_receivers_missed() {
    for_each_server(|server| {
        if server.info.is_redis70() {
            // The module cannot tell who sends a command: nothing is counted, and says so.
            let mut t = server.conn_proto(2);
            t.ok(&["CLIENT", "TRACKING", "ON"]);
            let r = t.cmd(&["TRACKINFO.GET"]);
            assert_eq!(field(&r, "dropped-keys"), Resp::Int(-1), "{r}");
            assert_eq!(field(&r, "dropped-flushes"), Resp::Int(-1), "{r}");
            return;
        }
        walk(server);
    });
}
