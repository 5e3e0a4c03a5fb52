//! Invalidation accounting, checked against the invalidation messages that really arrive.
//!
//! A seeded random walk over a small key space. Six tracking clients read (GET, MGET, EXISTS,
//! STRLEN; OPTIN and OPTOUT with and without CLIENT CACHING). A writer and the tracking clients
//! themselves write (SET, MSET, DEL, INCR, PEXPIRE, EXPIRE, RENAME; with and without NOLOOP).
//! Keys expire, databases are flushed, tracking is switched off and on, reads and writes run
//! inside transactions of every outcome (EXEC that runs, WATCH that fails or not, EXECABORT,
//! DISCARD), and now and then inside EVAL. Three tracking clients are RESP3 and receive their
//! own `>` pushes; three are RESP2 and redirect to a subscribed connection of their own. Every
//! message is read and counted.
//!
//! Two trackers (one of each kind) sometimes switch tracking on in BCAST mode, with one to three
//! of the prefixes that partition the key space (`acct:a:`…`acct:d:`, with or without the last
//! colon), sometimes with NOLOOP. The model batches each step's modified keys with their last
//! writer, as the server does within one event-loop cycle, and sends each prefix's keys at the
//! step's end (NOLOOP leaves out keys the client itself last wrote by a direct command; a
//! script's writes or an expiry are not its own). Every key of a BCAST message is counted, and
//! attributed to the one prefix it starts with: `prefix-stats` must match per prefix, and
//! `tracked-keys` must be 0. Now and then a tracker and its subscriber are closed and reopened
//! (new ids): `TRACKINFO.CLIENT <old id>` must answer `ERR No such client`. Sometimes a RESP2
//! client with tracking on and no REDIRECT reads and writes: it must receive nothing, and say
//! `delivery dropped`.
//!
//! Every 50 steps and at the end, once every receiver has been drained (PING, then read until
//! PONG), each tracking client whose `TRACKINFO.CLIENT` says `counters exact` must have counted
//! exactly the keys and the flushes that arrived since its tracking was switched on, and date the
//! last one within the step that caused it. At the end every key is written once more, and what
//! then arrives must equal the `tracked-keys` read just before, and (for non-BCAST clients whose
//! counters are exact) the keys `TRACKINFO.KEYS <id> COUNT 0` listed just before. Clients that say `approximate`
//! are not checked, but on Redis 7.2+ and Valkey at least 99% of all checks must find `exact`
//! (100% in most runs; the rest is Valkey's BCAST NOLOOP `EXPIRE k 0` quirk, docs/design.md):
//! EVAL is rare, and the plain workload and transactions must be counted exactly. On Redis 7.0 the
//! module cannot tell who sent a command: it must say `approximate`, with -1 counters.
//!
//! The walk keeps its own model of the server's tracking table (tracking.c: keys are remembered
//! by reads, an entry is removed whole by an invalidation, survives OFF and ON, and a flush
//! empties the table). The model predicts every reply and every message, and it must agree with
//! the server before the module is judged: a disagreement is a harness error, which always stops
//! the walk. The model also gives `tracked-reads` and `tracked-keys` at every checkpoint.
//!
//! Expiry is made deterministic. Active expiry is off (`DEBUG SET-ACTIVE-EXPIRE 0`) except in
//! steps that wait for it, and after a PEXPIRE the walk waits until the server's clock is past
//! the deadline. So an expired key goes at the next command that touches it, on behalf of that
//! command's client, which matters for NOLOOP (tracking.c compares with `server.current_client`).
//!
//! `TRACKINFO_FUZZ_SEED` replays a run, `TRACKINFO_FUZZ_STEPS` sets its length (default 5000
//! steps per server). With `TRACKINFO_FUZZ_KEEP_GOING=1` the walk goes on after a module
//! mismatch and reports the first mismatch of each kind (later ones may be consequences).
//! For debugging: `TRACKINFO_FUZZ_CHECK_EVERY=1` checks after every step (default 50), and
//! `TRACKINFO_FUZZ_LOG=path` appends every step and every module reply to `path`.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use common::fuzz::{seed, steps, Rng};
use common::resp::nested_pushes;
use common::{now_ms, servers, show_command, Conn, Resp, Server};

/// Keys `acct:a:0`, `acct:b:1`, … `acct:d:19`: few, so that most writes invalidate someone,
/// in four groups that BCAST prefixes (`acct:a:` or `acct:a`, …) partition.
const KEY_SPACE: usize = 20;
const GROUPS: [char; 4] = ['a', 'b', 'c', 'd'];
/// The trackers that may switch tracking on in BCAST mode (one RESP3, one redirecting).
const BCAST_CAPABLE: [usize; 2] = [2, 5];
const TRACKERS: usize = 6;
const CHECK_EVERY: usize = 50;
const HISTORY: usize = 20;
/// On Redis 7.2+ and Valkey, at least this share of the checks must find `counters exact`.
const MIN_EXACT_SHARE: f64 = 0.99;
/// `last-invalidation` may differ from the step's wall-clock window by this much (ms rounding).
const CLOCK_SLACK_MS: i64 = 2;
const CHANNEL: &str = "__redis__:invalidate";

/// The module's reply, in order; the accounting keys follow the eight older ones.
const REPLY_KEYS: [&str; 17] = [
    "flags",
    "redirect",
    "prefixes",
    "id",
    "fidelity",
    "tracking-since",
    "resp",
    "delivery",
    "tracked-keys",
    "tracked-reads",
    "invalidated-keys",
    "flush-invalidations",
    "last-invalidation",
    "prefix-stats",
    "counters",
    "dropped-keys",
    "dropped-flushes",
];

/// Scripts read their declared KEYS and write their ARGV keys. Redis 7.0 remembers a script's
/// declared keys at each read, 7.2+ the keys each inner read touches: reading exactly the
/// declared keys (none of them expired, when there are two) makes both the same.
const READ_THEN_WRITE: &str = "for _, k in ipairs(KEYS) do redis.call('get', k) end \
     for _, k in ipairs(ARGV) do redis.call('set', k, '7') end return 1";
const WRITE_THEN_READ: &str = "for _, k in ipairs(ARGV) do redis.call('set', k, '7') end \
     for _, k in ipairs(KEYS) do redis.call('get', k) end return 1";

fn key(k: usize) -> String {
    format!("acct:{}:{k}", GROUPS[k % GROUPS.len()])
}

// ---- what the walk sends ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Default,
    Optin,
    Optout,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::Optin => "optin",
            Mode::Optout => "optout",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    Int(i64),
    /// Not an integer: INCR fails on it, and a failed write invalidates nothing.
    Text,
}

impl Value {
    fn render(self) -> String {
        match self {
            Value::Int(n) => n.to_string(),
            Value::Text => "text".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ttl {
    None,
    /// An hour: never reached during the walk.
    Far,
    /// The deadline has passed; the key goes at the next command that touches it, or in an
    /// active-expiry step.
    Due,
}

#[derive(Clone, Debug)]
enum Op {
    Get(usize),
    Mget(Vec<usize>),
    Exists(Vec<usize>),
    Strlen(usize),
    Set(usize, Value),
    Mset(Vec<(usize, Value)>),
    Del(Vec<usize>),
    Incr(usize),
    /// A TTL of a few ms; the step then waits until the server's clock is past it.
    Pexpire(usize, i64),
    /// `EXPIRE k 0`: deleted at once.
    ExpireNow(usize),
    ExpireFar(usize),
    Rename(usize, usize),
    Flush {
        all: bool,
        lazy: bool,
    },
    Eval {
        reads: Vec<usize>,
        writes: Vec<usize>,
        writes_first: bool,
    },
}

impl Op {
    fn argv(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut push = |s: &str| v.push(s.to_string());
        match self {
            Op::Get(k) => {
                push("GET");
                push(&key(*k));
            }
            Op::Mget(ks) | Op::Exists(ks) | Op::Del(ks) => {
                push(match self {
                    Op::Mget(_) => "MGET",
                    Op::Exists(_) => "EXISTS",
                    _ => "DEL",
                });
                for k in ks {
                    push(&key(*k));
                }
            }
            Op::Strlen(k) => {
                push("STRLEN");
                push(&key(*k));
            }
            Op::Set(k, val) => {
                push("SET");
                push(&key(*k));
                push(&val.render());
            }
            Op::Mset(pairs) => {
                push("MSET");
                for (k, val) in pairs {
                    push(&key(*k));
                    push(&val.render());
                }
            }
            Op::Incr(k) => {
                push("INCR");
                push(&key(*k));
            }
            Op::Pexpire(k, ms) => {
                push("PEXPIRE");
                push(&key(*k));
                push(&ms.to_string());
            }
            Op::ExpireNow(k) => {
                push("EXPIRE");
                push(&key(*k));
                push("0");
            }
            Op::ExpireFar(k) => {
                push("EXPIRE");
                push(&key(*k));
                push("3600");
            }
            Op::Rename(a, b) => {
                push("RENAME");
                push(&key(*a));
                push(&key(*b));
            }
            Op::Flush { all, lazy } => {
                push(if *all { "FLUSHALL" } else { "FLUSHDB" });
                if *lazy {
                    push("ASYNC");
                }
            }
            Op::Eval {
                reads,
                writes,
                writes_first,
            } => {
                push("EVAL");
                push(if *writes_first {
                    WRITE_THEN_READ
                } else {
                    READ_THEN_WRITE
                });
                push(&reads.len().to_string());
                for k in reads.iter().chain(writes) {
                    push(&key(*k));
                }
            }
        }
        v
    }
}

/// How a transaction of the walk ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Runs,
    WatchedChanged,
    WatchedUnchanged,
    Aborted,
    Discarded,
}

impl Outcome {
    fn kind(self) -> &'static str {
        match self {
            Outcome::Runs => "multi/exec",
            Outcome::WatchedChanged => "multi/exec, watched key changed",
            Outcome::WatchedUnchanged => "multi/exec, watched key unchanged",
            Outcome::Aborted => "multi/execabort",
            Outcome::Discarded => "multi/discard",
        }
    }
}

/// A reply the model predicts.
#[derive(Clone, Debug, PartialEq)]
enum Want {
    Ok,
    Queued,
    Pong,
    Int(i64),
    Bulk(Option<String>),
    List(Vec<Option<String>>),
    Error,
    Exec(Vec<Want>),
    /// EXEC refused because a watched key changed: a null array.
    Nil,
}

fn bulk_of(r: &Resp) -> Option<Option<String>> {
    match r {
        Resp::Bulk(b) => Some(Some(String::from_utf8_lossy(b).into_owned())),
        Resp::NilBulk | Resp::Null => Some(None),
        _ => None,
    }
}

fn matches(want: &Want, got: &Resp) -> bool {
    match (want, got) {
        (Want::Ok, r) => r.is_ok(),
        (Want::Queued, Resp::Simple(s)) => s == b"QUEUED",
        (Want::Pong, Resp::Simple(s)) => s == b"PONG",
        (Want::Int(n), Resp::Int(m)) => n == m,
        (Want::Bulk(w), r) => bulk_of(r).as_ref() == Some(w),
        (Want::List(ws), Resp::Array(items)) => {
            ws.len() == items.len()
                && ws
                    .iter()
                    .zip(items)
                    .all(|(w, r)| bulk_of(r).as_ref() == Some(w))
        }
        (Want::Error, r) => r.is_error(),
        (Want::Nil, Resp::NilArray | Resp::Null) => true,
        (Want::Exec(ws), Resp::Array(items)) => {
            ws.len() == items.len() && ws.iter().zip(items).all(|(w, r)| matches(w, r))
        }
        _ => false,
    }
}

// ---- the model of the server ----

/// Counts since a client's tracking was last switched on from off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Epoch {
    keys: u64,
    flushes: u64,
    reads: u64,
    /// The wall-clock window (ms) of the step that caused the last invalidation.
    last: Option<(i64, i64)>,
}

#[derive(Clone, Debug)]
struct Tracking {
    on: bool,
    mode: Mode,
    noloop: bool,
    caching: bool,
    epoch: Epoch,
    /// This client ran MULTI/EXEC or EVAL since tracking was switched on: the module may have
    /// gone approximate for good reason.
    exotic: bool,
    bcast: bool,
    /// BCAST prefixes (non-overlapping).
    prefixes: Vec<String>,
    /// BCAST: keys sent per prefix since tracking was switched on.
    prefix_keys: BTreeMap<String, u64>,
}

impl Tracking {
    fn off() -> Tracking {
        Tracking {
            on: false,
            mode: Mode::Default,
            noloop: false,
            caching: false,
            epoch: Epoch::default(),
            exotic: false,
            bcast: false,
            prefixes: Vec::new(),
            prefix_keys: BTreeMap::new(),
        }
    }

    fn describe(&self) -> String {
        if !self.on {
            return "off".into();
        }
        let mut s = if self.bcast {
            format!("bcast{:?}", self.prefixes)
        } else {
            self.mode.name().to_string()
        };
        if self.noloop {
            s.push_str("+noloop");
        }
        s
    }

    /// as tracking.c trackingRememberKeys: OPTIN needs CACHING yes, OPTOUT skips on CACHING no.
    fn remembers(&self) -> bool {
        self.on
            && !self.bcast
            && match self.mode {
                Mode::Default => true,
                Mode::Optin => self.caching,
                Mode::Optout => !self.caching,
            }
    }
}

/// The server's keys and tracking table, as far as the walk's commands go.
struct Model {
    db: BTreeMap<usize, (Value, Ttl)>,
    /// key -> the trackers whose reads the server remembered (keyed by name, not by DB).
    table: BTreeMap<usize, BTreeSet<usize>>,
    clients: Vec<Tracking>,
    /// When the current step started (ms).
    step_start: i64,
    /// Invalidations the current step is expected to cause, per tracker: (keys, flushes).
    caused: BTreeMap<usize, (u64, u64)>,
    lazy_expiries: u64,
    active_expiries: u64,
    /// BCAST: keys modified in the current event-loop cycle (one step), with their last
    /// writer as tracking.c sees it: the tracker whose direct command wrote it, or None (the
    /// writer, a script, an expiry).
    pending: BTreeMap<usize, Option<usize>>,
    /// A script is running: its writes are not the caller's own for BCAST NOLOOP.
    in_script: bool,
}

impl Model {
    fn new() -> Model {
        Model {
            db: BTreeMap::new(),
            table: BTreeMap::new(),
            clients: (0..TRACKERS).map(|_| Tracking::off()).collect(),
            step_start: 0,
            caused: BTreeMap::new(),
            lazy_expiries: 0,
            active_expiries: 0,
            pending: BTreeMap::new(),
            in_script: false,
        }
    }

    fn begin(&mut self, now: i64) {
        self.step_start = now;
        self.caused.clear();
    }

    /// Sends the BCAST messages of this step's cycle (as tracking.c
    /// trackingBroadcastInvalidationMessages: per prefix, each modified key once, NOLOOP leaving
    /// out keys whose last writer was the client itself), then closes the windows opened during
    /// this step.
    fn end(&mut self, now: i64) {
        let pending = std::mem::take(&mut self.pending);
        for (c, st) in self.clients.iter_mut().enumerate() {
            if !st.on || !st.bcast {
                continue;
            }
            for p in &st.prefixes {
                let n = pending
                    .iter()
                    .filter(|(k, w)| {
                        key(**k).starts_with(p.as_str()) && !(st.noloop && **w == Some(c))
                    })
                    .count() as u64;
                if n > 0 {
                    st.epoch.keys += n;
                    *st.prefix_keys.entry(p.clone()).or_default() += n;
                    st.epoch.last = Some((self.step_start, i64::MAX));
                    self.caused.entry(c).or_default().0 += n;
                }
            }
        }
        for c in &mut self.clients {
            if let Some((start, i64::MAX)) = c.epoch.last {
                c.epoch.last = Some((start, now));
            }
        }
    }

    fn tracked_keys(&self, c: usize) -> u64 {
        self.table.values().filter(|s| s.contains(&c)).count() as u64
    }

    fn tracked_key_names(&self, c: usize) -> Vec<String> {
        self.table
            .iter()
            .filter(|(_, s)| s.contains(&c))
            .map(|(k, _)| key(*k))
            .collect()
    }

    fn exotic_step(&mut self, c: usize) {
        self.clients[c].exotic = true;
    }

    fn due(&self) -> Vec<usize> {
        self.db
            .iter()
            .filter(|(_, (_, ttl))| *ttl == Ttl::Due)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The last writer BCAST NOLOOP compares with: the client of a direct command, not of a
    /// script's.
    fn direct(&self, current: Option<usize>) -> Option<usize> {
        if self.in_script {
            None
        } else {
            current
        }
    }

    /// as tracking.c trackingInvalidateKey: the key is remembered for the BCAST messages with
    /// its writer; every remembered client is sent the key unless it is off, BCAST, or NOLOOP
    /// and the current client; the entry goes whole either way.
    fn invalidate(&mut self, k: usize, current: Option<usize>, writer: Option<usize>) {
        self.pending.insert(k, writer);
        let Some(holders) = self.table.remove(&k) else {
            return;
        };
        for c in holders {
            let st = &mut self.clients[c];
            if !st.on || st.bcast || (st.noloop && current == Some(c)) {
                continue;
            }
            st.epoch.keys += 1;
            st.epoch.last = Some((self.step_start, i64::MAX));
            self.caused.entry(c).or_default().0 += 1;
        }
    }

    /// as tracking.c trackingInvalidateKeysOnFlush: a null to every client with tracking on,
    /// NOLOOP or not, and the whole table goes.
    fn flush(&mut self) {
        for (c, st) in self.clients.iter_mut().enumerate() {
            if st.on {
                st.epoch.flushes += 1;
                st.epoch.last = Some((self.step_start, i64::MAX));
                self.caused.entry(c).or_default().1 += 1;
            }
        }
        self.table.clear();
        self.db.clear();
    }

    /// A key lookup: an expired key is deleted first, on behalf of `current`.
    fn lookup(&mut self, k: usize, current: Option<usize>) -> Option<Value> {
        match self.db.get(&k) {
            Some((_, Ttl::Due)) => {
                self.db.remove(&k);
                self.lazy_expiries += 1;
                // deleteExpiredKeyAndPropagate: signalModifiedKey(NULL, ...).
                self.invalidate(k, current, None);
                None
            }
            Some((v, _)) => Some(*v),
            None => None,
        }
    }

    fn remember(&mut self, current: Option<usize>, keys: &[usize]) {
        let Some(c) = current else { return };
        if !self.clients[c].remembers() {
            return;
        }
        for k in keys {
            self.table.entry(*k).or_default().insert(c);
            self.clients[c].epoch.reads += 1;
        }
    }

    fn write(&mut self, k: usize, value: Value, ttl: Ttl, current: Option<usize>) {
        self.db.insert(k, (value, ttl));
        let writer = self.direct(current);
        self.invalidate(k, current, writer);
    }

    /// Runs `op` as a top-level command: afterwards a CACHING window is closed
    /// (as networking.c resetClient: only CLIENT subcommands and MULTI keep it open).
    fn command(&mut self, current: Option<usize>, op: &Op) -> Want {
        let want = self.exec(current, op);
        self.after_command(current);
        want
    }

    fn after_command(&mut self, current: Option<usize>) {
        if let Some(c) = current {
            self.clients[c].caching = false;
        }
    }

    /// The effect of `op` sent by tracker `current` (None: the writer), and its reply.
    fn exec(&mut self, current: Option<usize>, op: &Op) -> Want {
        let text = |v: Option<Value>| v.map(Value::render);
        match op {
            Op::Get(k) => {
                let v = self.lookup(*k, current);
                self.remember(current, &[*k]);
                Want::Bulk(text(v))
            }
            Op::Mget(ks) => {
                let vals = ks.iter().map(|k| text(self.lookup(*k, current))).collect();
                self.remember(current, ks);
                Want::List(vals)
            }
            Op::Exists(ks) => {
                let n = ks
                    .iter()
                    .filter(|k| self.lookup(**k, current).is_some())
                    .count();
                self.remember(current, ks);
                Want::Int(n as i64)
            }
            Op::Strlen(k) => {
                let v = self.lookup(*k, current);
                self.remember(current, &[*k]);
                Want::Int(v.map_or(0, |v| v.render().len() as i64))
            }
            Op::Set(k, v) => {
                self.lookup(*k, current);
                self.write(*k, *v, Ttl::None, current);
                Want::Ok
            }
            Op::Mset(pairs) => {
                for (k, v) in pairs {
                    self.lookup(*k, current);
                    self.write(*k, *v, Ttl::None, current);
                }
                Want::Ok
            }
            Op::Del(ks) => {
                let mut n = 0;
                for k in ks {
                    if self.lookup(*k, current).is_some() {
                        self.db.remove(k);
                        let writer = self.direct(current);
                        self.invalidate(*k, current, writer);
                        n += 1;
                    }
                }
                Want::Int(n)
            }
            Op::Incr(k) => match self.lookup(*k, current) {
                Some(Value::Text) => Want::Error,
                old => {
                    let n = match old {
                        Some(Value::Int(n)) => n + 1,
                        _ => 1,
                    };
                    // INCR keeps the TTL.
                    let ttl = self.db.get(k).map_or(Ttl::None, |(_, t)| *t);
                    self.write(*k, Value::Int(n), ttl, current);
                    Want::Int(n)
                }
            },
            Op::Pexpire(k, _) | Op::ExpireNow(k) | Op::ExpireFar(k) => {
                let Some(v) = self.lookup(*k, current) else {
                    return Want::Int(0);
                };
                match op {
                    Op::ExpireNow(_) => {
                        self.db.remove(k);
                        let writer = self.direct(current);
                        self.invalidate(*k, current, writer);
                    }
                    // The walk waits until the deadline has passed before the next step.
                    Op::Pexpire(..) => self.write(*k, v, Ttl::Due, current),
                    _ => self.write(*k, v, Ttl::Far, current),
                }
                Want::Int(1)
            }
            Op::Rename(a, b) => {
                // as db.c renameGenericCommand: the source is looked up first, then the target;
                // the TTL moves with the value; both keys are signalled.
                let Some(v) = self.lookup(*a, current) else {
                    return Want::Error;
                };
                let ttl = self.db.get(a).map_or(Ttl::None, |(_, t)| *t);
                self.lookup(*b, current);
                self.db.remove(a);
                let writer = self.direct(current);
                self.invalidate(*a, current, writer);
                self.write(*b, v, ttl, current);
                Want::Ok
            }
            Op::Flush { .. } => {
                self.flush();
                Want::Ok
            }
            Op::Eval {
                reads,
                writes,
                writes_first,
            } => {
                self.in_script = true;
                if *writes_first {
                    self.eval_writes(writes, current);
                }
                for k in reads {
                    self.lookup(*k, current);
                    self.remember(current, &[*k]);
                }
                if !writes_first {
                    self.eval_writes(writes, current);
                }
                self.in_script = false;
                Want::Int(1)
            }
        }
    }

    fn eval_writes(&mut self, writes: &[usize], current: Option<usize>) {
        for k in writes {
            self.lookup(*k, current);
            self.write(*k, Value::Int(7), Ttl::None, current);
        }
    }
}

// ---- the connections ----

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Arrived {
    keys: u64,
    flushes: u64,
}

/// A tracking client and where its invalidation messages arrive.
struct Tracker {
    conn: Conn,
    id: i64,
    /// RESP2 trackers redirect to this connection, subscribed to `__redis__:invalidate`.
    sink: Option<Conn>,
    sink_id: i64,
    /// Keys and flushes that arrived since tracking was last switched on from off.
    arrived: Arrived,
    /// The step that last switched tracking on from off.
    on_since: usize,
    /// BCAST prefixes of the current (or last) epoch: keys are attributed to the one they
    /// start with.
    prefixes: Vec<String>,
    /// BCAST: keys that arrived per prefix since tracking was last switched on from off.
    prefix_arrived: BTreeMap<String, u64>,
    /// The names of the keys that arrived since `received` was last cleared.
    received: Vec<String>,
    /// Keys that arrived in BCAST messages, over the whole walk (for the summary).
    bcast_total: u64,
}

enum Message {
    Keys(Vec<String>),
    Flush,
}

/// What `frame` says, if it is an invalidation message; `Err` for any other push or message.
fn message(frame: &Resp) -> Result<Option<Message>, String> {
    let payload = match frame {
        // RESP3: `>2 invalidate <keys|null>`
        Resp::Push(items) => match items.as_slice() {
            [Resp::Bulk(kind), p] if kind == b"invalidate" => p,
            _ => return Err(format!("unexpected push {frame}")),
        },
        // RESP2 redirect: `message __redis__:invalidate <keys|null>`
        Resp::Array(items) => match items.as_slice() {
            [Resp::Bulk(kind), Resp::Bulk(ch), p]
                if kind == b"message" && ch == CHANNEL.as_bytes() =>
            {
                p
            }
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    match payload {
        Resp::Null | Resp::NilBulk | Resp::NilArray => Ok(Some(Message::Flush)),
        Resp::Array(keys) => {
            if keys.is_empty()
                || !keys
                    .iter()
                    .all(|k| matches!(k, Resp::Bulk(b) if b.starts_with(b"acct:")))
            {
                return Err(format!("invalidation of unexpected keys: {frame}"));
            }
            Ok(Some(Message::Keys(
                keys.iter()
                    .filter_map(|k| match k {
                        Resp::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    })
                    .collect(),
            )))
        }
        _ => Err(format!("invalidation with an unexpected payload: {frame}")),
    }
}

fn is_pong(frame: &Resp) -> bool {
    match frame {
        Resp::Simple(s) => s == b"PONG",
        // PING in RESP2 Pub/Sub mode answers `pong ""`.
        Resp::Array(items) => matches!(items.first(), Some(Resp::Bulk(b)) if b == b"pong"),
        _ => false,
    }
}

/// Reads the next reply on `conn`, setting push frames aside in `conn.pushes`, including those
/// written inside the reply (Redis 7.0, in an EXEC reply).
fn read_reply(conn: &mut Conn) -> Result<Resp, String> {
    loop {
        match conn.try_read_frame()? {
            (Resp::Push(p), _) => conn.pushes.push(Resp::Push(p)),
            (frame, raw) => {
                if frame.items().is_some() {
                    conn.pushes.extend(nested_pushes(&raw)?);
                }
                return Ok(frame);
            }
        }
    }
}

impl Tracker {
    /// Counts every message that reached this tracker: those set aside while reading its
    /// replies, then everything that arrives at its receiver before the answer to a PING, which
    /// the server sends after anything already queued there.
    fn drain(&mut self) -> Result<(), String> {
        let mut got = Arrived::default();
        let mut msgs = Vec::new();
        for p in std::mem::take(&mut self.conn.pushes) {
            match message(&p)? {
                Some(m) => msgs.push(m),
                None => return Err(format!("unexpected frame {p}")),
            }
        }
        let rx = match self.sink.as_mut() {
            Some(sink) => sink,
            None => &mut self.conn,
        };
        rx.send(&["PING"]);
        loop {
            let (frame, _) = rx.try_read_frame()?;
            if is_pong(&frame) {
                break;
            }
            match message(&frame)? {
                Some(m) => msgs.push(m),
                None => return Err(format!("unexpected frame while draining: {frame}")),
            }
        }
        for m in msgs {
            let keys = match m {
                Message::Flush => {
                    got.flushes += 1;
                    continue;
                }
                Message::Keys(keys) => keys,
            };
            got.keys += keys.len() as u64;
            if !self.prefixes.is_empty() {
                // One message per prefix, keys in byte order, each once.
                let p = self
                    .prefixes
                    .iter()
                    .find(|p| keys[0].starts_with(p.as_str()))
                    .ok_or_else(|| {
                        format!("BCAST message {keys:?} under none of {:?}", self.prefixes)
                    })?;
                if !keys.iter().all(|k| k.starts_with(p.as_str()))
                    || !keys.windows(2).all(|w| w[0] < w[1])
                {
                    return Err(format!(
                        "BCAST message {keys:?}: not the sorted keys of one prefix of {:?}",
                        self.prefixes
                    ));
                }
                *self.prefix_arrived.entry(p.clone()).or_default() += keys.len() as u64;
                self.bcast_total += keys.len() as u64;
            }
            self.received.extend(keys);
        }
        self.arrived.keys += got.keys;
        self.arrived.flushes += got.flushes;
        Ok(())
    }
}

// ---- the module's reply ----

#[derive(Clone, Debug)]
struct Accounting {
    on: bool,
    id: i64,
    delivery: String,
    tracked_keys: i64,
    tracked_reads: i64,
    invalidated_keys: i64,
    flush_invalidations: i64,
    last_invalidation: i64,
    /// `prefix-stats`, entries with 0 left out.
    prefix_stats: BTreeMap<String, i64>,
    counters: String,
    dropped_keys: i64,
    dropped_flushes: i64,
    reply: String,
}

impl Accounting {
    fn exact(&self) -> bool {
        self.counters == "exact"
    }

    fn counters_line(&self) -> String {
        format!(
            "tracked-keys {} tracked-reads {} invalidated-keys {} flush-invalidations {} last-invalidation {} counters {}",
            self.tracked_keys,
            self.tracked_reads,
            self.invalidated_keys,
            self.flush_invalidations,
            self.last_invalidation,
            self.counters
        )
    }
}

/// `TRACKINFO.CLIENT` in RESP2: a flat name/value array with exactly [`REPLY_KEYS`], in order.
fn parse_accounting(r: &Resp) -> Result<Accounting, String> {
    let items = r
        .items()
        .filter(|_| r.marker() == '*')
        .ok_or_else(|| format!("not an array: {r}"))?;
    let names: Vec<String> = items
        .iter()
        .step_by(2)
        .map(|n| n.text().unwrap_or_else(|| n.to_string()))
        .collect();
    if names != REPLY_KEYS || items.len() != 2 * REPLY_KEYS.len() {
        return Err(format!(
            "the reply's names are {names:?}, expected {REPLY_KEYS:?}"
        ));
    }
    let value = |name: &str| {
        let i = REPLY_KEYS.iter().position(|k| *k == name).unwrap_or(0);
        &items[2 * i + 1]
    };
    let int = |name: &str| {
        value(name)
            .int()
            .ok_or_else(|| format!("`{name}` is not an integer: {}", value(name)))
    };
    let text = |name: &str| match value(name) {
        Resp::Bulk(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        other => Err(format!("`{name}` is not a bulk string: {other}")),
    };
    let on = match value("flags").items().and_then(|f| f.first()) {
        Some(Resp::Bulk(b)) => b == b"on",
        _ => return Err(format!("`flags` is not a list starting with on/off: {r}")),
    };
    let stats = value("prefix-stats");
    let Some(flat) = stats.items().filter(|_| stats.marker() == '*') else {
        return Err(format!("`prefix-stats` is not an array in RESP2: {stats}"));
    };
    if flat.len() % 2 != 0 {
        return Err(format!("`prefix-stats` has an odd length: {stats}"));
    }
    let mut prefix_stats = BTreeMap::new();
    for pair in flat.chunks(2) {
        let (Resp::Bulk(p), Some(n)) = (&pair[0], pair[1].int()) else {
            return Err(format!(
                "`prefix-stats` is not prefix/integer pairs: {stats}"
            ));
        };
        let p = String::from_utf8_lossy(p).into_owned();
        if prefix_stats.contains_key(&p) {
            return Err(format!("`prefix-stats` names {p:?} twice: {stats}"));
        }
        if n != 0 {
            prefix_stats.insert(p, n);
        }
    }
    Ok(Accounting {
        on,
        id: int("id")?,
        delivery: text("delivery")?,
        tracked_keys: int("tracked-keys")?,
        tracked_reads: int("tracked-reads")?,
        invalidated_keys: int("invalidated-keys")?,
        flush_invalidations: int("flush-invalidations")?,
        last_invalidation: int("last-invalidation")?,
        prefix_stats,
        counters: text("counters")?,
        dropped_keys: int("dropped-keys")?,
        dropped_flushes: int("dropped-flushes")?,
        reply: r.to_string(),
    })
}

// ---- the walk ----

/// A harness error (the model or the receivers disagree with the server: stop) or a module
/// mismatch (the module disagrees with what the server did).
enum Failure {
    Harness(String),
    Module(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Harness(e)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Writer,
    Tracker(usize),
    /// The RESP2 client with tracking on and no REDIRECT, whose messages the server drops.
    Dropped,
}

/// A RESP2 connection with tracking on and no REDIRECT: the server discards its invalidations,
/// and the module must say `delivery dropped`.
struct Dropped {
    conn: Conn,
    id: i64,
}

#[derive(Default)]
struct Stats {
    kinds: BTreeMap<&'static str, usize>,
    exact: usize,
    approximate: usize,
    arrived_keys: u64,
    arrived_flushes: u64,
    end_tracked_keys: u64,
    own_noloop_skips: usize,
    /// Approximate checks of clients that ran no MULTI/EXEC or EVAL since tracking was switched
    /// on, and the first of them.
    plain_approximate: usize,
    first_plain_approximate: Option<String>,
    /// Checks of BCAST clients: exact, approximate.
    bcast_checks: (usize, usize),
    /// Reconnected trackers; checks of the RESP2 client without redirect.
    reconnects: usize,
    dropped_checks: usize,
    /// TRACKINFO.KEYS listings compared with the final writes' invalidations.
    keys_listings: usize,
}

struct Walk<'s> {
    server: &'s Server,
    seed: u64,
    rng: Rng,
    step: usize,
    writer: Conn,
    observer: Conn,
    trackers: Vec<Tracker>,
    model: Model,
    history: VecDeque<String>,
    stats: Stats,
    keep_going: bool,
    /// (kind, count, first report) of module mismatches, with `keep_going`.
    mismatches: Vec<(String, usize, String)>,
    /// Every step, when `TRACKINFO_FUZZ_LOG` names a file.
    full_log: Option<std::fs::File>,
    dropped: Option<Dropped>,
    /// BCAST keys that arrived at trackers since closed.
    closed_bcast_keys: u64,
}

fn short(r: &Resp) -> String {
    let s = r.to_string();
    if s.len() > 120 {
        format!("{}…", &s[..s.floor_char_boundary(120)])
    } else {
        s
    }
}

/// Tracker `i`'s connections, tracking off: trackers 0-2 are RESP3, 3-5 RESP2 with a
/// subscribed connection of their own to redirect to.
fn open_tracker(server: &Server, i: usize) -> Result<Tracker, String> {
    let resp3 = i < TRACKERS / 2;
    let (sink, sink_id) = if resp3 {
        (None, 0)
    } else {
        let mut sink = server.conn_proto(2);
        let sink_id = sink.client_id();
        sink.send(&["SUBSCRIBE", CHANNEL]);
        let r = read_reply(&mut sink)?;
        if !matches!(r.items(), Some([Resp::Bulk(b), ..]) if b == b"subscribe") {
            return Err(format!("SUBSCRIBE {CHANNEL} answered {r}"));
        }
        (Some(sink), sink_id)
    };
    let mut conn = server.conn_proto(if resp3 { 3 } else { 2 });
    let id = conn.client_id();
    Ok(Tracker {
        conn,
        id,
        sink,
        sink_id,
        arrived: Arrived::default(),
        on_since: 0,
        prefixes: Vec::new(),
        prefix_arrived: BTreeMap::new(),
        received: Vec::new(),
        bcast_total: 0,
    })
}

impl<'s> Walk<'s> {
    fn new(server: &'s Server, seed: u64, keep_going: bool) -> Result<Walk<'s>, String> {
        let mut observer = server.conn_proto(2);
        // Expiry only where the walk knows it happens (see the file's doc); a higher hz makes
        // the active-expiry steps short.
        observer.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        observer.ok(&["CONFIG", "SET", "hz", "100"]);
        let writer = server.conn_proto(2);
        let mut trackers = Vec::new();
        for i in 0..TRACKERS {
            trackers.push(open_tracker(server, i)?);
        }
        let mut walk = Walk {
            server,
            seed,
            rng: Rng(seed),
            step: 0,
            writer,
            observer,
            trackers,
            model: Model::new(),
            history: VecDeque::new(),
            stats: Stats::default(),
            keep_going,
            mismatches: Vec::new(),
            full_log: full_log(server),
            dropped: None,
            closed_bcast_keys: 0,
        };
        for i in 0..TRACKERS {
            walk.tracking_on(i).map_err(|f| match f {
                Failure::Harness(e) | Failure::Module(e) => e,
            })?;
        }
        Ok(walk)
    }

    fn log(&mut self, line: String) {
        if let Some(f) = self.full_log.as_mut() {
            let _ = writeln!(f, "{line}");
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(line);
    }

    fn label(&self, who: Who) -> String {
        match who {
            Who::Writer => "writer".into(),
            Who::Dropped => format!("dropped(id={})", self.dropped.as_ref().map_or(-1, |d| d.id)),
            Who::Tracker(i) => {
                let t = &self.trackers[i];
                format!(
                    "t{i}(id={} {} {})",
                    t.id,
                    if t.sink.is_some() { "RESP2" } else { "RESP3" },
                    self.model.clients[i].describe()
                )
            }
        }
    }

    fn conn(&mut self, who: Who) -> &mut Conn {
        match who {
            Who::Writer => &mut self.writer,
            Who::Tracker(i) => &mut self.trackers[i].conn,
            Who::Dropped => {
                &mut self
                    .dropped
                    .as_mut()
                    .expect("the dropped-delivery client is open")
                    .conn
            }
        }
    }

    /// Sends `cmds` on `who` in one pipeline, reads one reply each and checks it against the
    /// model's prediction. The model has already applied the commands; `Model::begin` was called
    /// before they were predicted, and `Model::end` is called once the replies are in.
    fn run(&mut self, who: Who, cmds: Vec<(Vec<String>, Want)>) -> Result<(), Failure> {
        let label = self.label(who);
        let conn = self.conn(who);
        for (argv, _) in &cmds {
            conn.send(argv);
        }
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in &cmds {
            replies.push(read_reply(conn)?);
        }
        self.model.end(now_ms());
        let mut line = format!("step {} @{}: {label} ->", self.step, self.model.step_start);
        for ((argv, _), r) in cmds.iter().zip(&replies) {
            let shown = if argv[0] == "EVAL" {
                format!("EVAL <{}> {}", argv[1].len(), show_command(&argv[2..]))
            } else {
                show_command(argv)
            };
            let _ = write!(line, " {shown} => {};", short(r));
        }
        if !self.model.caused.is_empty() {
            let caused: Vec<String> = self
                .model
                .caused
                .iter()
                .map(|(c, (k, f))| format!("t{c}:{k}k{f}f"))
                .collect();
            let _ = write!(line, " [model: {}]", caused.join(" "));
        }
        self.log(line);
        for ((argv, want), got) in cmds.iter().zip(&replies) {
            if !matches(want, got) {
                return Err(Failure::Harness(format!(
                    "{label}: {} answered {got}; the model expected {want:?}",
                    show_command(argv)
                )));
            }
        }
        Ok(())
    }

    fn kind(&mut self, name: &'static str) {
        *self.stats.kinds.entry(name).or_default() += 1;
    }

    // ---- command generators ----

    fn read_op(&mut self) -> Op {
        match self.rng.below(4) {
            0 => Op::Get(self.rng.below(KEY_SPACE)),
            1 => {
                let n = 2 + self.rng.below(2);
                Op::Mget(self.rng.distinct(n, KEY_SPACE))
            }
            2 => {
                let n = 1 + self.rng.below(2);
                Op::Exists(self.rng.distinct(n, KEY_SPACE))
            }
            _ => Op::Strlen(self.rng.below(KEY_SPACE)),
        }
    }

    fn write_op(&mut self, may_pexpire: bool) -> Op {
        let k = self.rng.below(KEY_SPACE);
        match self.rng.below(100) {
            0..=29 => Op::Set(k, Value::Int(self.rng.below(100) as i64)),
            30..=34 => Op::Set(k, Value::Text),
            35..=44 => {
                let ks = self.rng.distinct(2, KEY_SPACE);
                Op::Mset(
                    ks.into_iter()
                        .map(|k| (k, Value::Int(self.rng.below(100) as i64)))
                        .collect(),
                )
            }
            45..=59 => {
                let n = 1 + self.rng.below(2);
                Op::Del(self.rng.distinct(n, KEY_SPACE))
            }
            60..=74 => Op::Incr(k),
            75..=80 if may_pexpire => Op::Pexpire(k, 1 + self.rng.below(3) as i64),
            75..=84 => Op::ExpireNow(k),
            85..=89 => Op::ExpireFar(k),
            _ => {
                let ks = self.rng.distinct(2, KEY_SPACE);
                Op::Rename(ks[0], ks[1])
            }
        }
    }

    /// For an OPTIN or OPTOUT tracker, sometimes `CLIENT CACHING yes|no` first. Sometimes a
    /// CLIENT subcommand follows, which keeps the window open, or a PING, which spends it.
    fn caching_prefix(&mut self, i: usize, cmds: &mut Vec<(Vec<String>, Want)>) {
        let st = &self.model.clients[i];
        let word = match st.mode {
            _ if !st.on => return,
            Mode::Optin if self.rng.chance(60) => "yes",
            Mode::Optout if self.rng.chance(30) => "no",
            _ => return,
        };
        self.model.clients[i].caching = true;
        cmds.push((argv(&["CLIENT", "CACHING", word]), Want::Ok));
        match self.rng.below(10) {
            0 => cmds.push((argv(&["CLIENT", "GETNAME"]), Want::Bulk(None))),
            1 => {
                cmds.push((argv(&["PING"]), Want::Pong));
                self.model.after_command(Some(i));
            }
            _ => {}
        }
    }

    /// Applies `op` to the model as sent by `who`, and queues it with its predicted reply.
    fn push_op(&mut self, who: Who, op: &Op, cmds: &mut Vec<(Vec<String>, Want)>) {
        let current = match who {
            Who::Writer => None,
            Who::Tracker(i) => Some(i),
            Who::Dropped => None,
        };
        if let (Some(c), Op::Set(..) | Op::Mset(..) | Op::Del(..) | Op::Incr(..)) = (current, op) {
            if self.model.clients[c].noloop {
                self.stats.own_noloop_skips += 1;
            }
        }
        let want = self.model.command(current, op);
        cmds.push((op.argv(), want));
    }

    // ---- steps ----

    fn step(&mut self) -> Result<(), Failure> {
        match self.rng.below(1000) {
            0..=379 => self.tracker_read(),
            380..=699 => self.write(Who::Writer),
            700..=849 => {
                let i = self.rng.below(TRACKERS);
                self.write(Who::Tracker(i))
            }
            850..=909 => self.switch(),
            910..=929 => self.flush(),
            // The module must stay exact through every transaction outcome.
            930..=959 => self.multi(),
            // Rare: the module may go approximate for a client that runs these.
            960..=964 => self.eval(),
            965..=974 => self.active_expiry(),
            975..=977 => self.dropped_step(),
            978..=981 => self.reconnect(),
            _ => self.tracker_read(),
        }
    }

    fn tracker_read(&mut self) -> Result<(), Failure> {
        let i = self.rng.below(TRACKERS);
        self.read_by(i)
    }

    fn read_by(&mut self, i: usize) -> Result<(), Failure> {
        self.kind("read");
        self.model.begin(now_ms());
        let mut cmds = Vec::new();
        self.caching_prefix(i, &mut cmds);
        let op = self.read_op();
        self.push_op(Who::Tracker(i), &op, &mut cmds);
        self.run(Who::Tracker(i), cmds)
    }

    fn write(&mut self, who: Who) -> Result<(), Failure> {
        self.kind(if who == Who::Writer {
            "writer write"
        } else {
            "tracker write"
        });
        self.model.begin(now_ms());
        let op = self.write_op(true);
        let mut cmds = Vec::new();
        self.push_op(who, &op, &mut cmds);
        self.run(who, cmds)?;
        if let Op::Pexpire(_, ms) = op {
            // The server set the deadline no later than now + ms.
            self.wait_server_clock_past(now_ms() + ms)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.kind("flush");
        let who = if self.rng.chance(50) {
            Who::Writer
        } else {
            Who::Tracker(self.rng.below(TRACKERS))
        };
        let op = Op::Flush {
            all: self.rng.chance(50),
            lazy: self.rng.chance(25),
        };
        self.model.begin(now_ms());
        let mut cmds = Vec::new();
        self.push_op(who, &op, &mut cmds);
        self.run(who, cmds)
    }

    fn switch(&mut self) -> Result<(), Failure> {
        let i = self.rng.below(TRACKERS);
        // A BCAST client cannot switch ON again without BCAST: it goes off instead.
        if self.model.clients[i].on && (self.model.clients[i].bcast || self.rng.chance(40)) {
            self.kind("tracking off");
            self.model.begin(now_ms());
            let st = &mut self.model.clients[i];
            // as tracking.c disableTracking: the options and CACHING go, the table entries stay.
            st.on = false;
            st.mode = Mode::Default;
            st.noloop = false;
            st.caching = false;
            st.bcast = false;
            st.prefixes.clear();
            self.run(
                Who::Tracker(i),
                vec![(argv(&["CLIENT", "TRACKING", "OFF"]), Want::Ok)],
            )
        } else {
            self.tracking_on(i)
        }
    }

    /// `CLIENT TRACKING ON`: from off with any options (a new epoch: everything that arrived
    /// before is drained and checked first), or again while on, where OPTIN and OPTOUT may not
    /// replace each other.
    fn tracking_on(&mut self, i: usize) -> Result<(), Failure> {
        let was_on = self.model.clients[i].on;
        let old = self.model.clients[i].mode;
        let mode = match self.rng.below(4) {
            0 | 1 => Mode::Default,
            2 if old != Mode::Optout || !was_on => Mode::Optin,
            3 if old != Mode::Optin || !was_on => Mode::Optout,
            _ => old,
        };
        let noloop = self.rng.chance(30);
        let bcast = !was_on && BCAST_CAPABLE.contains(&i) && self.rng.chance(40);
        let mut prefixes = Vec::new();
        if bcast {
            let mut groups: Vec<char> = GROUPS.to_vec();
            for _ in 0..1 + self.rng.below(3) {
                let g = groups.remove(self.rng.below(groups.len()));
                prefixes.push(if self.rng.chance(50) {
                    format!("acct:{g}:")
                } else {
                    format!("acct:{g}")
                });
            }
        }
        if was_on {
            self.kind("tracking on again");
        } else {
            self.kind("tracking on");
            self.trackers[i].drain()?;
            self.check_arrivals(i, "before tracking is switched on again")?;
            self.trackers[i].arrived = Arrived::default();
            self.trackers[i].on_since = self.step;
            self.trackers[i].prefixes = prefixes.clone();
            self.trackers[i].prefix_arrived.clear();
            self.model.clients[i].epoch = Epoch::default();
            self.model.clients[i].prefix_keys.clear();
            self.model.clients[i].exotic = false;
            self.model.after_command(Some(i));
        }
        let mut cmd = argv(&["CLIENT", "TRACKING", "ON"]);
        if self.trackers[i].sink.is_some() {
            cmd.push("REDIRECT".into());
            cmd.push(self.trackers[i].sink_id.to_string());
        }
        let mode = if bcast { Mode::Default } else { mode };
        match mode {
            Mode::Default => {}
            Mode::Optin => cmd.push("OPTIN".into()),
            Mode::Optout => cmd.push("OPTOUT".into()),
        }
        if bcast {
            cmd.push("BCAST".into());
            for p in &prefixes {
                cmd.push("PREFIX".into());
                cmd.push(p.clone());
            }
        }
        if noloop {
            cmd.push("NOLOOP".into());
        }
        self.model.begin(now_ms());
        let st = &mut self.model.clients[i];
        st.on = true;
        st.mode = mode;
        st.noloop = noloop;
        if !was_on {
            st.bcast = bcast;
            st.prefixes = prefixes;
        }
        self.run(Who::Tracker(i), vec![(cmd, Want::Ok)])
    }

    /// Opens the RESP2 client without REDIRECT (tracking on), or lets it read or write, or
    /// closes it.
    fn dropped_step(&mut self) -> Result<(), Failure> {
        if self.dropped.is_none() {
            self.kind("dropped-delivery client opened");
            let mut conn = self.server.conn_proto(2);
            let id = conn.client_id();
            self.dropped = Some(Dropped { conn, id });
            let mut cmd = argv(&["CLIENT", "TRACKING", "ON"]);
            if self.rng.chance(30) {
                cmd.push("NOLOOP".into());
            }
            self.model.begin(now_ms());
            return self.run(Who::Dropped, vec![(cmd, Want::Ok)]);
        }
        if self.rng.chance(35) {
            self.kind("dropped-delivery client closed");
            self.check_dropped_silent()?;
            if let Some(d) = self.dropped.take() {
                drop(d.conn);
                self.server.wait_client_gone(&mut self.observer, d.id);
                self.log(format!(
                    "step {}: dropped-delivery client id {} closed",
                    self.step, d.id
                ));
            }
            return Ok(());
        }
        self.kind("dropped-delivery client command");
        self.model.begin(now_ms());
        let op = if self.rng.chance(70) {
            self.read_op()
        } else {
            self.write_op(false)
        };
        let mut cmds = Vec::new();
        self.push_op(Who::Dropped, &op, &mut cmds);
        self.run(Who::Dropped, cmds)
    }

    /// The RESP2 client without REDIRECT receives nothing: a PING's answer is the next frame.
    fn check_dropped_silent(&mut self) -> Result<(), Failure> {
        let Some(d) = self.dropped.as_mut() else {
            return Ok(());
        };
        if !d.conn.pushes.is_empty() {
            return Err(Failure::Harness(format!(
                "the RESP2 client without REDIRECT (id {}) received {:?}",
                d.id, d.conn.pushes
            )));
        }
        d.conn.send(&["PING"]);
        let (frame, _) = d.conn.try_read_frame()?;
        if !is_pong(&frame) {
            return Err(Failure::Harness(format!(
                "the RESP2 client without REDIRECT (id {}) received {frame} before the answer to PING",
                d.id
            )));
        }
        Ok(())
    }

    /// Closes tracker `i` (and its subscriber) and opens a new one in its place: the module
    /// must forget the old id.
    fn reconnect(&mut self) -> Result<(), Failure> {
        self.kind("reconnect");
        let i = self.rng.below(TRACKERS);
        self.trackers[i].drain()?;
        self.check_arrivals(i, "before the tracker is closed")?;
        let new = open_tracker(self.server, i)?;
        let old = std::mem::replace(&mut self.trackers[i], new);
        self.closed_bcast_keys += old.bcast_total;
        let (old_id, old_sink_id) = (old.id, old.sink_id);
        let Tracker { conn, sink, .. } = old;
        drop(conn);
        self.server.wait_client_gone(&mut self.observer, old_id);
        if let Some(sink) = sink {
            drop(sink);
            self.server
                .wait_client_gone(&mut self.observer, old_sink_id);
        }
        // The server's table keeps the old id until the keys are written, but sends it nothing.
        self.model.clients[i] = Tracking::off();
        for holders in self.model.table.values_mut() {
            holders.remove(&i);
        }
        let line = format!(
            "step {}: t{i} (id {old_id}) closed, reopened as id {}",
            self.step, self.trackers[i].id
        );
        self.log(line);
        self.stats.reconnects += 1;
        let r = self
            .observer
            .cmd(&["TRACKINFO.CLIENT", &old_id.to_string()]);
        if !(r.is_error() && r.to_string().contains("No such client")) {
            self.mismatch(format!(
                "reconnect: t{i}'s old connection (id {old_id}) is gone, but TRACKINFO.CLIENT {old_id} answers {r}, expected ERR No such client"
            ))?;
        }
        self.tracking_on(i)
    }

    /// A transaction of reads and writes, with each outcome EXEC can have: it runs; a WATCHed
    /// key changed, or did not; a queuing error aborts it (EXECABORT); DISCARD. The module must
    /// stay exact through all of them (issue 12): only what EXEC ran counts.
    fn multi(&mut self) -> Result<(), Failure> {
        let i = self.rng.below(TRACKERS);
        let outcome = match self.rng.below(10) {
            0..=3 => Outcome::Runs,
            4..=5 => Outcome::WatchedChanged,
            6 => Outcome::WatchedUnchanged,
            7..=8 => Outcome::Aborted,
            _ => Outcome::Discarded,
        };
        self.kind(outcome.kind());
        self.model.begin(now_ms());
        if matches!(outcome, Outcome::WatchedChanged | Outcome::WatchedUnchanged) {
            // Not a key that is due to expire: EXEC fails when a watched key expires too.
            let due = self.model.due();
            let free: Vec<usize> = (0..KEY_SPACE).filter(|k| !due.contains(k)).collect();
            if free.is_empty() {
                return Ok(());
            }
            let w = free[self.rng.below(free.len())];
            self.model.after_command(Some(i));
            self.run(Who::Tracker(i), vec![(argv(&["WATCH", &key(w)]), Want::Ok)])?;
            if outcome == Outcome::WatchedChanged {
                let mut cmds = Vec::new();
                let op = Op::Set(w, Value::Int(self.rng.below(100) as i64));
                self.push_op(Who::Writer, &op, &mut cmds);
                self.run(Who::Writer, cmds)?;
            }
            self.model.begin(now_ms());
        }
        // Where a queuing error aborts it (an unknown command, a wrong number of arguments), or,
        // in one that runs, where a MULTI or WATCH inside MULTI is refused without queuing
        // anything (it takes no place in the transaction).
        let n = 2 + self.rng.below(3);
        let odd_at = self.rng.below(n + 1);
        let odd = match outcome {
            Outcome::Aborted if self.rng.chance(50) => vec!["NOSUCHCOMMAND", "x"],
            Outcome::Aborted => vec!["GET"],
            Outcome::Runs if self.rng.chance(30) => vec!["MULTI"],
            Outcome::Runs if self.rng.chance(30) => vec!["WATCH", "acct:a:0"],
            _ => Vec::new(),
        };
        // Valkey refuses MULTI and WATCH inside MULTI as queuing errors: EXECABORT.
        let outcome = match (outcome, odd.first()) {
            (Outcome::Runs, Some(&"MULTI" | &"WATCH"))
                if self.server.info.family == common::Family::Valkey =>
            {
                Outcome::Aborted
            }
            _ => outcome,
        };
        let runs = matches!(outcome, Outcome::Runs | Outcome::WatchedUnchanged);
        let mut cmds = Vec::new();
        // A CACHING window opened before MULTI covers the whole transaction.
        self.caching_prefix(i, &mut cmds);
        cmds.push((argv(&["MULTI"]), Want::Ok));
        let mut wants = Vec::new();
        for j in 0..=n {
            if j == odd_at && !odd.is_empty() {
                cmds.push((argv(&odd), Want::Error));
            }
            if j == n {
                break;
            }
            let op = if self.rng.chance(65) {
                self.read_op()
            } else {
                self.write_op(false)
            };
            if runs {
                wants.push(self.model.exec(Some(i), &op));
            }
            cmds.push((op.argv(), Want::Queued));
        }
        self.model.after_command(Some(i));
        cmds.push(match outcome {
            Outcome::Runs | Outcome::WatchedUnchanged => (argv(&["EXEC"]), Want::Exec(wants)),
            Outcome::WatchedChanged => (argv(&["EXEC"]), Want::Nil),
            Outcome::Aborted => (argv(&["EXEC"]), Want::Error),
            Outcome::Discarded => (argv(&["DISCARD"]), Want::Ok),
        });
        self.run(Who::Tracker(i), cmds)
    }

    fn eval(&mut self) -> Result<(), Failure> {
        self.kind("eval");
        let i = self.rng.below(TRACKERS);
        self.model.exotic_step(i);
        let due = self.model.due();
        let n = 1 + self.rng.below(2);
        let mut reads = self.rng.distinct(n, KEY_SPACE);
        if reads.len() > 1 && reads.iter().any(|k| due.contains(k)) {
            reads.truncate(1);
        }
        let n = self.rng.below(2);
        let writes = self.rng.distinct(n, KEY_SPACE);
        let op = Op::Eval {
            reads,
            writes,
            writes_first: self.rng.chance(50),
        };
        self.model.begin(now_ms());
        let mut cmds = Vec::new();
        self.caching_prefix(i, &mut cmds);
        self.push_op(Who::Tracker(i), &op, &mut cmds);
        self.run(Who::Tracker(i), cmds)
    }

    /// Lets active expiry delete every key whose deadline has passed, with no client current,
    /// and waits until DBSIZE says it is done.
    fn active_expiry(&mut self) -> Result<(), Failure> {
        let due = self.model.due();
        if due.is_empty() {
            return self.write(Who::Writer);
        }
        self.kind("active expiry");
        let t0 = now_ms();
        self.model.begin(t0);
        let left = (self.model.db.len() - due.len()) as i64;
        self.observer.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut size = -1;
        while size != left {
            if Instant::now() > deadline {
                self.observer.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
                return Err(Failure::Harness(format!(
                    "active expiry: DBSIZE is {size} after 10s; the model expects {left} once {} keys are expired",
                    due.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
            size = self.observer.cmd(&["DBSIZE"]).int().unwrap_or(-2);
        }
        self.observer.ok(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        for k in &due {
            self.model.db.remove(k);
            self.model.invalidate(*k, None, None);
        }
        self.model.active_expiries += due.len() as u64;
        self.model.end(now_ms());
        let keys: Vec<String> = due.iter().map(|k| key(*k)).collect();
        let caused: Vec<String> = self
            .model
            .caused
            .iter()
            .map(|(c, (k, f))| format!("t{c}:{k}k{f}f"))
            .collect();
        let line = format!(
            "step {} @{t0}: active expiry of {} [model: {}]",
            self.step,
            keys.join(" "),
            caused.join(" ")
        );
        self.log(line);
        Ok(())
    }

    /// Polls the server's TIME until it is past `ms`.
    fn wait_server_clock_past(&mut self, ms: i64) -> Result<(), Failure> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = self.observer.cmd(&["TIME"]);
            let parts: Vec<i64> = r
                .items()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.text().and_then(|t| t.parse().ok()))
                .collect();
            let [secs, micros] = parts[..] else {
                return Err(Failure::Harness(format!("TIME answered {r}")));
            };
            if secs * 1000 + micros / 1000 > ms {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Failure::Harness(format!(
                    "the server's clock did not pass {ms} within 5s"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    // ---- checks ----

    /// The harness's own check: what arrived equals what the model says the server sent.
    fn check_arrivals(&self, i: usize, when: &str) -> Result<(), String> {
        let arrived = self.trackers[i].arrived;
        let e = self.model.clients[i].epoch;
        if arrived.keys != e.keys || arrived.flushes != e.flushes {
            return Err(format!(
                "{when}: t{i} (id {}) received {} key invalidations and {} flushes; the model of the server predicts {} and {}",
                self.trackers[i].id, arrived.keys, arrived.flushes, e.keys, e.flushes
            ));
        }
        Ok(())
    }

    fn drain_all(&mut self) -> Result<(), Failure> {
        for i in 0..TRACKERS {
            self.trackers[i].drain()?;
            if self.trackers[i].sink.is_none() {
                // The PING went on the tracker's own connection.
                self.model.after_command(Some(i));
            }
        }
        Ok(())
    }

    /// Drains every receiver, checks the harness against the server, then every tracking
    /// client's accounting against what arrived. Returns the module's replies.
    fn checkpoint(&mut self, when: &str) -> Result<Vec<Option<Accounting>>, Failure> {
        self.drain_all()?;
        for i in 0..TRACKERS {
            self.check_arrivals(i, when)?;
        }
        let size = self.observer.cmd(&["DBSIZE"]);
        if size.int() != Some(self.model.db.len() as i64) {
            return Err(Failure::Harness(format!(
                "{when}: DBSIZE is {size}; the model has {} keys",
                self.model.db.len()
            )));
        }
        let mut out = Vec::new();
        for i in 0..TRACKERS {
            let id = self.trackers[i].id.to_string();
            let r = self.observer.cmd(&["TRACKINFO.CLIENT", &id]);
            if let Some(f) = self.full_log.as_mut() {
                let _ = writeln!(f, "  {when}: t{i} {r}");
            }
            let found = match parse_accounting(&r) {
                Ok(a) => {
                    let problems = self.judge(i, &a);
                    if !problems.is_empty() {
                        self.mismatch(format!(
                            "{when}: {}\n  module reply: {}",
                            problems.join("\n  "),
                            a.reply
                        ))?;
                    }
                    Some(a)
                }
                Err(e) => {
                    self.mismatch(format!("{when}: TRACKINFO.CLIENT {id}: {e}"))?;
                    None
                }
            };
            out.push(found);
        }
        if let Some(id) = self.dropped.as_ref().map(|d| d.id) {
            self.check_dropped_silent()?;
            self.stats.dropped_checks += 1;
            let r = self.observer.cmd(&["TRACKINFO.CLIENT", &id.to_string()]);
            if let Some(f) = self.full_log.as_mut() {
                let _ = writeln!(f, "  {when}: dropped-delivery client {r}");
            }
            match parse_accounting(&r) {
                // It received nothing (check_dropped_silent): all it was sent was dropped.
                Ok(a) if a.on
                    && a.delivery == "dropped"
                    && a.id == id
                    && (!a.exact()
                        || (a.dropped_keys == a.invalidated_keys
                            && a.dropped_flushes == a.flush_invalidations)) => {}
                Ok(a) => self.mismatch(format!(
                    "{when}: the RESP2 client with tracking on and no REDIRECT (id {id}), whose invalidations the server discards, has id {} tracking {} and delivery {}, expected {id}, on and dropped, and (if exact) every key and flush it was sent dropped\n  module reply: {}",
                    a.id,
                    if a.on { "on" } else { "off" },
                    a.delivery,
                    a.reply
                ))?,
                Err(e) => self.mismatch(format!("{when}: TRACKINFO.CLIENT {id}: {e}"))?,
            }
        }
        Ok(out)
    }

    /// What is wrong with the module's account of tracker `i`, checked against what arrived
    /// (and, for reads and table entries, against the model).
    fn judge(&mut self, i: usize, a: &Accounting) -> Vec<String> {
        let t = &self.trackers[i];
        let (tid, redirects, arrived) = (t.id, t.sink.is_some(), t.arrived);
        let prefix_arrived: BTreeMap<String, i64> = t
            .prefix_arrived
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(p, n)| (p.clone(), *n as i64))
            .collect();
        let st = self.model.clients[i].clone();
        // The server's table may still hold keys a BCAST client read before, but it sends
        // them nothing: the module counts none.
        let tracked_keys = if st.bcast && st.on {
            0
        } else {
            self.model.tracked_keys(i)
        };
        let who = format!(
            "t{i} (id {tid}, {}, {})",
            if redirects {
                "RESP2 redirecting to a subscriber"
            } else {
                "RESP3"
            },
            st.describe()
        );
        let mut bad = Vec::new();
        let key_names = if st.bcast {
            Vec::new()
        } else {
            self.model.tracked_key_names(i)
        };
        if a.id != tid {
            bad.push(format!("{who}: id is {}", a.id));
        }
        if a.on != st.on {
            bad.push(format!("{who}: flags say tracking is {}", a.on));
        }
        if !st.on {
            return bad;
        }
        let delivery = if redirects { "redirect" } else { "self" };
        if a.delivery != delivery {
            bad.push(format!(
                "{who}: delivery is {}, expected {delivery}",
                a.delivery
            ));
        }
        let all = [
            a.tracked_keys,
            a.tracked_reads,
            a.invalidated_keys,
            a.flush_invalidations,
            a.last_invalidation,
            a.dropped_keys,
            a.dropped_flushes,
        ];
        if st.bcast {
            if a.exact() {
                self.stats.bcast_checks.0 += 1;
            } else {
                self.stats.bcast_checks.1 += 1;
            }
        }
        match a.counters.as_str() {
            "exact" => self.stats.exact += 1,
            "approximate" => self.stats.approximate += 1,
            other => bad.push(format!("{who}: counters is {other:?}")),
        }
        if self.server.info.is_redis70() {
            if a.counters != "approximate" || all.iter().any(|v| *v != -1) {
                bad.push(format!(
                    "{who}: on Redis 7.0 the module cannot attribute commands and must answer counters approximate with -1 counters; it answers {}",
                    a.counters_line()
                ));
            }
            return bad;
        }
        if !a.exact() {
            if !st.exotic {
                self.stats.plain_approximate += 1;
                if self.stats.first_plain_approximate.is_none() {
                    self.stats.first_plain_approximate = Some(format!(
                        "step {}: {who}, which ran neither MULTI nor EVAL since tracking was switched on at step {}",
                        self.step, self.trackers[i].on_since
                    ));
                }
            }
            if all.iter().any(|v| *v < -1) {
                bad.push(format!(
                    "{who}: approximate counters below -1: {}",
                    a.counters_line()
                ));
            }
            return bad;
        }
        let e = st.epoch;
        let mut expect = |what: &str, got: i64, want: u64, source: &str| {
            if got != want as i64 {
                bad.push(format!(
                    "{who}: {what} is {got}, {source} {want} (counters exact)"
                ));
            }
        };
        expect(
            "invalidated-keys",
            a.invalidated_keys,
            arrived.keys,
            "but the keys that arrived since tracking was switched on are",
        );
        expect(
            "flush-invalidations",
            a.flush_invalidations,
            arrived.flushes,
            "but the flush messages that arrived since tracking was switched on are",
        );
        // Its receiver never breaks: nothing is dropped.
        expect(
            "dropped-keys",
            a.dropped_keys,
            0,
            "but its receiver was live throughout, so the keys dropped are",
        );
        expect(
            "dropped-flushes",
            a.dropped_flushes,
            0,
            "but its receiver was live throughout, so the flushes dropped are",
        );
        expect(
            "tracked-reads",
            a.tracked_reads,
            e.reads,
            "but the model counts key reads the server remembered since tracking was switched on:",
        );
        expect(
            "tracked-keys",
            a.tracked_keys,
            tracked_keys,
            "but the model's tracking table holds for it",
        );
        if a.prefix_stats != prefix_arrived {
            bad.push(format!(
                "{who}: prefix-stats is {:?}, but the keys that arrived per prefix since tracking was switched on are {prefix_arrived:?} (counters exact; entries with 0 left out)",
                a.prefix_stats
            ));
        }
        if a.tracked_keys != tracked_keys as i64 {
            // TRACKINFO.KEYS is not under test here; it shows which keys the module lost or added.
            let listed = self
                .observer
                .cmd(&["TRACKINFO.KEYS", &tid.to_string(), "COUNT", "0"]);
            bad.push(format!(
                "tracked-keys detail: the model's keys {key_names:?}; TRACKINFO.KEYS answers {listed}"
            ));
        }
        let last = a.last_invalidation;
        match (arrived.keys + arrived.flushes, e.last) {
            (0, _) => {
                if last != -1 {
                    bad.push(format!(
                        "{who}: last-invalidation is {last}, but nothing arrived since tracking was switched on (expected -1)"
                    ));
                }
            }
            (_, Some((from, to))) => {
                if last < from - CLOCK_SLACK_MS || last > to + CLOCK_SLACK_MS {
                    bad.push(format!(
                        "{who}: last-invalidation is {last}, but the step that caused the last one ran from {from} to {to} ({:+} ms / {:+} ms)",
                        last - from,
                        last - to
                    ));
                }
            }
            (_, None) => bad.push(format!(
                "{who}: the model lost the last invalidation's time"
            )),
        }
        bad
    }

    /// A module mismatch: stops the walk, or with `keep_going` is counted by kind.
    fn mismatch(&mut self, what: String) -> Result<(), Failure> {
        let report = self.report(&what);
        if !self.keep_going {
            return Err(Failure::Module(report));
        }
        let k = kind(&what);
        match self.mismatches.iter_mut().find(|(kk, _, _)| *kk == k) {
            Some(entry) => entry.1 += 1,
            None => self.mismatches.push((k, 1, report)),
        }
        Ok(())
    }

    /// At the end: every tracker on; then every key is written once, and what arrives must be
    /// what `tracked-keys` said just before.
    fn finish(&mut self) -> Result<(), Failure> {
        for i in 0..TRACKERS {
            if !self.model.clients[i].on {
                self.step += 1;
                self.tracking_on(i)?;
            }
            // So that every table has something in it.
            for _ in 0..3 {
                self.step += 1;
                self.read_by(i)?;
            }
        }
        let before = self.checkpoint("before the final writes")?;
        let arrived: Vec<Arrived> = self.trackers.iter().map(|t| t.arrived).collect();
        let tracked: Vec<u64> = (0..TRACKERS).map(|i| self.model.tracked_keys(i)).collect();
        // TRACKINFO.KEYS of every non-BCAST client whose counters are exact: the keys whose
        // next write invalidates it.
        let mut listed: Vec<Option<(Resp, Vec<String>)>> = Vec::new();
        for (i, a) in before.iter().enumerate() {
            self.trackers[i].received.clear();
            let exact = a.as_ref().is_some_and(Accounting::exact);
            if !exact || self.model.clients[i].bcast {
                listed.push(None);
                continue;
            }
            let id = self.trackers[i].id.to_string();
            let r = self.observer.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "0"]);
            let names: Option<Vec<String>> = r
                .items()
                .filter(|_| r.marker() == '*')
                .and_then(|items| items.iter().map(Resp::text).collect());
            match names {
                Some(names) => listed.push(Some((r, names))),
                None => {
                    self.mismatch(format!(
                        "before the final writes: TRACKINFO.KEYS {id} COUNT 0 (counters exact) answered {r}, not an array of keys"
                    ))?;
                    listed.push(None);
                }
            }
        }
        self.step += 1;
        self.kind("final writes");
        self.model.begin(now_ms());
        let mut cmds = Vec::new();
        for k in 0..KEY_SPACE {
            self.push_op(Who::Writer, &Op::Set(k, Value::Int(0)), &mut cmds);
        }
        self.run(Who::Writer, cmds)?;
        self.drain_all()?;
        for i in 0..TRACKERS {
            let got = self.trackers[i].arrived.keys - arrived[i].keys;
            self.stats.end_tracked_keys += got;
            if let Some((r, names)) = listed[i].take() {
                self.stats.keys_listings += 1;
                let id = self.trackers[i].id;
                let received: BTreeSet<&String> = self.trackers[i].received.iter().collect();
                let listed_set: BTreeSet<&String> = names.iter().collect();
                if listed_set != received {
                    self.mismatch(format!(
                        "final writes: t{i} (id {id}): TRACKINFO.KEYS {id} COUNT 0 listed {:?} just before (counters exact), but writing every key invalidated {:?} for it\n  missing from the listing: {:?}\n  listed but not invalidated: {:?}\n  module reply: {r}",
                        names,
                        received,
                        received.difference(&listed_set).collect::<Vec<_>>(),
                        listed_set.difference(&received).collect::<Vec<_>>(),
                    ))?;
                } else if !names.windows(2).all(|w| w[0] < w[1]) {
                    self.mismatch(format!(
                        "final writes: t{i} (id {id}): TRACKINFO.KEYS {id} COUNT 0 is not in byte order or repeats a key: {r}"
                    ))?;
                }
            }
            if self.model.clients[i].bcast {
                // Checked against the model by the checkpoint after the final writes.
                continue;
            }
            if got != tracked[i] {
                return Err(Failure::Harness(format!(
                    "final writes: t{i} received {got} invalidations; the model's table holds {} keys for it",
                    tracked[i]
                )));
            }
            if let Some(a) = before[i].as_ref().filter(|a| a.exact()) {
                if a.tracked_keys != got as i64 {
                    let id = self.trackers[i].id;
                    self.mismatch(format!(
                        "final writes: t{i} (id {id}) had tracked-keys {} (counters exact), but writing every key sent it {got} invalidations\n  module reply before: {}",
                        a.tracked_keys, a.reply
                    ))?;
                }
            }
        }
        self.checkpoint("after the final writes")?;
        Ok(())
    }

    fn tracker_states(&self) -> String {
        let mut out = String::new();
        for (i, t) in self.trackers.iter().enumerate() {
            let st = &self.model.clients[i];
            let _ = writeln!(
                out,
                "  t{i} id={} {} {}: arrived {}k {}f; model {}k {}f, {} reads, table {} keys, last {:?}",
                t.id,
                if t.sink.is_some() {
                    format!("RESP2->sink {}", t.sink_id)
                } else {
                    "RESP3".into()
                },
                st.describe(),
                t.arrived.keys,
                t.arrived.flushes,
                st.epoch.keys,
                st.epoch.flushes,
                st.epoch.reads,
                self.model.tracked_keys(i),
                st.epoch.last
            );
        }
        out
    }

    fn report(&self, what: &str) -> String {
        let history: Vec<&str> = self.history.iter().map(String::as_str).collect();
        format!(
            "accounting mismatch on {}\nseed {} (replay: TRACKINFO_FUZZ_SEED={} TRACKINFO_SERVERS={}), step {}:\n{what}\n\ntrackers:\n{}\nlast steps:\n{}\n\nserver log tail:\n{}",
            self.server.describe(),
            self.seed,
            self.seed,
            self.server.binary.display(),
            self.step,
            self.tracker_states(),
            history.join("\n"),
            self.server.log_tail(10)
        )
    }
}

/// `TRACKINFO_FUZZ_LOG=path`: every step of every server is appended to `path`.
fn full_log(server: &Server) -> Option<std::fs::File> {
    let path = std::env::var("TRACKINFO_FUZZ_LOG")
        .ok()
        .filter(|p| !p.is_empty())?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("TRACKINFO_FUZZ_LOG={path}: {e}"));
    let _ = writeln!(f, "==== {}", server.describe());
    Some(f)
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// The kind of a mismatch: its first line without the client's description in parentheses,
/// numbers blanked.
fn kind(error: &str) -> String {
    let first = error.lines().next().unwrap_or_default();
    let mut out = String::new();
    let mut depth = 0;
    for c in first.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth > 0 => {}
            _ if c.is_ascii_digit() || c == '-' && out.ends_with(' ') => {
                if !out.ends_with('N') {
                    out.push('N');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// How many clients the module marked approximate, by the cause its log gives.
fn approximate_causes(server: &Server) -> BTreeMap<String, usize> {
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    let mut causes = BTreeMap::new();
    for cause in log.lines().filter_map(|l| l.split("from now on: ").nth(1)) {
        *causes.entry(cause.to_string()).or_default() += 1;
    }
    causes
}

fn walk(server: &Server, seed: u64, steps: usize, keep_going: bool) -> Result<(), String> {
    println!("seed {seed}, {steps} steps on {}", server.describe());
    let started = Instant::now();
    let check_every = match std::env::var("TRACKINFO_FUZZ_CHECK_EVERY") {
        Ok(s) if !s.is_empty() => s
            .parse()
            .unwrap_or_else(|_| panic!("TRACKINFO_FUZZ_CHECK_EVERY={s} is not a number")),
        _ => CHECK_EVERY,
    };
    // The module says why a client's counters went approximate at verbose level.
    server.conn().ok(&["CONFIG", "SET", "loglevel", "verbose"]);
    let mut w = Walk::new(server, seed, keep_going)?;
    let outcome = (|| {
        for step in 1..=steps {
            w.step = step;
            w.step()?;
            if step % check_every == 0 {
                w.checkpoint(&format!("checkpoint after step {step}"))?;
            }
        }
        w.finish()
    })();
    match outcome {
        Ok(()) => {}
        Err(Failure::Module(report)) => return Err(report),
        Err(Failure::Harness(e)) => {
            return Err(w.report(&format!(
                "HARNESS ERROR (the test's model or receivers disagree with the server, not a module verdict): {e}"
            )))
        }
    }
    let bcast_keys: Vec<u64> = w
        .trackers
        .iter()
        .map(|t| t.bcast_total)
        .chain([w.closed_bcast_keys])
        .collect();
    for t in &w.trackers {
        w.stats.arrived_keys += t.arrived.keys;
        w.stats.arrived_flushes += t.arrived.flushes;
    }
    let s = &w.stats;
    let checks = s.exact + s.approximate;
    let share = if checks == 0 {
        0.0
    } else {
        s.exact as f64 / checks as f64
    };
    println!(
        "{}: {checks} checks, {} exact ({:.0}%), {} approximate ({} after only plain steps; first: {}), in {:.1?}; steps {:?}; lazy expiries {}, active {}; final tracked keys {}; tracker writes under NOLOOP {}; BCAST checks {} exact {} approximate, BCAST keys arrived {:?}; reconnects {}; dropped-delivery checks {}; TRACKINFO.KEYS listings compared {}",
        server.info,
        s.exact,
        100.0 * share,
        s.approximate,
        s.plain_approximate,
        s.first_plain_approximate.as_deref().unwrap_or("none"),
        started.elapsed(),
        s.kinds,
        w.model.lazy_expiries,
        w.model.active_expiries,
        s.end_tracked_keys,
        s.own_noloop_skips,
        s.bcast_checks.0,
        s.bcast_checks.1,
        bcast_keys,
        s.reconnects,
        s.dropped_checks,
        s.keys_listings,
    );
    println!(
        "  why counters went approximate: {:?}",
        approximate_causes(server)
    );
    let mut out = String::new();
    if !w.mismatches.is_empty() {
        let _ = writeln!(
            out,
            "{} kinds of mismatch on {}:",
            w.mismatches.len(),
            server.describe()
        );
        for (k, n, _) in &w.mismatches {
            let _ = writeln!(out, "  {n:5} x {k}");
        }
        for (_, _, report) in &w.mismatches {
            let _ = write!(out, "\n{report}\n");
        }
    }
    if !server.info.is_redis70() && share < MIN_EXACT_SHARE {
        let _ = writeln!(
            out,
            "on {}: only {} of {checks} checks ({:.0}%) found counters exact; at least {:.0}% must (seed {seed})",
            server.describe(),
            s.exact,
            100.0 * share,
            100.0 * MIN_EXACT_SHARE
        );
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

#[test]
fn pushes_written_inside_an_exec_reply_are_found() {
    let raw = b"*3\r\n+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\nacct:1\r\n*1\r\n>2\r\n$10\r\ninvalidate\r\n_\r\n:1\r\n:2\r\n";
    let pushes = nested_pushes(raw).unwrap();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert!(matches!(message(&pushes[0]), Ok(Some(Message::Keys(k))) if k == ["acct:1"]));
    assert!(matches!(message(&pushes[1]), Ok(Some(Message::Flush))));
    let (frame, used) = common::resp::parse(raw).unwrap().unwrap();
    assert_eq!(used, raw.len());
    assert_eq!(frame.items().map(<[Resp]>::len), Some(3));
}

/// Every server is walked with the same seed, even after one fails.
#[test]
fn invalidation_counters_equal_the_messages_that_really_arrive() {
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
        "{} of {} servers failed:\n\n{}",
        failures.len(),
        servers().len(),
        failures.join("\n\n")
    );
}
