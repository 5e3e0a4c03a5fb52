//! A seeded random walk over CLIENT TRACKING / CACHING / MULTI / RESET / HELLO / AUTH and
//! reads, writes and disconnects, on a pool of connections. After every step each live
//! connection's `CLIENT TRACKINGINFO` (read on that connection) must equal the module's
//! `TRACKINFO.CLIENT <id>` (read from an observer in the same protocol), byte for byte; on
//! Redis 7.0 only the CLIENT LIST part (`fidelity partial`).
//!
//! `TRACKINFO_FUZZ_SEED` replays a run, `TRACKINFO_FUZZ_STEPS` sets its length (default 5000
//! steps per server). The walk stops at the first mismatch; with `TRACKINFO_FUZZ_KEEP_GOING=1`
//! it goes on, counts mismatches by kind and reports the first of each kind (later ones may be
//! consequences of earlier ones).

mod common;

use std::collections::VecDeque;
use std::fmt::Write as _;

use common::fuzz::{seed, steps, Rng};
use common::mirror::{compare, Expect, Fields};
use common::resp::split_raw;
use common::{servers, show_command, Conn, Resp, Server};

/// Keys read and written; prefixes overlap them and each other.
const KEYS: [&str; 6] = ["a", "ab", "abc", "b", "ba", "c"];
const PREFIXES: [&[u8]; 10] = [
    b"", b"a", b"ab", b"abc", b"b", b"ba", b"bc", b"c", b"x\0y", b"x",
];
/// Prefixes for the overlap-error cases, where collisions are likely.
const OVERLAPPING: [&[u8]; 6] = [b"", b"a", b"ab", b"b", b"bc", b"c"];
/// Prefixes that collide with no key or prefix above, to put first so that the collision comes
/// at the second new prefix or later: the case that answers an error and then `+OK`.
const LONE: [&[u8]; 3] = [b"q", b"r", b"s\0t"];
const POOL_SIZE: usize = 6;
const HISTORY: usize = 20;
/// The user that may not run CLIENT TRACKING.
const LIMITED_USER: &str = "limited";

type Cmd = Vec<Vec<u8>>;

fn cmd(parts: &[&[u8]]) -> Cmd {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// `CLIENT TRACKING … PREFIX p PREFIX q …` can answer an error and then `+OK`.
fn may_answer_twice(c: &Cmd) -> bool {
    c.iter()
        .filter(|a| a.eq_ignore_ascii_case(b"PREFIX"))
        .count()
        >= 2
}

/// Extra checks on a step's replies, beyond the after-step comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Introspect {
    None,
    /// Replies 0 and 1 are `CLIENT TRACKINGINFO` then `TRACKINFO.GET`, outside MULTI.
    Pair,
    /// The step is a MULTI block; elements N and N+1 of the EXEC array are `CLIENT TRACKINGINFO`
    /// and `TRACKINFO.GET`.
    Exec(usize),
}

struct Slot {
    conn: Conn,
    id: i64,
    user: String,
}

#[derive(Default)]
struct Stats {
    comparisons: usize,
    flags: std::collections::BTreeMap<String, usize>,
    multi_prefix: usize,
    error_then_ok: usize,
    noperm: usize,
    pair_checks: usize,
    exec_checks: usize,
    disconnects: usize,
    partial: usize,
}

struct Fuzz<'s> {
    server: &'s Server,
    rng: Rng,
    seed: u64,
    pool: Vec<Slot>,
    /// Observers in RESP2 and RESP3; they never track and are never disconnected.
    observers: [Conn; 2],
    observer_ids: [i64; 2],
    dead: Vec<i64>,
    redirect_targets: Vec<i64>,
    history: VecDeque<String>,
    step: usize,
    token: u64,
    stats: Stats,
}

fn vary_case(rng: &mut Rng, word: &str) -> Vec<u8> {
    match rng.below(10) {
        0..=6 => word.as_bytes().to_vec(),
        7 | 8 => word.to_lowercase().into_bytes(),
        _ => word
            .bytes()
            .map(|b| {
                if rng.chance(50) {
                    b.to_ascii_lowercase()
                } else {
                    b
                }
            })
            .collect(),
    }
}

fn short(r: &Resp) -> String {
    let s = r.to_string();
    if s.len() > 160 {
        format!("{}…", &s[..s.floor_char_boundary(160)])
    } else {
        s
    }
}

impl<'s> Fuzz<'s> {
    fn new(server: &'s Server, seed: u64) -> Fuzz<'s> {
        let mut observers = [server.conn_proto(2), server.conn_proto(3)];
        let observer_ids = [observers[0].client_id(), observers[1].client_id()];
        observers[0].ok(&[
            "ACL",
            "SETUSER",
            LIMITED_USER,
            "on",
            "nopass",
            "~*",
            "&*",
            "+@all",
            "-client|tracking",
        ]);
        let mut fuzz = Fuzz {
            server,
            rng: Rng(seed),
            seed,
            pool: Vec::new(),
            observers,
            observer_ids,
            dead: Vec::new(),
            redirect_targets: Vec::new(),
            history: VecDeque::new(),
            step: 0,
            token: 0,
            stats: Stats::default(),
        };
        for _ in 0..POOL_SIZE {
            let slot = fuzz.new_slot();
            fuzz.pool.push(slot);
        }
        fuzz
    }

    fn log(&mut self, line: String) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(line);
    }

    fn new_slot(&mut self) -> Slot {
        let proto = if self.rng.chance(50) { 3 } else { 2 };
        let mut conn = self.server.conn_proto(proto);
        let id = conn.client_id();
        let mut user = "default".to_string();
        if self.rng.chance(15) {
            conn.ok(&["AUTH", LIMITED_USER, "x"]);
            user = LIMITED_USER.into();
        }
        self.log(format!(
            "step {}: new connection id={id} RESP{proto} user={user}",
            self.step
        ));
        Slot { conn, id, user }
    }

    // ---- command generators ----

    fn target(&mut self, me: usize) -> Vec<u8> {
        let id = match self.rng.below(100) {
            0..=39 => self.pool[self.rng.below(self.pool.len())].id,
            40..=49 => self.observer_ids[self.rng.below(2)],
            50..=59 => self.pool[me].id,
            60..=79 if !self.dead.is_empty() => self.dead[self.rng.below(self.dead.len())],
            60..=79 => self.pool[self.rng.below(self.pool.len())].id,
            _ => {
                return self
                    .rng
                    .pick(&["abc", "1.5", "-1", "0", "99999999", "", " 1"])
                    .into()
            }
        };
        id.to_string().into_bytes()
    }

    fn tracking(&mut self, me: usize) -> Cmd {
        let mut c = vec![
            vary_case(&mut self.rng, "CLIENT"),
            vary_case(&mut self.rng, "TRACKING"),
        ];
        if self.rng.chance(50) {
            // Well formed, so that the walk reaches many valid states.
            if self.rng.chance(20) {
                c.push(vary_case(&mut self.rng, "OFF"));
                return c;
            }
            c.push(vary_case(&mut self.rng, "ON"));
            match self.rng.below(4) {
                0 => {}
                1 => c.push(vary_case(&mut self.rng, "OPTIN")),
                2 => c.push(vary_case(&mut self.rng, "OPTOUT")),
                _ => {
                    c.push(vary_case(&mut self.rng, "BCAST"));
                    for _ in 0..self.rng.below(3) {
                        c.push(vary_case(&mut self.rng, "PREFIX"));
                        c.push(self.rng.pick(&PREFIXES).to_vec());
                    }
                }
            }
            if self.rng.chance(30) {
                c.push(vary_case(&mut self.rng, "NOLOOP"));
            }
            if self.rng.chance(35) {
                c.push(vary_case(&mut self.rng, "REDIRECT"));
                let t = self.target(me);
                c.push(t);
            }
            return c;
        }
        let mode = match self.rng.below(100) {
            0..=54 => "ON",
            55..=84 => "OFF",
            _ => self.rng.pick(&["MAYBE", "1", "", "ONN", "BCAST"]),
        };
        c.push(vary_case(&mut self.rng, mode));
        let n = self.rng.pick(&[0, 1, 1, 2, 2, 3, 4]);
        for _ in 0..n {
            match self.rng.below(100) {
                0..=14 => {
                    c.push(vary_case(&mut self.rng, "REDIRECT"));
                    let t = self.target(me);
                    c.push(t);
                }
                15..=34 => c.push(vary_case(&mut self.rng, "BCAST")),
                35..=54 => {
                    c.push(vary_case(&mut self.rng, "PREFIX"));
                    c.push(self.rng.pick(&PREFIXES).to_vec());
                }
                55..=66 => c.push(vary_case(&mut self.rng, "OPTIN")),
                67..=78 => c.push(vary_case(&mut self.rng, "OPTOUT")),
                79..=92 => c.push(vary_case(&mut self.rng, "NOLOOP")),
                _ => c.push(self.rng.pick(&["FOO", "ON", "OFF", "-1"]).into()),
            }
        }
        if self.rng.chance(5) {
            // An option with its value missing.
            let word = self.rng.pick(&["REDIRECT", "PREFIX"]);
            c.push(vary_case(&mut self.rng, word));
        }
        c
    }

    /// `ON BCAST` with two or three prefixes that often overlap, for the error-then-OK quirk.
    fn overlapping(&mut self, me: usize) -> Cmd {
        let mut c = cmd(&[b"CLIENT", b"TRACKING", b"ON", b"BCAST"]);
        if self.rng.chance(50) {
            c.push(b"PREFIX".to_vec());
            c.push(self.rng.pick(&LONE).to_vec());
        }
        for _ in 0..2 + self.rng.below(2) {
            c.push(b"PREFIX".to_vec());
            c.push(self.rng.pick(&OVERLAPPING).to_vec());
        }
        if self.rng.chance(20) {
            c.push(b"NOLOOP".to_vec());
        }
        if self.rng.chance(20) {
            c.push(b"REDIRECT".to_vec());
            let t = self.target(me);
            c.push(t);
        }
        c
    }

    fn caching(&mut self) -> Cmd {
        let mut c = vec![
            vary_case(&mut self.rng, "CLIENT"),
            vary_case(&mut self.rng, "CACHING"),
        ];
        match self.rng.below(100) {
            0..=39 => c.push(vary_case(&mut self.rng, "yes")),
            40..=79 => c.push(vary_case(&mut self.rng, "no")),
            80..=89 => c.push(self.rng.pick(&["maybe", "", "1"]).into()),
            90..=94 => {}
            _ => {
                c.push(b"yes".to_vec());
                c.push(b"extra".to_vec());
            }
        }
        c
    }

    fn key(&mut self) -> &'static [u8] {
        self.rng.pick(&KEYS).as_bytes()
    }

    fn read(&mut self) -> Cmd {
        let (k1, k2) = (self.key(), self.key());
        match self.rng.below(4) {
            0 => cmd(&[b"GET", k1]),
            1 => cmd(&[b"MGET", k1, k2]),
            2 => cmd(&[b"EXISTS", k1, k2]),
            _ => cmd(&[b"STRLEN", k1]),
        }
    }

    fn write(&mut self) -> Cmd {
        let (k1, k2) = (self.key(), self.key());
        match self.rng.below(5) {
            0 => cmd(&[b"SET", k1, b"v"]),
            1 => cmd(&[b"DEL", k1]),
            2 => cmd(&[b"MSET", k1, b"1", k2, b"2"]),
            3 => cmd(&[b"APPEND", k1, b"x"]),
            _ => cmd(&[b"INCR", k1]),
        }
    }

    fn misc(&mut self) -> Cmd {
        match self.rng.below(12) {
            8 => cmd(&[b"SET", b"client", b"tracking"]),
            9 => cmd(&[b"ECHO", b"CLIENT"]),
            // CLIENT is noscript: these fail, and must change nothing.
            10 => cmd(&[
                b"EVAL",
                b"return redis.pcall('client','tracking','on','optin')",
                b"0",
            ]),
            11 => cmd(&[
                b"EVAL",
                b"return redis.pcall('client','caching','yes')",
                b"0",
            ]),
            0 => cmd(&[b"NO-SUCH-COMMAND", b"x"]),
            1 => cmd(&[b"GET"]),
            2 => cmd(&[b"CLIENT", b"TRACKING"]),
            3 => cmd(&[b"CLIENT", b"TRACKINGINFO", b"x"]),
            4 => cmd(&[b"CLIENT", b"GETREDIR"]),
            5 => cmd(&[b"PING"]),
            6 => cmd(&[b"CLIENT", b"NO-SUCH-SUBCOMMAND"]),
            _ => cmd(&[b"client", b"trackinginfo"]),
        }
    }

    /// A command that may be queued inside MULTI.
    fn queued(&mut self, me: usize) -> Cmd {
        match self.rng.below(10) {
            0..=3 => self.tracking(me),
            4 => self.overlapping(me),
            5 | 6 => self.caching(),
            7 => self.read(),
            8 => self.write(),
            _ => self.misc(),
        }
    }

    fn multi(&mut self, me: usize) -> (Vec<Cmd>, Introspect) {
        let mut cmds = vec![cmd(&[b"MULTI"])];
        let n = 1 + self.rng.below(4);
        let pair_at = if self.rng.chance(50) {
            Some(self.rng.below(n + 1))
        } else {
            None
        };
        for i in 0..=n {
            if pair_at == Some(i) {
                cmds.push(cmd(&[b"CLIENT", b"TRACKINGINFO"]));
                cmds.push(cmd(&[b"TRACKINFO.GET"]));
            }
            if i < n {
                let mut q = self.queued(me);
                // Before the pair, no command that can answer twice (the prefix-overlap quirk),
                // so that the pair's place in the EXEC array is known.
                while pair_at.is_some_and(|p| i < p) && may_answer_twice(&q) {
                    q = self.queued(me);
                }
                cmds.push(q);
            }
        }
        if self.rng.chance(20) {
            cmds.push(cmd(&[b"DISCARD"]));
        } else {
            cmds.push(cmd(&[b"EXEC"]));
        }
        let check = match pair_at {
            Some(p) => Introspect::Exec(p),
            None => Introspect::None,
        };
        (cmds, check)
    }

    // ---- steps ----

    fn step(&mut self) -> Result<(), String> {
        let me = self.rng.below(self.pool.len());
        let roll = self.rng.below(100);
        let (cmds, check) = match roll {
            0..=23 => {
                let mut v = Vec::new();
                if self.rng.chance(10) {
                    // A CLIENT subcommand that suppresses the next reply.
                    v.push(cmd(&[b"CLIENT", b"REPLY", b"SKIP"]));
                }
                v.push(self.tracking(me));
                (v, Introspect::None)
            }
            24..=28 => {
                // From off, the error-then-OK quirk needs only the new prefixes to collide.
                let mut v = Vec::new();
                if self.rng.chance(50) {
                    v.push(cmd(&[b"CLIENT", b"TRACKING", b"OFF"]));
                }
                v.push(self.overlapping(me));
                (v, Introspect::None)
            }
            29..=33 => {
                let mut burst = Vec::new();
                for _ in 0..2 + self.rng.below(3) {
                    let c = if self.rng.chance(70) {
                        self.tracking(me)
                    } else {
                        self.caching()
                    };
                    burst.push(c);
                }
                (burst, Introspect::None)
            }
            34..=43 => (vec![self.caching()], Introspect::None),
            44..=51 => (vec![self.read()], Introspect::None),
            52..=59 => (vec![self.write()], Introspect::None),
            60..=68 => self.multi(me),
            69..=71 => return self.watch_then_exec(me),
            72..=75 => {
                let v = self.rng.pick(&["2", "3", "3", "2", "4"]);
                (vec![cmd(&[b"HELLO", v.as_bytes()])], Introspect::None)
            }
            76 | 77 => (vec![cmd(&[b"RESET"])], Introspect::None),
            78 => {
                let t = self.tracking(me);
                (
                    vec![cmd(&[b"MULTI"]), t, cmd(&[b"RESET"])],
                    Introspect::None,
                )
            }
            79..=84 => (vec![self.misc()], Introspect::None),
            85..=90 => (
                vec![cmd(&[b"CLIENT", b"TRACKINGINFO"]), cmd(&[b"TRACKINFO.GET"])],
                Introspect::Pair,
            ),
            91..=94 => return self.disconnect(),
            95..=98 => {
                let who = if self.rng.chance(50) {
                    LIMITED_USER
                } else {
                    "default"
                };
                let c = if self.rng.chance(70) {
                    cmd(&[b"AUTH", who.as_bytes(), b"x"])
                } else {
                    let v: &[u8] = if self.rng.chance(50) { b"2" } else { b"3" };
                    cmd(&[b"HELLO", v, b"AUTH", who.as_bytes(), b"x"])
                };
                (vec![c], Introspect::None)
            }
            _ => {
                let f: &[u8] = if self.rng.chance(50) {
                    b"FLUSHDB"
                } else {
                    b"FLUSHALL"
                };
                (vec![cmd(&[f])], Introspect::None)
            }
        };
        self.run(me, cmds, check)
    }

    /// Sends `cmds` on connection `me` in one pipeline, then reads every reply: the step is
    /// followed by `CLIENT SETNAME <token>` + `CLIENT GETNAME` (CLIENT subcommands, so a CACHING
    /// window stays open) and replies are read until the token comes back. This also consumes
    /// the extra `+OK` of the prefix-overlap quirk.
    fn run(&mut self, me: usize, cmds: Vec<Cmd>, check: Introspect) -> Result<(), String> {
        self.token += 1;
        let token = format!("step-{}-{}", self.step, self.token);
        let slot = &mut self.pool[me];
        for c in &cmds {
            slot.conn.send(c);
        }
        slot.conn.send(&["CLIENT", "SETNAME", &token]);
        slot.conn.send(&["CLIENT", "GETNAME"]);
        let mut replies: Vec<(Resp, Vec<u8>)> = Vec::new();
        loop {
            let (r, raw) = slot.conn.read_reply_raw();
            if matches!(&r, Resp::Bulk(b) if b == token.as_bytes()) {
                break;
            }
            replies.push((r, raw));
        }
        // The reply to SETNAME.
        let setname = replies.pop();
        // Learn the protocol and user from the server itself (HELLO, RESET, AUTH may change them).
        let info = slot
            .conn
            .cmd(&["CLIENT", "INFO"])
            .text()
            .unwrap_or_default();
        for field in info.split_whitespace() {
            if let Some(v) = field.strip_prefix("resp=") {
                slot.conn.proto = v.parse().unwrap_or(2);
            } else if let Some(v) = field.strip_prefix("user=") {
                slot.user = v.to_string();
            }
        }
        let (id, proto, user) = (slot.id, slot.conn.proto, slot.user.clone());
        let mut line = format!("step {}: conn#{me} id={id} ->", self.step);
        for c in &cmds {
            let _ = write!(line, " {};", show_command(c));
        }
        let _ = write!(line, "\n      replies:");
        for (r, _) in &replies {
            let _ = write!(line, " {} |", short(r));
        }
        let _ = write!(line, " (now RESP{proto}, user {user})");
        self.log(line);
        if !matches!(&setname, Some((r, _)) if r.is_ok()) {
            return Err(format!("CLIENT SETNAME did not answer +OK: {setname:?}"));
        }
        for w in replies.windows(2) {
            if matches!(&w[0].0, Resp::Error(e) if String::from_utf8_lossy(e).contains("overlaps with another provided prefix"))
                && w[1].0.is_ok()
            {
                self.stats.error_then_ok += 1;
            }
        }
        self.stats.noperm += replies
            .iter()
            .filter(|(r, _)| matches!(r, Resp::Error(e) if e.starts_with(b"NOPERM")))
            .count();
        let expect = Expect::for_client(&self.server.info, true);
        let floor = self.server.started_ms - 1000;
        match check {
            Introspect::None => {}
            Introspect::Pair => {
                if replies.len() != 2 {
                    return Err(format!("expected 2 replies, got {}", replies.len()));
                }
                compare(&replies[0].1, &replies[1].1, proto, id, expect, floor).map_err(|e| {
                    format!("TRACKINFO.GET vs CLIENT TRACKINGINFO just before it: {e}")
                })?;
                self.stats.pair_checks += 1;
            }
            Introspect::Exec(k) => {
                // Only when EXEC ran. Every reply before EXEC's is single (MULTI's +OK, then one
                // +QUEUED or error per command), so EXEC's is at EXEC's index; an extra +OK from
                // the overlap quirk inside EXEC comes after the array.
                if let Some((Resp::Array(_), raw)) = replies.get(cmds.len() - 1) {
                    let (_, items) = split_raw(raw)?;
                    if items.len() < k + 2 {
                        return Err(format!("EXEC array has {} elements", items.len()));
                    }
                    compare(items[k], items[k + 1], proto, id, expect, floor).map_err(|e| {
                        format!(
                            "inside EXEC, TRACKINFO.GET vs CLIENT TRACKINGINFO just before it: {e}"
                        )
                    })?;
                    self.stats.exec_checks += 1;
                }
            }
        }
        Ok(())
    }

    /// WATCH a key, have an observer write it, then MULTI … EXEC: EXEC aborts with a null reply.
    fn watch_then_exec(&mut self, me: usize) -> Result<(), String> {
        let key = self.key();
        let watch = self.pool[me].conn.cmd(&[&b"WATCH"[..], key]);
        let set = self.observers[0].cmd(&[&b"SET"[..], key, b"w"]);
        self.log(format!(
            "step {}: conn#{me} WATCH {} => {}; observer SET => {}",
            self.step,
            common::escape(key),
            short(&watch),
            short(&set)
        ));
        let (mut cmds, check) = self.multi(me);
        if let Some(last) = cmds.last_mut() {
            *last = cmd(&[b"EXEC"]);
        }
        self.run(me, cmds, check)
    }

    /// Closes a connection (preferably a redirect target) by QUIT, by dropping the socket, or
    /// with CLIENT KILL; waits until the server has freed it, then opens a replacement.
    fn disconnect(&mut self) -> Result<(), String> {
        let targets: Vec<usize> = (0..self.pool.len())
            .filter(|&i| self.redirect_targets.contains(&self.pool[i].id))
            .collect();
        let victim = if !targets.is_empty() && self.rng.chance(60) {
            targets[self.rng.below(targets.len())]
        } else {
            self.rng.below(self.pool.len())
        };
        let mut slot = self.pool.remove(victim);
        let how = match self.rng.below(4) {
            3 => {
                let id = slot.id.to_string();
                // SKIPME defaults to yes, which would spare the caller.
                let r = slot
                    .conn
                    .cmd(&["CLIENT", "KILL", "ID", &id, "SKIPME", "no"]);
                slot.conn.wait_closed();
                format!("CLIENT KILL ID itself => {}", short(&r))
            }
            0 => {
                let r = slot.conn.cmd(&["QUIT"]);
                if !slot.conn.wait_closed() {
                    return Err("the server did not close the connection after QUIT".into());
                }
                format!("QUIT => {}", short(&r))
            }
            1 => "socket closed".to_string(),
            _ => {
                let r = self.observers[0].cmd(&["CLIENT", "KILL", "ID", &slot.id.to_string()]);
                format!("observer CLIENT KILL ID => {}", short(&r))
            }
        };
        drop(slot.conn);
        self.server
            .wait_client_gone(&mut self.observers[0], slot.id);
        self.dead.push(slot.id);
        self.stats.disconnects += 1;
        self.log(format!(
            "step {}: conn#{victim} id={} disconnected ({how})",
            self.step, slot.id
        ));
        let fresh = self.new_slot();
        self.pool.insert(victim, fresh);
        Ok(())
    }

    /// Every live connection: `CLIENT TRACKINGINFO` on it, then `TRACKINFO.CLIENT <id>` from the
    /// observer of its protocol; nothing runs in between that could change tracking state.
    /// Then `TRACKINFO.CLIENTS` must list exactly the tracking connections, in id order.
    fn check_all(&mut self) -> Result<(), String> {
        // Invalidation pushes are not under test here; drop the ones set aside so far.
        for s in self.pool.iter_mut() {
            s.conn.pushes.clear();
        }
        for o in self.observers.iter_mut() {
            o.pushes.clear();
        }
        for s in self.pool.iter_mut() {
            s.conn.send(&["CLIENT", "TRACKINGINFO"]);
        }
        let truths: Vec<Vec<u8>> = self
            .pool
            .iter_mut()
            .map(|s| s.conn.read_reply_raw().1)
            .collect();
        for s in &self.pool {
            let id = s.id.to_string();
            self.observers[usize::from(s.conn.proto == 3)].send(&["TRACKINFO.CLIENT", &id]);
        }
        let mut mirrors = Vec::with_capacity(self.pool.len());
        for i in 0..self.pool.len() {
            let o = usize::from(self.pool[i].conn.proto == 3);
            mirrors.push(self.observers[o].read_reply_raw().1);
        }
        let expect = Expect::for_client(&self.server.info, true);
        let floor = self.server.started_ms - 1000;
        let mut tracking = Vec::new();
        let mut summaries = std::collections::HashMap::new();
        self.redirect_targets.clear();
        for (i, s) in self.pool.iter().enumerate() {
            let m = compare(&truths[i], &mirrors[i], s.conn.proto, s.id, expect, floor)
                .map_err(|e| format!("conn#{i} (user {}): {e}", s.user))?;
            self.stats.comparisons += 1;
            let t = Fields::parse_truth(&truths[i], s.conn.proto)?;
            for f in &t.flags {
                *self.stats.flags.entry(f.clone()).or_default() += 1;
            }
            if t.prefixes.len() > 1 {
                self.stats.multi_prefix += 1;
            }
            if m.fidelity.as_deref() == Some("partial") {
                self.stats.partial += 1;
            }
            if t.is_on() {
                tracking.push(s.id);
                if t.redirect > 0 {
                    self.redirect_targets.push(t.redirect);
                }
            }
            summaries.insert(s.id, m.summary());
        }
        tracking.sort_unstable();

        let o = self.step % 2;
        let (reply, raw) = self.observers[o].cmd_raw(&["TRACKINFO.CLIENTS"]);
        if reply.marker() != '*' {
            return Err(format!("TRACKINFO.CLIENTS is not an array: {reply}"));
        }
        let (_, entries) = split_raw(&raw)?;
        let mut listed = Vec::new();
        for e in entries {
            let f = Fields::parse_mirror(e, self.observers[o].proto)
                .map_err(|err| format!("TRACKINFO.CLIENTS entry: {err}\n{reply}"))?;
            let id = f.id.unwrap_or(-1);
            if summaries.get(&id) != Some(&f.summary()) {
                return Err(format!(
                    "TRACKINFO.CLIENTS entry differs from TRACKINFO.CLIENT {id}:\n  CLIENTS: {}\n  CLIENT:  {}",
                    f.summary(),
                    summaries.get(&id).map(String::as_str).unwrap_or("(not a live pool connection)")
                ));
            }
            listed.push(id);
        }
        if listed != tracking {
            return Err(format!(
                "TRACKINFO.CLIENTS lists ids {listed:?}; the connections with tracking on, in id order, are {tracking:?}"
            ));
        }
        Ok(())
    }

    /// The failure report: server, seed, step, diff, the last steps, and the server log tail.
    fn report(&self, what: &str) -> String {
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        format!(
            "differential mismatch on {}\nseed {} (replay: TRACKINFO_FUZZ_SEED={} TRACKINFO_SERVERS={}), step {}:\n{what}\n\nlast steps:\n{}\n\nserver log tail:\n{}",
            self.server.describe(),
            self.seed,
            self.seed,
            self.server.binary.display(),
            self.step,
            history.join("\n"),
            self.server.log_tail(10)
        )
    }
}

/// The kind of a mismatch: its first line with numbers blanked, and lists of numbers too, so
/// that ids, steps and list lengths do not make new kinds.
fn kind(error: &str) -> String {
    let first = error.lines().next().unwrap_or_default();
    let mut out = String::new();
    let mut rest = first;
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            if let Some(end) = rest.find(']') {
                let inner = &rest[1..end];
                if inner
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
                {
                    out.push_str("[…]");
                    rest = &rest[end + 1..];
                    continue;
                }
            }
        }
        if c.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Runs the walk on one server; `Err` carries the report of the first mismatch (of each kind,
/// with `keep_going`).
fn walk(server: &Server, seed: u64, steps: usize, keep_going: bool) -> Result<(), String> {
    println!("seed {seed}, {steps} steps on {}", server.describe());
    let started = std::time::Instant::now();
    let mut fuzz = Fuzz::new(server, seed);
    let mut kinds: Vec<(String, usize, String)> = Vec::new();
    if let Err(e) = fuzz.check_all() {
        return Err(fuzz.report(&format!("before the first step: {e}")));
    }
    for step in 1..=steps {
        fuzz.step = step;
        if let Err(e) = fuzz.step().and_then(|()| fuzz.check_all()) {
            if !keep_going {
                return Err(fuzz.report(&e));
            }
            let k = kind(&e);
            match kinds.iter_mut().find(|(kk, _, _)| *kk == k) {
                Some(entry) => entry.1 += 1,
                None => kinds.push((k, 1, fuzz.report(&e))),
            }
        }
    }
    let s = &fuzz.stats;
    println!(
        "{}: {} comparisons in {:.1?}; flags seen {:?}; multi-prefix {}; error-then-OK {}; NOPERM {}; GET pairs {}; EXEC pairs {}; disconnects {}; partial {}",
        server.info,
        s.comparisons,
        started.elapsed(),
        s.flags,
        s.multi_prefix,
        s.error_then_ok,
        s.noperm,
        s.pair_checks,
        s.exec_checks,
        s.disconnects,
        s.partial
    );
    if kinds.is_empty() {
        return Ok(());
    }
    let mut out = format!(
        "{} kinds of mismatch on {}:\n",
        kinds.len(),
        server.describe()
    );
    for (k, n, _) in &kinds {
        let _ = writeln!(out, "  {n:5} x {k}");
    }
    for (_, _, report) in &kinds {
        let _ = write!(out, "\n{report}\n");
    }
    Err(out)
}

/// Every server is walked with the same seed, even after one fails, so one run shows the
/// first mismatch of each server.
#[test]
fn random_command_sequences_keep_every_mirror_equal_to_client_trackinginfo() {
    let seed = seed();
    let steps = steps();
    let keep_going = std::env::var("TRACKINFO_FUZZ_KEEP_GOING").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for bin in servers() {
        let server = Server::with_module(&bin);
        if let Err(report) = walk(&server, seed, steps, keep_going) {
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} servers diverged:\n\n{}",
        failures.len(),
        servers().len(),
        failures.join("\n\n")
    );
}
