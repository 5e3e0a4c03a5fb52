//! What the module does when the server calls it: the command filter, the disconnect event,
//! and settling what the filter saw once the server has run (or refused) it.
//!
//! The filter runs before the server looks a command up, so it cannot tell whether the command
//! will run: ACL, arity, MULTI aborts or WATCH can stop it. So each CLIENT TRACKING, CLIENT
//! CACHING and RESET is replayed into a *pending* outcome, and the outcome is kept only when the
//! server's own `calls` counter in INFO commandstats says the command ran. The server's
//! `failed_calls` must match the errors the replay predicted; where anything disagrees the
//! client is marked `partial`, never guessed.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use redis_module::logging::log_warning;

use crate::clients::{Acct, Client, Mirror, Op, Registry};
use crate::cmdtable::{self, CommandInfo, CommandTable};
use crate::doubts;
use crate::ffi::{self, ClientFlags};
use crate::keys::{KeyHasher, KeyList, KeyName, KeyTable};
use crate::observe::{CallStats, Listed};
use crate::reply::{Fidelity, View};
use crate::rules::{caching, tracking, Flags, ServerReply, TrackingState};

mod placement;
mod route;
use placement::{ExecWatch, Placement, Unplaced, UnseenWrite};
use route::Routes;

/// The filter's gates, read without a lock: is any client's state kept, is anything pending.
static GATE_CLIENTS: AtomicBool = AtomicBool::new(false);
static GATE_PENDING: AtomicBool = AtomicBool::new(false);
/// Whether the key table holds anything (writes need no lookup otherwise).
static GATE_KEYS: AtomicBool = AtomicBool::new(false);
/// Reads noted by the filter that the server will remember once the command has run.
static GATE_READS: AtomicBool = AtomicBool::new(false);
/// True between the server's before-sleep and after-sleep events: writes made there may fall on
/// either side of the server's BCAST broadcast.
static IN_SLEEP_WINDOW: AtomicBool = AtomicBool::new(false);
/// The client whose command runs now, if it is one the module keeps state for (else 0): the
/// server's `current_client`, which NOLOOP compares with in default mode.
static CURRENT: AtomicU64 = AtomicU64::new(0);
/// The client that makes the current write (signalModifiedKey's `c`), which BCAST NOLOOP compares
/// with: the same as CURRENT, except inside a script, where it is the script's own client (0).
static WRITER: AtomicU64 = AtomicU64::new(0);
/// The running command (of a client the module keeps state for) is EXPIRE/PEXPIRE/EXPIREAT/
/// PEXPIREAT: Valkey reports their immediate deletions as `expired`, made by the client, while
/// a lazy expiry in the same command is made by nobody.
static EXPIRE_COMMAND: AtomicBool = AtomicBool::new(false);
/// A client the module keeps state for whose command may run others (a script, EXEC): the
/// commands the filter then sees from fake clients are its inner commands.
static SCRIPT_ROOT: AtomicU64 = AtomicU64::new(0);
/// Event-loop cycles (before-sleep events) since load.
static CYCLE: AtomicU64 = AtomicU64::new(0);
/// The last check of the mirrored table against the server's totals that matched: its cycle
/// and `keys::changes()` then (u64::MAX: none).
static CHECKED_CYCLE: AtomicU64 = AtomicU64::new(u64::MAX);
static CHECKED_CHANGES: AtomicU64 = AtomicU64::new(u64::MAX);
/// The filter saw a CONFIG command: `tracking-table-max-keys` may have changed.
static CONFIG_SEEN: AtomicBool = AtomicBool::new(true);
/// Valkey (8.1.8 at least): an LTRIM that removes nothing sends its `ltrim` keyspace event but
/// invalidates nothing (Redis invalidates the key either way). The change counter tells: it
/// grows by the elements removed.
static LTRIM_QUIET: AtomicBool = AtomicBool::new(false);
/// Some client had state at the last `sync_gates` (so the filter saw every HELLO since).
static GATE_CLIENTS_WAS: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// All mutable module state. The server calls modules on its main thread; other threads
    /// (module threads calling RM_Call) see no state and are ignored.
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// One command as the filter sees it.
pub trait Command {
    fn argc(&self) -> usize;
    fn arg(&self, i: usize) -> &[u8];
    fn client_id(&self) -> u64;
    /// The positions of the command's keys, as the server finds them (`None`: unknown command
    /// or wrong arity, which the server refuses before running it).
    fn key_positions(&self) -> Option<Vec<usize>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Client,
    Exec,
    Discard,
    Reset,
    Other,
}

/// The command names the filter cares about, matched without allocating.
fn kind(name: &[u8]) -> Kind {
    let is = |w: &[u8]| name.eq_ignore_ascii_case(w);
    match name.len() {
        6 if is(b"client") => Kind::Client,
        4 if is(b"exec") => Kind::Exec,
        7 if is(b"discard") => Kind::Discard,
        5 if is(b"reset") => Kind::Reset,
        _ => Kind::Other,
    }
}

/// Whether a command sent in MULTI is queued, and so takes a place in the transaction: all but
/// EXEC, DISCARD, MULTI, WATCH, QUIT and RESET, which run at once (server.c processCommand).
fn is_queued(kind: Kind, name: &[u8]) -> bool {
    let is = |w: &[u8]| name.eq_ignore_ascii_case(w);
    match kind {
        Kind::Client => true,
        Kind::Other => !(is(b"multi") || is(b"watch") || is(b"quit")),
        Kind::Exec | Kind::Discard | Kind::Reset => false,
    }
}

/// How many times each counted command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    tracking: u64,
    caching: u64,
    reset: u64,
}

impl Counts {
    const NAMES: [&'static str; 3] = ["client|tracking", "client|caching", "reset"];

    fn add(self, o: Counts) -> Counts {
        Counts {
            tracking: self.tracking + o.tracking,
            caching: self.caching + o.caching,
            reset: self.reset + o.reset,
        }
    }

    fn is_zero(self) -> bool {
        self == Counts::default()
    }
}

/// The server's counters for the counted commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stats {
    calls: Counts,
    rejected: Counts,
    failed: Counts,
}

fn read_stats() -> Option<Stats> {
    let v = ffi::command_stats(&Counts::NAMES)?;
    let pick = |f: fn(&CallStats) -> u64| Counts {
        tracking: f(&v[0]),
        caching: f(&v[1]),
        reset: f(&v[2]),
    };
    Some(Stats {
        calls: pick(|s| s.calls),
        rejected: pick(|s| s.rejected),
        failed: pick(|s| s.failed),
    })
}

fn delta(now: Counts, base: Counts) -> Option<Counts> {
    Some(Counts {
        tracking: now.tracking.checked_sub(base.tracking)?,
        caching: now.caching.checked_sub(base.caching)?,
        reset: now.reset.checked_sub(base.reset)?,
    })
}

/// A command the filter saw that may change a client's tracking state once it runs.
#[derive(Debug, Clone)]
struct Pending {
    client: u64,
    expect: Counts,
    /// The errors the replay predicts; `None` when it cannot know (partial state).
    failed: Option<Counts>,
    mirror: Mirror,
    since_ms: i64,
    /// What was replayed, from what: a query running inside the same EXEC replays a prefix.
    ops: Vec<Op>,
    before: Mirror,
    before_since_ms: i64,
    /// Keys the replayed reads remember (with their places), once the server confirms the
    /// batch ran.
    reads: Vec<(u64, Vec<u8>)>,
}

/// A read the server will remember once its command has run.
#[derive(Debug)]
struct Read {
    id: u64,
    /// Indexes of its keys in `State::read_keys`.
    keys: std::ops::Range<usize>,
    /// In a cluster, what tells whether the server refused the command after the filter saw
    /// it; the read is counted once that is known. Elsewhere it was counted when seen.
    check: Option<Refusal>,
}

pub struct State {
    pub registry: Registry,
    pendings: Vec<Pending>,
    /// Counted commands sent by scripts or other modules' RM_Call: they blur the counters.
    foreign: Counts,
    baseline: Option<Stats>,
    /// The server's CLIENT subcommands, lowercase: these do not end a CACHING window.
    client_subcommands: Vec<Vec<u8>>,
    /// Redis 7.2+ and Valkey: the filter knows who sent each command.
    pub exact: bool,
    /// The mirror of the server's tracking table.
    pub table: KeyTable,
    /// Read-only commands (`name` or `container|sub`, lowercase) and container commands.
    commands: CommandTable,
    /// Exact BCAST clients and the indexes of their prefixes in `bcast_prefixes`, rebuilt when
    /// a mirror changes.
    bcast: Vec<(u64, Vec<usize>)>,
    /// The distinct prefixes of `bcast`, in byte order: a write is batched once per prefix it
    /// matches, whatever the number of clients that registered it.
    bcast_prefixes: Vec<Vec<u8>>,
    bcast_dirty: bool,
    /// This event-loop cycle's BCAST writes, one map per prefix of `bcast_prefixes` (same
    /// index): key -> the client that last wrote it (0: none the module keeps state for), as
    /// tracking.c trackingRememberKeyToBroadcast.
    batch: Vec<HashMap<KeyName, u64, KeyHasher>>,
    /// Some write was batched this cycle.
    batched: bool,
    /// Since load: keys named in invalidations, and null (flush) invalidations, for all clients.
    pub total_invalidated: u64,
    pub total_flushes: u64,
    /// Of those, the ones the server discarded (its delivery `dropped` when it sent them).
    pub total_dropped_keys: u64,
    pub total_dropped_flushes: u64,
    /// Where messages go: protocols and route epochs (route.rs).
    routes: Routes,
    /// Reads the table's item cap kept out.
    pub dropped_items: u64,
    /// Reads of the command running now: the server remembers keys after the command ran
    /// (call() -> trackingRememberKeys), so a write or lazy expiry during it does not
    /// invalidate them; they enter the table at the next hook. Their keys are in `read_keys`.
    after_command: Vec<Read>,
    read_keys: KeyList,
    /// Ids whose entries in the mirrored table may be wrong. Entries survive CLIENT TRACKING
    /// OFF/ON in the server, so this outlives the per-period counters; a flush (which empties
    /// both tables) clears it. `all_unsure`: every id's.
    unsure: HashSet<u64>,
    all_unsure: bool,
    /// An EXEC of queued reads, until the server's counter says what it did.
    exec: Option<ExecWatch>,
    /// Expiries and evictions the running command may or may not have made, until the server's
    /// counter says (`place_unplaced`).
    unplaced: Vec<Unplaced>,
    /// Reads of the command that ran whose key an expiry after it removed again: not kept.
    unkept: Vec<(u64, Vec<u8>)>,
    /// A command that may change a tracked key without a keyspace event, until the server's
    /// change counter says whether it did (`resolve_unseen_write`).
    unseen: Option<UnseenWrite>,
    /// The client whose EXEC also changes its tracking (queued CLIENT TRACKING/CACHING), until
    /// the next hook: its mirror is the one before the EXEC, so a write then may or may not
    /// have been sent to it (NOLOOP, ON/OFF inside the EXEC).
    exec_changes: Option<u64>,
}

/// Appends a command's keys to `list`; false (nothing appended) when the arity check refuses it
/// before it runs, or the server does not know it.
fn collect_keys<C: Command + ?Sized>(cmd: &C, info: CommandInfo, list: &mut KeyList) -> bool {
    match info.span {
        Some(span) => match span.positions(cmd.argc()) {
            Some(positions) => positions.for_each(|p| list.push(cmd.arg(p))),
            None => return false,
        },
        None => match cmd.key_positions() {
            Some(positions) => positions.into_iter().for_each(|p| list.push(cmd.arg(p))),
            None => return false,
        },
    }
    true
}

/// Notes the keys of a read the server remembers once the command has run (unless the arity
/// check refuses it first). Returns how many reads to count now: all of them where nothing can
/// refuse the read later; else none (they are counted once the server's counters tell).
fn queue_read<C: Command + ?Sized>(
    cmd: &C,
    info: CommandInfo,
    id: u64,
    keys: &mut KeyList,
    after: &mut Vec<Read>,
) -> u64 {
    let start = keys.len();
    if !collect_keys(cmd, info, keys) {
        return 0;
    }
    let range = start..keys.len();
    // A script's inner command is sent by the script's client, not by `id`.
    let check = Refusal::arm(cmd.client_id() == id, || call_name(info, cmd));
    let n = if check.is_none() {
        range.len() as u64
    } else {
        0
    };
    after.push(Read {
        id,
        keys: range,
        check,
    });
    n
}

/// Puts (key, id) items in the table; false when it did not keep them all (switched off, or
/// full: `dropped` counts those).
fn keep_items<'k>(
    table: &mut KeyTable,
    dropped: &mut u64,
    id: u64,
    keys: impl Iterator<Item = &'k [u8]>,
) -> bool {
    if !crate::config::key_table() {
        return false;
    }
    let cap = crate::config::max_items().unwrap_or(u64::MAX);
    let mut kept = true;
    for k in keys {
        if table.items() >= cap && !table.holds(id, k) {
            *dropped += 1;
            kept = false;
            continue;
        }
        table.remember(id, k);
    }
    kept
}

/// What the table says of a call, its subcommand's entry for a container.
fn look_up<C: Command + ?Sized>(table: &CommandTable, cmd: &C) -> CommandInfo {
    table.look_up(cmd.arg(0), || (cmd.argc() >= 2).then(|| cmd.arg(1)))
}

/// The server's name for a call (`name` or `container|sub`, lowercase).
fn call_name<C: Command + ?Sized>(info: CommandInfo, cmd: &C) -> Vec<u8> {
    let sub = (info.container && cmd.argc() >= 2).then(|| cmd.arg(1));
    cmdtable::full_name(cmd.arg(0), sub)
}

/// Installs fresh state (MODULE LOAD). `tracking` are the clients that already track: they
/// switched it on where the module could not see it. (Clients in MULTI at load need no entry:
/// if their queued commands switch tracking on, the counters or the TRACKING bit give it away.)
pub fn install(
    exact: bool,
    client_subcommands: Vec<Vec<u8>>,
    commands: CommandTable,
    tracking: &[u64],
) {
    let mut st = State {
        registry: Registry::default(),
        pendings: Vec::new(),
        foreign: Counts::default(),
        baseline: None,
        client_subcommands,
        exact,
        table: KeyTable::default(),
        commands,
        bcast: Vec::new(),
        bcast_prefixes: Vec::new(),
        bcast_dirty: true,
        batch: Vec::new(),
        batched: false,
        total_invalidated: 0,
        total_flushes: 0,
        total_dropped_keys: 0,
        total_dropped_flushes: 0,
        routes: Routes::default(),
        dropped_items: 0,
        after_command: Vec::new(),
        read_keys: KeyList::default(),
        unsure: HashSet::new(),
        all_unsure: false,
        exec: None,
        unplaced: Vec::new(),
        unkept: Vec::new(),
        unseen: None,
        exec_changes: None,
    };
    if exact {
        for &id in tracking {
            st.registry.put(id, Client::partial());
        }
    }
    reset_statics();
    let server_name =
        ffi::info_fields("server", &["server_name"]).and_then(|v| v.into_iter().next().flatten());
    LTRIM_QUIET.store(server_name.as_deref() == Some(&b"valkey"[..]), Relaxed);
    sync_gates(&mut st);
    STATE.with(|s| {
        if let Ok(mut b) = s.try_borrow_mut() {
            *b = Some(st);
        }
    });
}

/// The ids of all connections whose TRACKING bit is on, found without CLIENT LIST.
///
/// CLIENT LIST is avoided where it can be: after any MODULE UNLOAD, a client whose last command
/// belonged to the unloaded module keeps a dangling `lastcmd`, and CLIENT LIST then reads freed
/// memory (redis/redis#10177; it crashes Valkey 8.1 with its libc allocator). Instead the ids are
/// probed with RM_GetClientInfoById, in order, until INFO's `tracking_clients` are all found.
/// Ids only grow, so long-lived connections are found early; `None` when the time budget runs
/// out first, and the caller falls back to CLIENT LIST.
pub fn server_tracking_ids() -> Option<Vec<u64>> {
    let want = ffi::info_fields("clients", &["tracking_clients"])?
        .into_iter()
        .next()
        .flatten()
        .and_then(|v| crate::rules::parse_i64(&v))
        .and_then(|n| usize::try_from(n).ok())?;
    let budget = std::time::Duration::from_millis(50);
    let start = std::time::Instant::now();
    let mut found = Vec::with_capacity(want);
    let mut id: u64 = 1;
    while found.len() < want {
        if ffi::client_flags(id).is_some_and(|f| f.tracking) {
            found.push(id);
        }
        id += 1;
        if id.is_multiple_of(4096) && start.elapsed() > budget {
            return None;
        }
    }
    Some(found)
}

/// Drops all state (MODULE UNLOAD).
pub fn uninstall() {
    STATE.with(|s| {
        if let Ok(mut b) = s.try_borrow_mut() {
            *b = None;
        }
    });
    reset_statics();
}

/// Puts every static back to its initial value. The library can stay mapped across MODULE
/// UNLOAD (glibc keeps a library with live thread-local destructors, and STATE has one), and
/// then the next MODULE LOAD finds the statics as the last unload left them.
fn reset_statics() {
    GATE_CLIENTS.store(false, Relaxed);
    GATE_PENDING.store(false, Relaxed);
    GATE_KEYS.store(false, Relaxed);
    GATE_READS.store(false, Relaxed);
    IN_SLEEP_WINDOW.store(false, Relaxed);
    CURRENT.store(0, Relaxed);
    WRITER.store(0, Relaxed);
    EXPIRE_COMMAND.store(false, Relaxed);
    SCRIPT_ROOT.store(0, Relaxed);
    CYCLE.store(0, Relaxed);
    CHECKED_CYCLE.store(u64::MAX, Relaxed);
    CHECKED_CHANGES.store(u64::MAX, Relaxed);
    CONFIG_SEEN.store(true, Relaxed);
    GATE_CLIENTS_WAS.store(false, Relaxed);
}

/// Whether a check of the mirrored table against the server's totals made earlier in this
/// event-loop cycle still holds: the module's table has not changed since, and the server's
/// cannot have changed unseen. The server changes its table unseen when it evicts keys past
/// `tracking-table-max-keys` (tracking.c trackingLimitUsedSlots, at any command), so a check is
/// kept only while the table is within that limit (`note_table_checked`) and no CONFIG command
/// has run since; the next cycle checks again, which catches, a cycle late at most, writes
/// other modules make without notifications.
pub fn table_check_holds() -> bool {
    CHECKED_CYCLE.load(Relaxed) == CYCLE.load(Relaxed)
        && CHECKED_CHANGES.load(Relaxed) == crate::keys::changes()
        && !CONFIG_SEEN.load(Relaxed)
}

/// The table matched the server's totals just now; `keep` when the server cannot evict from its
/// table unseen until it changes (within `tracking-table-max-keys`).
pub fn note_table_checked(keep: bool) {
    let (cycle, changes) = if keep {
        (CYCLE.load(Relaxed), crate::keys::changes())
    } else {
        (u64::MAX, u64::MAX)
    };
    CHECKED_CYCLE.store(cycle, Relaxed);
    CHECKED_CHANGES.store(changes, Relaxed);
}

/// True once after the filter saw a CONFIG command (and at load): `tracking-table-max-keys`
/// must be read again.
pub fn take_config_seen() -> bool {
    CONFIG_SEEN.swap(false, Relaxed)
}

/// Runs `f` on the state, if this thread has it and nobody is using it.
pub fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|s| {
        let mut b = s.try_borrow_mut().ok()?;
        let st = b.as_mut()?;
        let r = f(st);
        sync_gates(st);
        Some(r)
    })
}

fn sync_gates(st: &mut State) {
    if st.bcast_dirty {
        st.rebuild_bcast();
    }
    GATE_CLIENTS.store(!st.registry.is_empty(), Relaxed);
    GATE_KEYS.store(
        st.table.items() > 0
            || !st.bcast.is_empty()
            || !st.after_command.is_empty()
            || st.exec.is_some(),
        Relaxed,
    );
    GATE_READS.store(
        !st.after_command.is_empty() || !st.unplaced.is_empty() || st.unseen.is_some(),
        Relaxed,
    );
    if GATE_KEYS.load(Relaxed) && !ffi::keyspace_events(true) {
        // Writes can no longer be seen: nothing per key can be counted.
        log_warning("trackinfo: could not subscribe to keyspace events; counters are approximate");
        st.mark_all_approximate();
    }
    if st.registry.is_empty() {
        CURRENT.store(0, Relaxed);
        WRITER.store(0, Relaxed);
        SCRIPT_ROOT.store(0, Relaxed);
        if GATE_CLIENTS_WAS.swap(false, Relaxed) {
            st.routes.forget();
        }
    } else {
        GATE_CLIENTS_WAS.store(true, Relaxed);
    }
    GATE_PENDING.store(
        !st.pendings.is_empty() || !st.foreign.is_zero() || st.exec.is_some(),
        Relaxed,
    );
}

/// The command filter. For a command that is not CLIENT, from a client without tracking state,
/// it does not allocate or lock, and looks at most one thing up (and nothing when no client
/// has state).
pub fn on_command<C: Command>(cmd: &C) {
    let Some((name, id)) = filter_command(cmd) else {
        return;
    };
    // A command that may change a tracked key without a keyspace event (checked only while
    // the table holds something, by the name it read already: its length first).
    if GATE_KEYS.load(Relaxed) && writes_unseen(name, || cmd.argc()) {
        let by = match name.len() {
            7 => placement::Told::Dirty,
            _ if name.eq_ignore_ascii_case(b"hmget") => placement::Told::Keys,
            _ => placement::Told::Trimmed,
        };
        with_state(|st| st.watch_unseen_write(cmd.arg(1), id, by));
    }
}

/// Commands that can change a key and invalidate it with no keyspace event (the servers'
/// src/*.c: signalModifiedKey without notifyKeyspaceEvent): PFCOUNT of one key stores the
/// cardinality it computed when its cached one is stale (hyperloglog.c); HMGET on Redis 8 can
/// expire a hash's last field, and so the hash (t_hash.c).
fn writes_unseen(name: &[u8], argc: impl FnOnce() -> usize) -> bool {
    match name.len() {
        7 => name.eq_ignore_ascii_case(b"pfcount") && argc() == 2,
        5 if name.eq_ignore_ascii_case(b"hmget") => argc() >= 3,
        5 => LTRIM_QUIET.load(Relaxed) && name.eq_ignore_ascii_case(b"ltrim") && argc() == 4,
        _ => false,
    }
}

/// The filter's work; the command's name and client id once it has read them (each is a module
/// API call).
fn filter_command<C: Command>(cmd: &C) -> Option<(&[u8], u64)> {
    // The previous command has run: its reads, if any, are remembered now, before anything else
    // (in the same borrow of the state as this command's work, where there is some).
    let reads = GATE_READS.load(Relaxed);
    let apply_reads = || {
        if reads {
            with_state(State::apply_reads);
        }
    };
    #[cfg(not(feature = "panic-injection"))]
    if !reads && !GATE_CLIENTS.load(Relaxed) && !GATE_PENDING.load(Relaxed) && cmd.argc() < 3 {
        // Nobody has state: only CLIENT TRACKING / CACHING (three arguments or more) and
        // CONFIG SET (four or more) can matter, so a shorter command's name is not even read.
        return None;
    }
    let name = cmd.arg(0);
    // (An empty name is a command too, an unknown one; only no argument at all is nothing.)
    if name.is_empty() && cmd.argc() == 0 {
        apply_reads();
        return None;
    }
    #[cfg(feature = "panic-injection")]
    if name.eq_ignore_ascii_case(b"trackinfo-test-panic") {
        apply_reads();
        panic!("injected panic in the command filter");
    }
    let kind = kind(name);
    if kind == Kind::Other && name.len() == 6 && name.eq_ignore_ascii_case(b"config") {
        CONFIG_SEEN.store(true, Relaxed);
    }
    if kind == Kind::Other && GATE_CLIENTS.load(Relaxed) {
        if let Some(change) = route::changes_route(name) {
            // HELLO, (un)subscribe: where this connection's messages (or those redirected to
            // it) go may change once it runs.
            let id = cmd.client_id();
            let multi = ffi::client_flags(id).is_some_and(|f| f.multi);
            with_state(|st| st.routes.note(id, change, multi));
        }
    }
    let plain = kind != Kind::Client && !GATE_PENDING.load(Relaxed);
    if plain && !GATE_CLIENTS.load(Relaxed) {
        apply_reads();
        return None;
    }
    let id = cmd.client_id();
    let cmd = Named { cmd, name, id };
    if plain {
        // One borrow of the state: the client's entry (if any) decides the rest.
        let known = STATE.with(|s| {
            let mut b = s.try_borrow_mut().ok()?;
            let st = b.as_mut()?;
            if reads {
                st.apply_reads();
            }
            let known = match st.on_plain_command(&cmd, id) {
                Plain::Done => true,
                Plain::Unknown => false,
                Plain::General => {
                    st.on_command(&cmd, kind, id);
                    true
                }
            };
            if reads || known {
                sync_gates(st);
            }
            Some(known)
        });
        if known == Some(true) {
            return Some((name, id));
        }
        if SCRIPT_ROOT.load(Relaxed) != 0 {
            // A script's inner command, or the first command after it.
            with_state(|st| st.inner_or_next(&cmd, id));
            return Some((name, id));
        }
        if known.is_none() {
            apply_reads();
        }
        // Not a client the module keeps state for: NOLOOP cannot apply to its writes.
        CURRENT.store(0, Relaxed);
        WRITER.store(0, Relaxed);
        return Some((name, id));
    }
    with_state(|st| {
        st.apply_reads();
        st.on_command(&cmd, kind, id);
    });
    Some((name, id))
}

/// What [`State::on_plain_command`] made of a command (not CLIENT, EXEC, DISCARD or RESET).
enum Plain {
    /// From a client the module keeps no state for.
    Unknown,
    Done,
    /// Not the common case: the general path must see it.
    General,
}

/// A command whose name and client the filter has read once already (each is a module API
/// call).
struct Named<'a, C: Command> {
    cmd: &'a C,
    name: &'a [u8],
    id: u64,
}

impl<C: Command> Command for Named<'_, C> {
    fn argc(&self) -> usize {
        self.cmd.argc()
    }

    fn arg(&self, i: usize) -> &[u8] {
        if i == 0 {
            self.name
        } else {
            self.cmd.arg(i)
        }
    }

    fn client_id(&self) -> u64 {
        self.id
    }

    fn key_positions(&self) -> Option<Vec<usize>> {
        self.cmd.key_positions()
    }
}

/// The server's disconnect event: nothing is kept for clients that are gone.
pub fn on_disconnect(id: u64) {
    with_state(|st| {
        st.routes.disconnected(id);
        st.registry.remove(id);
        if st.unsure.remove(&id) {
            crate::keys::shrink_set(&mut st.unsure);
        }
        // Only a BCAST client's departure changes the BCAST list (rebuilding it is O(clients),
        // too much for every disconnect of a storm).
        if st.bcast.iter().any(|(b, _)| *b == id) {
            st.bcast_dirty = true;
        }
    });
}

/// The server's connect event: ids only grow, so lower ones connected before the module loaded.
pub fn on_connect(id: u64) {
    with_state(|st| st.routes.connected(id));
}

/// The event loop is about to sleep: the server sends this cycle's BCAST messages, one per
/// prefix per client (tracking.c trackingBroadcastInvalidationMessages).
pub fn on_before_sleep() {
    CYCLE.fetch_add(1, Relaxed);
    // Nothing per key to keep: stop the server calling the module on every write (here, where
    // the server is not walking its list of keyspace subscribers).
    if !GATE_KEYS.load(Relaxed) && ffi::keyspace_events_can_stop() {
        ffi::keyspace_events(false);
    }
    if GATE_KEYS.load(Relaxed) || GATE_READS.load(Relaxed) {
        with_state(|st| {
            // What the last command did: it belongs to this cycle's messages.
            st.command_over();
            st.resolve_exec();
            st.apply_reads();
            st.broadcast();
        });
    }
    IN_SLEEP_WINDOW.store(true, Relaxed);
    // Until the next command, changes come from no client (the fast expiry cycle has run).
    CURRENT.store(0, Relaxed);
    WRITER.store(0, Relaxed);
}

/// The server's cron has run, its active expiry cycle included: the last command is over, and
/// until the next one no client is the server's current one.
pub fn on_cron_loop() {
    if GATE_READS.load(Relaxed) || GATE_PENDING.load(Relaxed) {
        with_state(|st| {
            st.command_over();
            st.resolve_exec();
            st.apply_reads();
        });
    }
    CURRENT.store(0, Relaxed);
    WRITER.store(0, Relaxed);
}

pub fn on_after_sleep() {
    IN_SLEEP_WINDOW.store(false, Relaxed);
}

/// A keyspace notification: the key was modified, so the server invalidated it
/// (tracking.c trackingInvalidateKey, called from signalModifiedKey).
pub fn on_keyspace(event: &[u8], key: &[u8]) {
    #[cfg(feature = "panic-injection")]
    if key == b"trackinfo:test-panic" {
        panic!("injected panic in a keyspace event");
    }
    if !GATE_KEYS.load(Relaxed) {
        return;
    }
    with_state(|st| st.invalidate(event, key));
}

/// CONFIG SET trackinfo.key-table.
pub fn on_key_table_switched(on: bool) {
    with_state(|st| st.key_table_switched(on));
}

/// FLUSHDB / FLUSHALL: every tracking client is sent a null invalidation, and the table is
/// emptied (tracking.c trackingInvalidateKeysOnFlush).
pub fn on_flush() {
    with_state(State::flush);
}

impl State {
    fn on_command(&mut self, cmd: &dyn Command, kind: Kind, id: u64) {
        let op = if kind == Kind::Client {
            self.client_op(cmd)
        } else {
            None
        };
        // Flags kept from this connection's previous command where nothing since could have
        // changed them; else read (GetClientInfoById, a getpeername system call each time).
        let kept = self.registry.get(id).and_then(|c| c.flags);
        let Some(flags) = kept.or_else(|| ffi::client_flags(id)) else {
            // A script's or another module's call, made inside some connection's command.
            match (&op, kind) {
                (Some(Op::Tracking(_)), _) => self.note_foreign(|c| c.tracking += 1),
                (Some(Op::Caching(_)), _) => self.note_foreign(|c| c.caching += 1),
                (None, Kind::Reset) => self.note_foreign(|c| c.reset += 1),
                _ => self.inner(cmd),
            }
            return;
        };
        // This connection's previous command, and anyone's, has completed by now.
        self.command_over();
        self.resolve();
        self.resolve_exec();
        self.settle(id, flags);
        CURRENT.store(id, Relaxed);
        WRITER.store(id, Relaxed);
        let info = look_up(&self.commands, cmd);
        EXPIRE_COMMAND.store(info.expire, Relaxed);
        let runs_others = kind == Kind::Exec || info.script;
        SCRIPT_ROOT.store(
            if runs_others && self.registry.contains(id) {
                id
            } else {
                0
            },
            Relaxed,
        );
        let ends_caching = match kind {
            Kind::Client => !self.is_client_subcommand(cmd),
            _ => true,
        };
        if flags.multi && self.registry.contains(id) && is_queued(kind, cmd.arg(0)) {
            self.registry.get_mut(id).queue_len += 1;
        }
        match kind {
            // CLIENT TRACKING, KILL ...: someone's route may change (queued: at EXEC).
            Kind::Client => self.routes.note(id, route::Change::Other, flags.multi),
            Kind::Exec => self.routes.exec(id),
            Kind::Discard => self.routes.discard(id),
            Kind::Reset => {
                self.routes.discard(id);
                self.routes.note(id, route::Change::Protocol, false);
            }
            Kind::Other => {}
        }
        match kind {
            Kind::Client => {
                if let Some(op) = op {
                    if flags.multi {
                        // Queued: it runs at EXEC, if EXEC runs.
                        self.registry.get_mut(id).queued.push(op);
                    } else {
                        self.start(id, &[op], false);
                    }
                }
            }
            Kind::Exec => {
                if self.registry.contains(id) {
                    let c = self.registry.get_mut(id);
                    let ops = std::mem::take(&mut c.queued);
                    let queued = std::mem::take(&mut c.queue_len);
                    let counted = ops.iter().any(|o| !matches!(o, Op::Read(..)));
                    if flags.multi && counted {
                        self.start(id, &ops, false);
                        self.exec_changes = Some(id);
                    } else if flags.multi && !ops.is_empty() {
                        self.watch_exec(id, &ops, queued);
                    }
                }
            }
            Kind::Discard => {
                // Whether DISCARD runs or is refused, the queued commands never will.
                if self.registry.contains(id) {
                    let c = self.registry.get_mut(id);
                    c.queued.clear();
                    c.queue_len = 0;
                }
            }
            Kind::Reset => {
                if self.registry.contains(id) {
                    let c = self.registry.get_mut(id);
                    c.queued.clear();
                    c.queue_len = 0;
                    self.start(id, &[], true);
                }
            }
            Kind::Other => self.note_read(cmd, info, id, flags),
        }
        if self.registry.contains(id) {
            let c = self.registry.get_mut(id);
            c.caching_end |= ends_caching;
            let keep = kind == Kind::Other && !info.changes_own_flags;
            c.flags = keep.then_some(flags);
            if matches!(kind, Kind::Reset | Kind::Exec) || info.hello {
                c.resp = None;
            }
        }
        self.registry.tidy(id);
    }

    /// The running command is over (the next one's filter, the cron, before-sleep): what held
    /// only while it ran (an EXEC changing tracking or routes) holds no more.
    fn command_over(&mut self) {
        self.exec_changes = None;
        self.routes.command_over();
    }

    /// [`State::on_command`] for the common case, with one lookup of the client: a command that
    /// is not CLIENT, EXEC, DISCARD or RESET, from a connection with tracking on whose flags were
    /// kept from its previous command (so nothing since could have changed them or its mirror),
    /// out of MULTI and Pub/Sub, while nothing is pending. It does what the general path does
    /// in that case: settle (end a CACHING window), note the read, keep the flags. `Unknown` for
    /// a client without state, `General` (having changed nothing) for any other case.
    fn on_plain_command<C: Command>(&mut self, cmd: &C, id: u64) -> Plain {
        let Some(c) = self.registry.find_mut(id) else {
            return Plain::Unknown;
        };
        if !self.pendings.is_empty()
            || !self.foreign.is_zero()
            || self.exec.is_some()
            || self.routes.exec_changing.is_some()
        {
            return Plain::General;
        }
        let (Some(flags), Mirror::Exact(s)) = (c.flags, &mut c.mirror) else {
            return Plain::General;
        };
        if !s.is_on() || !flags.tracking || flags.multi || flags.pubsub || flags.blocked {
            return Plain::General;
        }
        let info = look_up(&self.commands, cmd);
        if info.script {
            return Plain::General;
        }
        // settle(): the previous command has completed; it ended any CACHING window.
        if c.caching_end {
            if !caching::window_survives(false, false) {
                s.flags.remove(Flags::CACHING);
            }
            c.caching_end = false;
        }
        let remembered = info.remembers_keys() && read_is_remembered(s);
        // This command ends the window once it has completed.
        c.caching_end = true;
        c.flags = (!info.changes_own_flags).then_some(flags);
        if info.hello {
            c.resp = None;
        }
        CURRENT.store(id, Relaxed);
        WRITER.store(id, Relaxed);
        SCRIPT_ROOT.store(0, Relaxed);
        EXPIRE_COMMAND.store(info.expire, Relaxed);
        if remembered {
            c.acct.reads += queue_read(cmd, info, id, &mut self.read_keys, &mut self.after_command);
        }
        Plain::Done
    }

    /// An unknown id while a script root is set: a fake client (the script's inner command) or
    /// a real one (the next command: the script has ended).
    fn inner_or_next(&mut self, cmd: &dyn Command, id: u64) {
        self.apply_reads();
        if ffi::client_flags(id).is_some() {
            SCRIPT_ROOT.store(0, Relaxed);
            CURRENT.store(0, Relaxed);
            WRITER.store(0, Relaxed);
        } else {
            self.inner(cmd);
        }
    }

    /// A command run by a script (or EXEC's Lua, or a module's RM_Call) inside the root's
    /// command: since Redis 7.2 its reads count for the root (server.current_client), and its
    /// writes are made by the script's own client.
    fn inner(&mut self, cmd: &dyn Command) {
        self.apply_reads();
        // A command a watched EXEC ran through a script: the counter's places are off.
        self.disturb_exec();
        WRITER.store(0, Relaxed);
        let root = SCRIPT_ROOT.load(Relaxed);
        if root == 0 {
            return;
        }
        if self.is_pending(root) {
            // Its tracking is changing in this very EXEC: the state the read meets is unknown.
            self.approximate(root, doubts::SCRIPT_READ_WHILE_TRACKING_CHANGED);
            return;
        }
        // Executed now, whatever the root's MULTI flag says during EXEC.
        let info = look_up(&self.commands, cmd);
        self.note_read(cmd, info, root, ClientFlags::default());
    }

    /// A command from a client the module keeps state for: if the server will remember its
    /// keys (tracking.c trackingRememberKeys), remember them too.
    fn note_read(&mut self, cmd: &dyn Command, info: CommandInfo, id: u64, flags: ClientFlags) {
        let Some(Client {
            mirror: Mirror::Exact(s),
            ..
        }) = self.registry.get(id)
        else {
            return;
        };
        if !s.is_on() && !flags.multi {
            return;
        }
        if !info.remembers_keys() {
            return;
        }
        if flags.multi {
            let mut keys = KeyList::default();
            if collect_keys(cmd, info, &mut keys) {
                let read = keys.slice(0..keys.len()).map(<[u8]>::to_vec).collect();
                let c = self.registry.get_mut(id);
                // Its place: on_command counted it already.
                let at = c.queue_len.saturating_sub(1);
                c.queued.push(Op::Read(at, read));
            }
            return;
        }
        if flags.pubsub {
            // A RESP2 client in Pub/Sub mode is refused reads; the module does not know the
            // protocol here. (Unless the arity check refuses it first.)
            if collect_keys(cmd, info, &mut KeyList::default()) {
                self.approximate(id, doubts::PUBSUB_READ);
            }
            return;
        }
        if read_is_remembered(s) {
            let n = queue_read(cmd, info, id, &mut self.read_keys, &mut self.after_command);
            if n > 0 {
                self.registry.get_mut(id).acct.reads += n;
            }
        }
    }

    /// Remembers the reads of commands that have run.
    fn apply_reads(&mut self) {
        // In the order the server made them: the command's unseen write, then its expiries,
        // then (after it) its reads.
        self.resolve_unseen_write();
        self.place_unplaced();
        if self.after_command.is_empty() {
            return;
        }
        // Marked approximate once the loop is done (it borrows the queue); no allocation unless
        // there is one.
        let mut doubts: Vec<(u64, &str)> = Vec::new();
        for r in self.after_command.drain(..) {
            if let Some(check) = &r.check {
                // Counted now that the server's counters tell (`None`: they cannot).
                let refused = check.refused();
                if refused == Some(true) {
                    continue; // the server remembered nothing
                }
                self.registry.get_mut(r.id).acct.reads += r.keys.len() as u64;
                if refused.is_none() {
                    doubts.push((r.id, doubts::CLUSTER_REFUSAL_UNKNOWN));
                }
            }
            let unkept = &self.unkept;
            let keys = self
                .read_keys
                .slice(r.keys)
                .filter(|k| !unkept.iter().any(|(id, u)| *id == r.id && u == k));
            if !keep_items(&mut self.table, &mut self.dropped_items, r.id, keys) {
                doubts.push((r.id, doubts::TABLE_DID_NOT_KEEP));
            }
        }
        self.read_keys.clear();
        self.unkept.clear();
        for (id, why) in doubts {
            self.approximate(id, why);
        }
    }

    /// Remembers reads the server remembered (queued ones, once EXEC ran them).
    fn remember(&mut self, id: u64, keys: &[Vec<u8>]) {
        let items = keys.iter().map(Vec::as_slice);
        let kept = keep_items(&mut self.table, &mut self.dropped_items, id, items);
        self.count_reads(id, keys.len() as u64, kept);
    }

    fn count_reads(&mut self, id: u64, n: u64, kept: bool) {
        if n > 0 {
            self.registry.get_mut(id).acct.reads += n;
        }
        if !kept {
            self.approximate(id, doubts::TABLE_DID_NOT_KEEP);
        }
    }

    /// Marks `id`'s counters approximate, saying why in the server log (verbose level).
    /// The counters of `id` may be off; its entries in the table are not in doubt.
    fn doubt_counts(&mut self, id: u64, why: &str) {
        let a = &mut self.registry.get_mut(id).acct;
        if !a.approximate {
            a.approximate = true;
            note_approximate(id, why);
        }
    }

    fn approximate(&mut self, id: u64, why: &str) {
        self.unsure.insert(id);
        let a = &mut self.registry.get_mut(id).acct;
        if !a.approximate {
            a.approximate = true;
            note_approximate(id, why);
        }
    }

    /// `trackinfo.key-table` was switched: without the table nothing per key can be counted.
    pub fn key_table_switched(&mut self, on: bool) {
        if !on {
            self.table.flush();
            self.mark_all_approximate();
        }
    }

    fn invalidate(&mut self, event: &[u8], key: &[u8]) {
        if event == b"ltrim" && LTRIM_QUIET.load(Relaxed) {
            // Invalidated only if it removed something: told once it has run (placement.rs).
            if self.unseen.as_ref().is_none_or(|u| u.key() != key) {
                self.doubt_key(key, doubts::UNSEEN_WRITE_UNCONFIRMED);
            }
            return;
        }
        if event == b"evicted" {
            // Before the watched command ran (processCommand evicts before call()).
            self.note_eviction(key);
        } else {
            self.note_watched_change(Some(key));
        }
        let current = CURRENT.load(Relaxed);
        // An expiry or eviction may run inside the current command (lazily) or outside any
        // (active expiry, current_client NULL): NOLOOP skips only the former.
        // A hash field expiring (`hexpired`, then `del` if the hash empties) is an expiry too.
        let unplaced = matches!(event, b"expired" | b"evicted" | b"hexpired");
        if !self.bcast.is_empty() {
            // Expiry and eviction signal with no client (signalModifiedKey(NULL, ...)), except an
            // expire command's own deletion, which Valkey also reports as `expired`.
            let writer = if unplaced { 0 } else { WRITER.load(Relaxed) };
            let unsure_writer = (unplaced && EXPIRE_COMMAND.load(Relaxed))
                .then(|| WRITER.load(Relaxed))
                .filter(|&w| w != 0);
            self.note_bcast_write(key, writer, unsure_writer);
        }
        // Placed now inside a watched EXEC, else once the running command is known to have
        // ended (`place_unplaced`).
        let placement = if unplaced {
            self.place_or_defer(key, current)
        } else {
            Placement::Inside
        };
        let Some(ids) = self.table.invalidate(key) else {
            return;
        };
        let now = ffi::now_ms();
        if let Some(changing) = self.exec_changes.filter(|&c| ids.contains(c)) {
            self.approximate(changing, doubts::EXEC_WRITE_WHILE_TRACKING_CHANGES);
        }
        for id in ids.iter() {
            if self.exec_changes == Some(id) {
                continue; // placed nowhere: approximate above
            }
            let Some(c) = self.registry.find_mut(id) else {
                continue; // tracking off, or gone: the server sends nothing
            };
            let Mirror::Exact(s) = &c.mirror else {
                continue;
            };
            if !s.is_on() || s.flags.contains(Flags::BCAST) {
                continue;
            }
            if s.flags.contains(Flags::NOLOOP) && id == current {
                match placement {
                    Placement::Inside | Placement::Deferred => continue,
                    Placement::After => {}
                    Placement::Unknown => {
                        if !c.acct.approximate {
                            c.acct.approximate = true;
                            note_approximate(id, doubts::EXPIRY_NOLOOP_UNPLACED);
                        }
                        continue;
                    }
                }
            }
            self.credit(id, 1, 0, now);
        }
    }

    fn rebuild_bcast(&mut self) {
        let clients: Vec<(u64, &std::collections::BTreeSet<Vec<u8>>)> = self
            .registry
            .iter()
            .filter_map(|(id, c)| match &c.mirror {
                Mirror::Exact(s) if s.is_on() && s.flags.contains(Flags::BCAST) => {
                    Some((id, &s.prefixes))
                }
                _ => None,
            })
            .collect();
        let mut prefixes: Vec<Vec<u8>> = clients
            .iter()
            .flat_map(|(_, p)| p.iter().cloned())
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        self.bcast = clients
            .iter()
            .map(|(id, own)| {
                let at = own.iter().filter_map(|p| prefixes.binary_search(p).ok());
                (*id, at.collect())
            })
            .collect();
        // This cycle's writes stay with their prefix; a prefix nobody has any more goes with
        // its writes, as the server drops a prefix's pending keys with its last client.
        let mut batch: Vec<HashMap<KeyName, u64, KeyHasher>> =
            prefixes.iter().map(|_| HashMap::default()).collect();
        let old = std::mem::take(&mut self.bcast_prefixes);
        for (p, keys) in old.into_iter().zip(std::mem::take(&mut self.batch)) {
            if let Ok(i) = prefixes.binary_search(&p) {
                batch[i] = keys;
            }
        }
        self.bcast_prefixes = prefixes;
        self.batch = batch;
        self.bcast_dirty = false;
    }

    /// `unsure_writer`: a client that may or may not be the writer (NOLOOP would skip it).
    fn note_bcast_write(&mut self, key: &[u8], writer: u64, unsure_writer: Option<u64>) {
        let uncertain = IN_SLEEP_WINDOW.load(Relaxed);
        for (p, keys) in self.bcast_prefixes.iter().zip(&mut self.batch) {
            if !key.starts_with(p) {
                continue;
            }
            match keys.get_mut(key) {
                Some(w) => *w = writer,
                None => {
                    keys.insert(KeyName::new(key), writer);
                }
            }
            self.batched = true;
        }
        if !uncertain && unsure_writer.is_none() {
            return;
        }
        let mut late = Vec::new();
        let mut unsure = Vec::new();
        for (id, prefixes) in &self.bcast {
            for _ in prefixes
                .iter()
                .filter(|&&i| key.starts_with(&self.bcast_prefixes[i]))
            {
                if uncertain {
                    late.push(*id);
                }
                if unsure_writer == Some(*id) {
                    unsure.push(*id);
                }
            }
        }
        for id in late {
            // Written inside the server's before-sleep work: it may belong to this cycle's
            // messages or to the next one's.
            self.approximate(id, doubts::BCAST_WRITE_IN_SLEEP);
        }
        for id in unsure {
            self.approximate(id, doubts::OWN_EXPIRE_COMMAND);
        }
    }

    fn broadcast(&mut self) {
        if !self.batched {
            return;
        }
        let now = ffi::now_ms();
        let mut sent: Vec<(u64, usize, u64)> = Vec::new();
        for (id, prefixes) in &self.bcast {
            let Some(c) = self.registry.get(*id) else {
                continue;
            };
            let noloop = matches!(&c.mirror, Mirror::Exact(s) if s.flags.contains(Flags::NOLOOP));
            for &i in prefixes {
                let keys = &self.batch[i];
                // NOLOOP leaves out the keys this client wrote last.
                let n = if noloop {
                    keys.values().filter(|&&w| w != *id).count()
                } else {
                    keys.len()
                } as u64;
                if n > 0 {
                    sent.push((*id, i, n));
                }
            }
        }
        for (id, i, n) in sent {
            self.credit(id, n, 0, now);
            let a = &mut self.registry.get_mut(id).acct;
            match a.prefix_stats.get_mut(&self.bcast_prefixes[i]) {
                Some(count) => *count += n,
                None => {
                    a.prefix_stats.insert(self.bcast_prefixes[i].clone(), n);
                }
            }
        }
        for keys in &mut self.batch {
            // Emptied for the next cycle; a large one is given back rather than kept.
            if keys.capacity() > 4096 {
                *keys = HashMap::default();
            } else {
                keys.clear();
            }
        }
        self.batched = false;
    }

    fn flush(&mut self) {
        self.note_watched_change(None);
        self.table.flush();
        // Both tables are empty now: nothing the mirror held can be wrong any more.
        self.unsure = HashSet::new();
        self.all_unsure = false;
        let now = ffi::now_ms();
        let ids: Vec<u64> = self.tracking_ids();
        for id in ids {
            self.credit(id, 0, 1, now);
        }
    }

    /// Whether the mirrored table's entries for `id` may be wrong.
    pub fn keys_doubted(&self, id: u64) -> bool {
        self.all_unsure || self.unsure.contains(&id)
    }

    /// What the module counted for `id`: `None` where it cannot know (partial clients).
    pub fn acct(&self, id: u64) -> Option<Acct> {
        match self.registry.get(id) {
            None => Some(Acct::default()),
            Some(Client {
                mirror: Mirror::Exact(s),
                acct,
                ..
            }) => {
                let _ = s;
                let mut a = acct.clone();
                a.approximate |= self.all_unsure || self.unsure.contains(&id);
                Some(a)
            }
            Some(_) => None,
        }
    }

    /// True when a client may hold table entries the module did not see (partial clients).
    pub fn table_at_risk(&self) -> bool {
        self.all_unsure
            || !self.unsure.is_empty()
            || self
                .registry
                .iter()
                .any(|(_, c)| matches!(c.mirror, Mirror::Partial) || c.acct.approximate)
    }

    /// The server's table totals disagree with the mirror: nothing counted is exact any more.
    pub fn mark_all_approximate(&mut self) {
        self.all_unsure = true;
        for id in self.tracking_ids() {
            self.approximate(id, doubts::TABLE_DIFFERS);
        }
    }

    /// The CLIENT TRACKING / CLIENT CACHING a command carries, if its arity lets it run.
    fn client_op(&self, cmd: &dyn Command) -> Option<Op> {
        let argc = cmd.argc();
        if argc < 3 {
            return None;
        }
        let sub = cmd.arg(1);
        if sub.eq_ignore_ascii_case(b"tracking") {
            Some(Op::Tracking(
                (2..argc).map(|i| cmd.arg(i).to_vec()).collect(),
            ))
        } else if sub.eq_ignore_ascii_case(b"caching") && argc == 3 {
            Some(Op::Caching(cmd.arg(2).to_vec()))
        } else {
            None
        }
    }

    /// Whether the server resolves this CLIENT command to a subcommand (even one that then
    /// fails its arity check): those keep the CACHING window open; `CLIENT` alone or with an
    /// unknown subcommand does not.
    fn is_client_subcommand(&self, cmd: &dyn Command) -> bool {
        cmd.argc() >= 2 && {
            let sub = cmd.arg(1);
            self.client_subcommands
                .iter()
                .any(|s| s.eq_ignore_ascii_case(sub))
        }
    }

    fn note_foreign(&mut self, f: impl FnOnce(&mut Counts)) {
        if self.baseline.is_none() {
            self.baseline = read_stats();
        }
        f(&mut self.foreign);
    }

    /// Replays `ops` (or a RESET) for `id` into a pending outcome, kept once the server ran it.
    fn start(&mut self, id: u64, ops: &[Op], reset: bool) {
        if self.baseline.is_none() {
            // The counters before the command runs.
            self.baseline = read_stats();
        }
        let client = self.registry.get(id).cloned().unwrap_or_default();
        let p = if reset {
            Pending {
                client: id,
                expect: Counts {
                    reset: 1,
                    ..Counts::default()
                },
                failed: Some(Counts::default()),
                mirror: Mirror::Exact(TrackingState::default()),
                since_ms: -1,
                ops: Vec::new(),
                before: client.mirror,
                before_since_ms: client.since_ms,
                reads: Vec::new(),
            }
        } else {
            let exists =
                |rid: i64| u64::try_from(rid).is_ok_and(|r| ffi::client_flags(r).is_some());
            let r = replay_ops(&client.mirror, client.since_ms, ops, &exists, ffi::now_ms());
            Pending {
                client: id,
                expect: r.expect,
                failed: r.failed,
                mirror: r.mirror,
                since_ms: r.since_ms,
                ops: ops.to_vec(),
                before: client.mirror,
                before_since_ms: client.since_ms,
                reads: r.reads,
            }
        };
        self.pendings.push(p);
    }

    /// Keeps or drops pending outcomes, on the word of the server's counters.
    fn resolve(&mut self) {
        if self.pendings.is_empty() && self.foreign.is_zero() {
            return;
        }
        // A command postponed by CLIENT PAUSE has not run yet.
        let postponed = self
            .pendings
            .iter()
            .any(|p| ffi::client_flags(p.client).is_some_and(|f| f.blocked));
        if postponed {
            return;
        }
        let pendings = std::mem::take(&mut self.pendings);
        let foreign = std::mem::take(&mut self.foreign);
        let base = self.baseline.take();
        let now = read_stats();
        let expect = pendings
            .iter()
            .fold(Counts::default(), |a, p| a.add(p.expect));
        let ran = match (base, now) {
            (Some(b), Some(n)) => delta(n.calls, b.calls)
                .map(|d| (d, delta(n.rejected, b.rejected), delta(n.failed, b.failed))),
            _ => None,
        };
        // Calls made by scripts or other modules (`foreign`) share the counters. Scripts are
        // refused CLIENT (noscript), which the server counts as rejected: when exactly the foreign
        // calls were rejected and the real ones all ran, nothing is ambiguous.
        let all_ran = |d: Counts, rejected: Option<Counts>| {
            d == expect.add(foreign) || (d == expect && rejected == Some(foreign))
        };
        match ran {
            Some((d, _, _)) if d.is_zero() => {}
            Some((d, rejected, failed)) if all_ran(d, rejected) => {
                let failed = if foreign.is_zero() { failed } else { None };
                let predicted = pendings
                    .iter()
                    .try_fold(Counts::default(), |a, p| p.failed.map(|f| a.add(f)));
                let agrees = predicted.is_none() || failed.is_none() || predicted == failed;
                for p in pendings {
                    if !agrees {
                        log_warning(format!(
                            "trackinfo: client {} got errors the replay did not predict; marking it partial",
                            p.client
                        ));
                    }
                    let mirror = if agrees { p.mirror } else { Mirror::Partial };
                    self.apply(p.client, mirror, p.since_ms, &p.reads);
                }
            }
            _ => {
                for p in pendings.iter().filter(|p| !p.expect.is_zero()) {
                    log_warning(format!(
                        "trackinfo: cannot tell which tracking commands ran for client {}; marking it partial",
                        p.client
                    ));
                    self.apply(p.client, Mirror::Partial, -1, &[]);
                }
            }
        }
    }

    fn apply(&mut self, id: u64, mirror: Mirror, since_ms: i64, reads: &[(u64, Vec<u8>)]) {
        if ffi::client_flags(id).is_none() {
            return; // gone meanwhile
        }
        let c = self.registry.get_mut(id);
        let was_on = c.tracking_on() != Some(false);
        let now_on = matches!(&mirror, Mirror::Exact(s) if s.is_on());
        if now_on && !was_on {
            // The counters run from the moment tracking is switched on.
            c.acct = Acct::default();
        }
        c.mirror = mirror;
        c.since_ms = since_ms;
        self.bcast_dirty = true;
        // Its redirect may have changed.
        self.routes.moved();
        if !reads.is_empty() {
            let keys: Vec<Vec<u8>> = reads.iter().map(|(_, k)| k.clone()).collect();
            self.remember(id, &keys);
            // EXEC ran them, but the module cannot tell whether each did.
            self.approximate(id, doubts::EXEC_WITH_CLIENT_COMMANDS);
        }
        self.registry.tidy(id);
    }

    /// Brings one client's entry up to date with what its last command did, using the server's
    /// flags for it. Called before looking at a client, once its last command has completed.
    fn settle(&mut self, id: u64, flags: ClientFlags) {
        let pending = self.pendings.iter().any(|p| p.client == id);
        if !self.registry.contains(id) {
            if flags.tracking && !pending {
                log_warning(format!(
                    "trackinfo: client {id} tracks but the module did not see it start; marking it partial"
                ));
                self.registry.put(id, Client::partial());
            }
            return;
        }
        let c = self.registry.get_mut(id);
        if c.caching_end && !flags.blocked {
            if !caching::window_survives(false, flags.multi) {
                if let Mirror::Exact(s) = &mut c.mirror {
                    s.flags.remove(Flags::CACHING);
                }
            }
            c.caching_end = false;
        }
        if !pending {
            match &c.mirror {
                Mirror::Partial if !flags.tracking && !flags.multi && c.queued.is_empty() => {
                    // Tracking is off: nothing unknown is left.
                    c.mirror = Mirror::Exact(TrackingState::default());
                    c.since_ms = -1;
                    self.bcast_dirty = true;
                }
                Mirror::Exact(s) if s.is_on() != flags.tracking && !flags.blocked => {
                    log_warning(format!(
                        "trackinfo: client {id} tracking is {} but the module thought otherwise; marking it partial",
                        if flags.tracking { "on" } else { "off" }
                    ));
                    c.mirror = Mirror::Partial;
                    c.since_ms = -1;
                    self.bcast_dirty = true;
                }
                _ => {}
            }
        }
        self.registry.tidy(id);
    }

    /// Settles everything that can be settled before answering a query about `target`.
    /// `caller`'s own last command is the query itself, which must not end its CACHING window.
    pub fn prepare(&mut self, target: u64, caller: u64, in_exec: bool) -> Option<ClientFlags> {
        self.prepare_own(in_exec);
        // Settled already, and no command of its own since (each one leaves a CACHING window to
        // end): the flags kept from its last command still hold, as only its own commands change
        // them. Reading them costs a getpeername system call (10,000 for TRACKINFO.CLIENTS).
        if let Some(c) = self.registry.get(target).filter(|_| target != caller) {
            if let (Some(flags), false, Mirror::Exact(_)) = (c.flags, c.caching_end, &c.mirror) {
                return Some(flags);
            }
        }
        let flags = ffi::client_flags(target)?;
        if target != caller {
            self.settle(target, flags);
        }
        Some(flags)
    }

    /// [`State::prepare`] for the caller asking about itself: it is connected (it is running
    /// this command) and nothing of it needs settling, so its client info is not read (that
    /// costs a getpeername system call).
    pub fn prepare_own(&mut self, in_exec: bool) {
        self.apply_reads();
        if !in_exec {
            self.resolve();
            self.resolve_exec();
        }
    }

    /// The protocols CLIENT LIST just gave, kept for the clients the module has a record of.
    pub fn note_protocols(&mut self, listed: &[(u64, i64)]) {
        for &(id, resp) in listed {
            if self.registry.contains(id) {
                self.registry.get_mut(id).resp = Some(resp);
            }
        }
    }

    /// The kept protocol of `id`, if any.
    pub fn protocol(&self, id: u64) -> Option<i64> {
        self.registry.get(id).and_then(|c| c.resp)
    }

    /// Whether the replay for `id` still waits for the server's word.
    pub fn is_pending(&self, id: u64) -> bool {
        self.pendings.iter().any(|p| p.client == id)
    }

    /// The view of `id` from inside its own EXEC: its queued CLIENT commands run one by one, and
    /// the server's counters say how many have run so far. `None` when that cannot be told.
    pub fn exec_view(&self, id: u64) -> Option<View> {
        let [p] = self.pendings.as_slice() else {
            return None;
        };
        if p.client != id {
            return None;
        }
        let (now, base) = (read_stats()?, self.baseline?);
        // Script calls so far were refused (noscript) and counted as rejected, not as calls.
        if delta(now.rejected, base.rejected)? != self.foreign {
            return None;
        }
        let d = delta(now.calls, base.calls)?;
        let n = usize::try_from(d.tracking + d.caching).ok()?;
        // The queued ops up to the n-th counted one (reads in between have no counter).
        let end = if n == 0 {
            0
        } else {
            p.ops
                .iter()
                .enumerate()
                .filter(|(_, o)| !matches!(o, Op::Read(..)))
                .nth(n - 1)?
                .0
                + 1
        };
        let ran = &p.ops[..end];
        let exists = |rid: i64| u64::try_from(rid).is_ok_and(|r| ffi::client_flags(r).is_some());
        let r = replay_ops(&p.before, p.before_since_ms, ran, &exists, ffi::now_ms());
        match r.mirror {
            Mirror::Exact(state) => Some(View::new(id, state, Fidelity::Exact, r.since_ms)),
            Mirror::Partial => None,
        }
    }

    /// The exact view of `id` if the module has one: `None` means ask CLIENT LIST.
    pub fn exact_view(&self, id: u64) -> Option<View> {
        let (state, since_ms) = match self.registry.get(id) {
            None => (TrackingState::default(), -1),
            Some(Client {
                mirror: Mirror::Exact(s),
                since_ms,
                ..
            }) => (s.clone(), *since_ms),
            Some(_) => return None,
        };
        Some(View::new(id, state, Fidelity::Exact, since_ms))
    }

    /// Records that CLIENT LIST showed `id`'s redirect as broken (the bit is sticky until the
    /// next ON or OFF, which the replay applies).
    pub fn mark_broken(&mut self, id: u64) {
        if let Some(Client {
            mirror: Mirror::Exact(s),
            ..
        }) = self.registry.get(id).cloned().as_ref()
        {
            let mut s = s.clone();
            s.flags.insert(Flags::BROKEN_REDIR);
            self.registry.get_mut(id).mirror = Mirror::Exact(s);
        }
    }

    /// Clients the module keeps a record of: registry entries, and doubts about the table
    /// entries of clients without one. Both go when the client disconnects.
    pub fn client_records(&self) -> usize {
        let doubts = self
            .unsure
            .iter()
            .filter(|&&id| !self.registry.contains(id));
        self.registry.len() + doubts.count()
    }

    /// Ids of clients the module knows to track (or may track: partial), in id order.
    pub fn tracking_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .registry
            .iter()
            .filter(|(_, c)| c.tracking_on() != Some(false))
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn mark_partial(&mut self, id: u64) {
        let c = self.registry.get_mut(id);
        c.mirror = Mirror::Partial;
        c.since_ms = -1;
        self.bcast_dirty = true;
    }
}

/// The errors of processCommand's cluster checks (cluster.c getNodeByQuery,
/// clusterRedirectClient). A command that runs never answers them.
const ROUTING_ERRORS: [&str; 5] = [
    "errorstat_MOVED",
    "errorstat_ASK",
    "errorstat_CROSSSLOT",
    "errorstat_TRYAGAIN",
    "errorstat_CLUSTERDOWN",
];

/// In a cluster the server can still refuse a read after the filter saw it: a key another
/// node serves (MOVED, ASK), keys of several slots (CROSSSLOT), the cluster down; a script's
/// command, a key the node does not serve. It then remembers nothing. The server's counters
/// before and after the command tell.
#[derive(Debug, Clone)]
enum Refusal {
    /// A connection's own command: the cluster errors answered before it (INFO errorstats, a
    /// short section: cheap enough to read around every tracked read).
    Routing(u64),
    /// A script's command (refused with a plain ERR): its name and `rejected_calls` before it.
    Rejected(Vec<u8>, u64),
}

impl Refusal {
    /// Before a read runs; `None` outside a cluster, or when the counters cannot be read (then
    /// the check of the table against the server's totals is left to tell).
    fn arm(direct: bool, name: impl FnOnce() -> Vec<u8>) -> Option<Refusal> {
        if !ffi::cluster_enabled() {
            return None;
        }
        if direct {
            routing_errors().map(Refusal::Routing)
        } else {
            let name = name();
            rejected_calls(&name).map(|n| Refusal::Rejected(name, n))
        }
    }

    /// Whether the server refused the read; `None` when that cannot be told.
    fn refused(&self) -> Option<bool> {
        let (now, before) = match self {
            Refusal::Routing(before) => (routing_errors()?, *before),
            Refusal::Rejected(name, before) => (rejected_calls(name)?, *before),
        };
        match now.cmp(&before) {
            std::cmp::Ordering::Greater => Some(true),
            std::cmp::Ordering::Equal => Some(false),
            std::cmp::Ordering::Less => None, // CONFIG RESETSTAT
        }
    }
}

/// How many cluster errors the server has answered (errorstats `count=N`).
fn routing_errors() -> Option<u64> {
    let values = ffi::info_fields("errorstats", &ROUTING_ERRORS)?;
    values.iter().try_fold(0u64, |sum, v| match v {
        None => Some(sum),
        Some(v) => {
            let n = crate::rules::parse_i64(v.strip_prefix(b"count=")?)?;
            Some(sum + u64::try_from(n).ok()?)
        }
    })
}

/// A command's `rejected_calls` in INFO commandstats: every command the server refuses after
/// the filter saw it, a script's included (script_lua.c / script.c scriptCall).
fn rejected_calls(name: &[u8]) -> Option<u64> {
    let name = std::str::from_utf8(name).ok()?;
    Some(ffi::command_stats(&[name])?.first()?.rejected)
}

fn note_approximate(id: u64, why: &str) {
    redis_module::logging::log_verbose(format!(
        "trackinfo: client {id}: counters approximate from now on: {why}"
    ));
}

/// The view CLIENT LIST allows: on/off, bcast, broken redirect and the redirect id.
pub fn listed_view(l: &Listed) -> View {
    let mut flags = Flags::empty();
    flags.set(Flags::ON, l.tracking);
    flags.set(Flags::BCAST, l.tracking && l.bcast);
    flags.set(Flags::BROKEN_REDIR, l.tracking && l.broken_redirect);
    let state = TrackingState {
        flags,
        redirect: l.redir.max(0),
        prefixes: Default::default(),
    };
    let fidelity = if l.tracking {
        Fidelity::Partial
    } else {
        Fidelity::Exact
    };
    let mut v = View::new(l.id, state, fidelity, -1);
    v.resp = l.resp;
    v
}

/// The result of replaying a batch of queued (or single) CLIENT commands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replayed {
    mirror: Mirror,
    since_ms: i64,
    expect: Counts,
    failed: Option<Counts>,
    /// Keys of queued reads the server remembers, given the state when each ran, with the
    /// reads' places in the transaction.
    reads: Vec<(u64, Vec<u8>)>,
}

/// Whether tracking.c remembers a read for a client in this state: tracking on, not BCAST, and
/// not (OPTIN without CACHING yes) nor (OPTOUT with CACHING no).
fn read_is_remembered(s: &TrackingState) -> bool {
    let f = s.flags;
    let caching = f.contains(Flags::CACHING);
    // tracking.c: `if ((optin && !caching_given) || (optout && caching_given)) return;`
    let skipped = if caching {
        f.contains(Flags::OPTOUT)
    } else {
        f.contains(Flags::OPTIN)
    };
    s.is_on() && !f.contains(Flags::BCAST) && !skipped
}

/// Replays CLIENT TRACKING/CACHING commands in order, as EXEC (or a lone command) runs them.
fn replay_ops(
    mirror: &Mirror,
    since_ms: i64,
    ops: &[Op],
    exists: &dyn Fn(i64) -> bool,
    now_ms: i64,
) -> Replayed {
    let mut r = Replayed {
        mirror: mirror.clone(),
        since_ms,
        expect: Counts::default(),
        failed: Some(Counts::default()),
        reads: Vec::new(),
    };
    for op in ops {
        let is_err = |x: &ServerReply| matches!(x, ServerReply::Error(_));
        match op {
            Op::Tracking(args) => {
                r.expect.tracking += 1;
                let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                match &r.mirror {
                    Mirror::Exact(s) => {
                        let (next, replies) = tracking::replay(s, &argv, exists);
                        if replies.iter().any(is_err) {
                            if let Some(f) = r.failed.as_mut() {
                                f.tracking += 1;
                            }
                        }
                        if !s.is_on() && next.is_on() {
                            r.since_ms = now_ms;
                        }
                        r.mirror = Mirror::Exact(next);
                    }
                    Mirror::Partial => {
                        r.failed = None;
                        // OFF needs nothing the module lacks; then the client is exact again.
                        if tracking::parse(&argv, exists)
                            .is_ok_and(|p| p.switch == tracking::Switch::Off)
                        {
                            r.mirror = Mirror::Exact(TrackingState::default());
                            r.since_ms = -1;
                        }
                    }
                }
            }
            Op::Caching(arg) => {
                r.expect.caching += 1;
                match &r.mirror {
                    Mirror::Exact(s) => {
                        let (next, reply) = caching::replay(s, arg);
                        if is_err(&reply) {
                            if let Some(f) = r.failed.as_mut() {
                                f.caching += 1;
                            }
                        }
                        r.mirror = Mirror::Exact(next);
                    }
                    Mirror::Partial => r.failed = None,
                }
            }
            Op::Read(at, keys) => {
                if let Mirror::Exact(s) = &r.mirror {
                    if read_is_remembered(s) {
                        r.reads.extend(keys.iter().map(|k| (*at, k.clone())));
                    }
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(cmds: &[&str]) -> Vec<Op> {
        cmds.iter()
            .map(|c| {
                let mut w = c.split(' ');
                match w.next() {
                    Some("tracking") => Op::Tracking(w.map(|s| s.as_bytes().to_vec()).collect()),
                    _ => Op::Caching(w.next().unwrap_or("").as_bytes().to_vec()),
                }
            })
            .collect()
    }

    fn off() -> Mirror {
        Mirror::Exact(TrackingState::default())
    }

    #[test]
    fn command_names_are_matched_case_insensitively() {
        assert_eq!(kind(b"CLIENT"), Kind::Client);
        assert_eq!(kind(b"config"), Kind::Other);
        assert_eq!(kind(b"cLiEnT"), Kind::Client);
        assert_eq!(kind(b"exec"), Kind::Exec);
        assert_eq!(kind(b"Discard"), Kind::Discard);
        assert_eq!(kind(b"RESET"), Kind::Reset);
        assert_eq!(kind(b"GET"), Kind::Other);
        assert_eq!(kind(b"clients"), Kind::Other);
    }

    #[test]
    fn a_queued_batch_replays_in_order_and_counts_calls_and_errors() {
        let r = replay_ops(
            &off(),
            -1,
            &ops(&[
                "caching yes",
                "tracking on optin",
                "caching yes",
                "tracking on optout",
            ]),
            &|_| false,
            42,
        );
        let Mirror::Exact(s) = &r.mirror else {
            panic!("exact")
        };
        assert_eq!(s.flag_names(), ["on", "optin", "caching-yes"]);
        assert_eq!(r.since_ms, 42);
        assert_eq!(
            r.expect,
            Counts {
                tracking: 2,
                caching: 2,
                reset: 0
            }
        );
        assert_eq!(
            r.failed,
            Some(Counts {
                tracking: 1,
                caching: 1,
                reset: 0
            })
        );
    }

    #[test]
    fn a_partial_client_becomes_exact_when_it_switches_tracking_off() {
        let r = replay_ops(
            &Mirror::Partial,
            -1,
            &ops(&["tracking off", "tracking on bcast prefix a"]),
            &|_| false,
            7,
        );
        let Mirror::Exact(s) = &r.mirror else {
            panic!("exact")
        };
        assert_eq!(s.flag_names(), ["on", "bcast"]);
        assert_eq!(r.since_ms, 7);
        assert_eq!(r.failed, None, "errors on a partial client are unknown");
    }

    #[test]
    fn reads_are_remembered_as_optin_optout_and_caching_decide() {
        let st = |f: Flags| TrackingState {
            flags: Flags::ON | f,
            ..Default::default()
        };
        assert!(read_is_remembered(&st(Flags::empty())));
        assert!(!read_is_remembered(&TrackingState::default()));
        assert!(!read_is_remembered(&st(Flags::BCAST)));
        assert!(!read_is_remembered(&st(Flags::OPTIN)));
        assert!(read_is_remembered(&st(Flags::OPTIN | Flags::CACHING)));
        assert!(read_is_remembered(&st(Flags::OPTOUT)));
        assert!(!read_is_remembered(&st(Flags::OPTOUT | Flags::CACHING)));
    }

    #[test]
    fn queued_reads_count_with_the_caching_state_at_their_place() {
        let mut ops = ops(&["tracking on optin", "caching yes"]);
        ops.insert(1, Op::Read(1, vec![b"before".to_vec()]));
        ops.push(Op::Read(3, vec![b"after".to_vec()]));
        let r = replay_ops(&off(), -1, &ops, &|_| false, 1);
        assert_eq!(r.reads, [(3, b"after".to_vec())]);
    }

    #[test]
    fn a_partial_client_stays_partial_when_on_is_repeated() {
        let r = replay_ops(&Mirror::Partial, -1, &ops(&["tracking on"]), &|_| true, 7);
        assert_eq!(r.mirror, Mirror::Partial);
    }

    #[test]
    fn tracking_since_is_kept_across_a_repeated_on() {
        let on = replay_ops(&off(), -1, &ops(&["tracking on"]), &|_| true, 5);
        let again = replay_ops(
            &on.mirror,
            on.since_ms,
            &ops(&["tracking on noloop"]),
            &|_| true,
            9,
        );
        assert_eq!(again.since_ms, 5);
    }

    #[test]
    fn listed_view_shows_only_what_client_list_exposes() {
        let v = listed_view(&Listed {
            id: 3,
            tracking: true,
            bcast: true,
            broken_redirect: true,
            in_multi: false,
            pubsub: false,
            resp: 3,
            redir: 9,
        });
        assert_eq!(v.state.flag_names(), ["on", "bcast", "broken_redirect"]);
        assert_eq!(v.state.reported_redirect(), 9);
        assert_eq!(v.fidelity, Fidelity::Partial);
        let off = listed_view(&Listed {
            id: 4,
            redir: -1,
            ..Default::default()
        });
        assert_eq!(
            (
                off.state.flag_names(),
                off.state.reported_redirect(),
                off.fidelity
            ),
            (vec!["off"], -1, Fidelity::Exact)
        );
    }
}
