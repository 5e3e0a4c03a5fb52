//! Where a change falls among the commands the filter saw: what EXEC ran and where its writes
//! fell among its reads, whether an expiry or eviction came inside the running command or after
//! it, and whether a command wrote a key with no keyspace event. The server's own counters say
//! (`total_commands_processed`, `rdb_changes_since_last_save`; docs/design.md "Where a change
//! falls"); the pure part is `transaction.rs`.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use super::{keep_items, replay_ops, State, CURRENT, SCRIPT_ROOT, WRITER};
use crate::clients::{Client, Mirror, Op};
use crate::rules::Flags;
use crate::{doubts, ffi, transaction};

/// A command that may write `key` unseen.
#[derive(Debug)]
pub(super) struct UnseenWrite {
    key: Vec<u8>,
    /// The server's current client then (NOLOOP compares with it) and the writer
    /// (signalModifiedKey's `c`, which BCAST NOLOOP compares with): the command's client, or
    /// inside a script the script's caller and the script's own client (0).
    current: u64,
    writer: u64,
    /// What tells that it wrote, read before it ran.
    before: Before,
    /// A keyspace event named the key meanwhile: the change was seen.
    seen: bool,
    /// A keyspace event named another key meanwhile (a cron's expiry): the counts may move for it.
    others: bool,
}

/// The server's counts a command that writes unseen moves.
#[derive(Debug, Clone, Copy)]
pub(super) enum Before {
    /// PFCOUNT stores its cardinality: INFO persistence `rdb_changes_since_last_save`
    /// (server.dirty) grows by one.
    Dirty(u64),
    /// HMGET deletes a hash whose fields all expired, and counts no change: its database
    /// (DBSIZE) holds one key fewer.
    Keys { db: i32, keys: u64 },
    /// LTRIM on Valkey: `rdb_changes_since_last_save` grows by the elements it removed, and
    /// only then is the key invalidated.
    Trimmed(u64),
}

/// Which of the server's counts tells whether a command wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Told {
    /// PFCOUNT: the change counter grows by one.
    Dirty,
    /// HMGET: the database holds one key fewer.
    Keys,
    /// LTRIM (Valkey): the change counter grows by the elements removed.
    Trimmed,
}

impl Before {
    /// Before a command named `name` runs, in database `db` (`None`: not known).
    fn read(by: Told, db: Option<i32>) -> Option<Before> {
        match by {
            Told::Dirty => return ffi::server_dirty().map(Before::Dirty),
            Told::Trimmed => return ffi::server_dirty().map(Before::Trimmed),
            Told::Keys => {}
        }
        let db = db?;
        Some(Before::Keys {
            db,
            keys: ffi::db_size(db)?,
        })
    }

    /// The same counts, read now.
    fn read_again(self) -> Option<Before> {
        Some(match self {
            Before::Dirty(_) => Before::Dirty(ffi::server_dirty()?),
            Before::Trimmed(_) => Before::Trimmed(ffi::server_dirty()?),
            Before::Keys { db, .. } => Before::Keys {
                db,
                keys: ffi::db_size(db)?,
            },
        })
    }

    /// Whether the command wrote: `None` when the counts moved otherwise.
    fn wrote(self) -> Option<bool> {
        match self {
            Before::Dirty(before) => match ffi::server_dirty()?.checked_sub(before)? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            },
            // One per element removed.
            Before::Trimmed(before) => Some(ffi::server_dirty()?.checked_sub(before)? > 0),
            Before::Keys { db, keys } => match ffi::db_size(db)? {
                now if now == keys => Some(false),
                now if now + 1 == keys => Some(true),
                _ => None,
            },
        }
    }
}

/// Where an expiry or eviction falls with respect to the running command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// Inside it (or it does not matter which): from its client, before its reads were kept.
    Inside,
    /// After it: from no client.
    After,
    /// Noted, to be placed once the command is over.
    Deferred,
    Unknown,
}

/// An expiry or eviction of a key while a command ran or after it: inside the command (a lazy
/// expiry, an eviction before it ran) it came before the command's reads were remembered and,
/// for NOLOOP, from that command's client; after it (the cron's or before-sleep's active expiry,
/// an eviction timer) it came from no client, and after the reads. `total_commands_processed`
/// tells which: the command is counted when it ends (server.c call()).
#[derive(Debug)]
pub(super) struct Unplaced {
    key: Vec<u8>,
    /// `total_commands_processed` when it happened.
    count: u64,
    at_ms: i64,
    /// Clients whose reads by the running command include the key.
    readers: Vec<u64>,
    /// The running command's client, NOLOOP, holding the key: skipped if inside its command.
    noloop_holder: Option<u64>,
}

/// An EXEC whose queued reads the server remembers if it runs them (transaction.rs).
pub(super) struct ExecWatch {
    client: u64,
    /// `total_commands_processed` before EXEC.
    base: u64,
    /// How many commands EXEC runs if it runs.
    queued: u64,
    /// The keys the reads remember, with their places in the transaction.
    reads: Vec<(u64, Vec<u8>)>,
    read_keys: HashSet<Vec<u8>>,
    /// Changes to those keys (and flushes) while it is watched, with their places.
    events: Vec<transaction::Event>,
    /// A place could not be read, or a command the filter saw ran inside the EXEC.
    disturbed: bool,
}

impl UnseenWrite {
    pub(super) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl State {
    /// Watches a command that may change `key` without a keyspace event, if anyone would be
    /// sent an invalidation for it.
    pub(super) fn watch_unseen_write(&mut self, key: &[u8], client: u64, by: Told) {
        self.resolve_unseen_write();
        let bcast = self.bcast_prefixes.iter().any(|p| key.starts_with(p));
        if !bcast && self.table.invalidate_would_reach(key).is_none() {
            return;
        }
        // None for a script's command (a fake client): its database is the script caller's.
        let flags = ffi::client_flags(client);
        if flags.is_some_and(|f| f.multi) {
            // Queued: EXEC runs it with no filter call to tell its write from the others.
            self.doubt_key(key, doubts::UNSEEN_WRITE_UNCONFIRMED);
            return;
        }
        match Before::read(by, flags.map(|f| f.db)) {
            Some(before) => {
                let own = self.registry.contains(client).then_some(client);
                self.unseen = Some(UnseenWrite {
                    key: key.to_vec(),
                    current: own.unwrap_or(SCRIPT_ROOT.load(Relaxed)),
                    writer: own.unwrap_or(0),
                    before,
                    seen: false,
                    others: false,
                })
            }
            None => self.doubt_key(key, doubts::UNSEEN_WRITE_UNCONFIRMED),
        }
    }

    /// Once the watched command has run: if the server counted a change no keyspace event
    /// named, it is the key's invalidation, made by that command's client before its own read
    /// of the key was remembered.
    pub(super) fn resolve_unseen_write(&mut self) {
        let Some(u) = self.unseen.take() else {
            return;
        };
        if u.seen {
            return; // its keyspace events said everything
        }
        match u.before.wrote() {
            Some(false) => {}
            Some(true) if !u.others => {
                let (current, writer) = (CURRENT.load(Relaxed), WRITER.load(Relaxed));
                CURRENT.store(u.current, Relaxed);
                WRITER.store(u.writer, Relaxed);
                self.invalidate(b"unseen", &u.key);
                CURRENT.store(current, Relaxed);
                WRITER.store(writer, Relaxed);
            }
            _ => self.doubt_key(&u.key, doubts::UNSEEN_WRITE_UNCONFIRMED),
        }
    }

    /// Marks approximate every client an invalidation of `key` may have reached.
    pub(super) fn doubt_key(&mut self, key: &[u8], why: &str) {
        let mut ids: Vec<u64> = self
            .table
            .invalidate_would_reach(key)
            .map(|ids| ids.iter().collect())
            .unwrap_or_default();
        for (id, prefixes) in &self.bcast {
            if prefixes
                .iter()
                .any(|&i| key.starts_with(&self.bcast_prefixes[i]))
            {
                ids.push(*id);
            }
        }
        for id in ids {
            if self.registry.contains(id) {
                self.approximate(id, why);
            }
        }
    }

    /// Where an expiry or eviction of `key` falls: inside the running command or after it. A
    /// watched EXEC's counter says at once; otherwise it is noted with the server's counter if
    /// it matters (a read of the running command, or its NOLOOP client holding the key) and
    /// placed once the command is over.
    pub(super) fn place_or_defer(&mut self, key: &[u8], current: u64) -> Placement {
        if let Some(w) = &self.exec {
            // EXEC counts once it ends; its commands run at base + 0.. base + queued - 1.
            return match ffi::commands_processed().and_then(|n| n.checked_sub(w.base)) {
                Some(pos) if pos <= w.queued => Placement::Inside,
                Some(_) => Placement::After,
                None => Placement::Unknown,
            };
        }
        let mut readers: Vec<u64> = Vec::new();
        for r in &self.after_command {
            if !readers.contains(&r.id) && self.read_keys.slice(r.keys.clone()).any(|k| k == key) {
                readers.push(r.id);
            }
        }
        let noloop_holder = (current != 0
            && self.table.holds(current, key)
            && matches!(
                self.registry.get(current),
                Some(Client { mirror: Mirror::Exact(s), .. })
                    if s.is_on() && s.flags.contains(Flags::NOLOOP) && !s.flags.contains(Flags::BCAST)
            ))
        .then_some(current);
        if readers.is_empty() && noloop_holder.is_none() {
            return Placement::Inside; // nothing depends on it
        }
        // Counted in the filter, where the module may not ask the server a protocol.
        for &id in readers.iter().chain(noloop_holder.iter()) {
            self.warm_route(id);
        }
        let Some(count) = ffi::commands_processed() else {
            for id in readers {
                self.approximate(id, doubts::EXPIRY_OF_READ_UNPLACED);
            }
            return Placement::Unknown;
        };
        self.unplaced.push(Unplaced {
            key: key.to_vec(),
            count,
            at_ms: ffi::now_ms(),
            readers,
            noloop_holder,
        });
        Placement::Deferred
    }

    /// Places the noted expiries and evictions, now that the command that ran then is over:
    /// the counter has grown by one since (it was inside it) or not at all (after it).
    pub(super) fn place_unplaced(&mut self) {
        if self.unplaced.is_empty() {
            return;
        }
        let now = ffi::commands_processed();
        for u in std::mem::take(&mut self.unplaced) {
            match now.and_then(|n| n.checked_sub(u.count)) {
                // Inside the command: before its reads were remembered, and NOLOOP skipped
                // its client, as assumed when it came.
                Some(1) => {}
                // After it, from no client: the reads were remembered already, and NOLOOP
                // skips nobody.
                Some(0) => {
                    for &id in &u.readers {
                        self.unkept.push((id, u.key.clone()));
                    }
                    for id in u.readers.into_iter().chain(u.noloop_holder) {
                        self.credit(id, 1, 0, u.at_ms);
                    }
                }
                _ => {
                    for id in u.readers {
                        self.approximate(id, doubts::EXPIRY_OF_READ_UNPLACED);
                    }
                    if let Some(id) = u.noloop_holder {
                        self.approximate(id, doubts::EXPIRY_NOLOOP_UNPLACED);
                    }
                }
            }
        }
    }

    /// Watches an EXEC of queued reads (no CLIENT command among them): the server's counter
    /// says whether it ran them, and where its writes fell among them (transaction.rs).
    pub(super) fn watch_exec(&mut self, id: u64, ops: &[Op], queued: u64) {
        let c = self.registry.get(id).cloned().unwrap_or_default();
        let r = replay_ops(&c.mirror, c.since_ms, ops, &|_| false, 0);
        if r.reads.is_empty() {
            return; // the server remembers nothing of them, whether they run or not
        }
        let Some(base) = ffi::commands_processed() else {
            let keys: Vec<Vec<u8>> = r.reads.into_iter().map(|(_, k)| k).collect();
            self.remember(id, &keys);
            self.approximate(id, doubts::EXEC_NO_COUNTER);
            return;
        };
        let read_keys = r.reads.iter().map(|(_, k)| k.clone()).collect();
        self.exec = Some(ExecWatch {
            client: id,
            base,
            queued,
            reads: r.reads,
            read_keys,
            events: Vec::new(),
            disturbed: false,
        });
    }

    /// A keyspace event (`None`: a flush) while something is watched.
    pub(super) fn note_watched_change(&mut self, key: Option<&[u8]>) {
        if let Some(u) = self.unseen.as_mut() {
            match key {
                Some(key) if u.key == key => u.seen = true,
                _ => u.others = true,
            }
        }
        if self.exec.is_some() {
            self.note_exec_event(key);
        }
    }

    /// An eviction: made before the running command ran (processCommand evicts, then calls it),
    /// so a watched unseen write's counts are read again from here. An EXEC under watch still
    /// places it like any change.
    pub(super) fn note_eviction(&mut self, key: &[u8]) {
        if let Some(u) = self.unseen.as_mut() {
            if u.key == key {
                u.seen = true; // its invalidation is this one; the command finds no key
            } else {
                // The eviction deleted a key (DBSIZE) before this read and counted no change.
                match u.before.read_again() {
                    Some(b) => u.before = b,
                    None => u.others = true,
                }
            }
        }
        if self.exec.is_some() {
            self.note_exec_event(Some(key));
        }
    }

    /// The watched EXEC ran a command the filter saw (a script's): the counter's places are off.
    pub(super) fn disturb_exec(&mut self) {
        if let Some(w) = self.exec.as_mut() {
            w.disturbed = true;
        }
    }

    /// A change while an EXEC is watched: notes its place if the EXEC reads that key (`None`:
    /// a flush, which touches every key).
    fn note_exec_event(&mut self, key: Option<&[u8]>) {
        let Some(w) = self.exec.as_mut() else {
            return;
        };
        if key.is_some_and(|k| !w.read_keys.contains(k)) {
            return;
        }
        let Some(pos) = ffi::commands_processed().and_then(|n| n.checked_sub(w.base)) else {
            w.disturbed = true;
            return;
        };
        let client = w.client;
        w.events.push(match key {
            Some(key) => transaction::Event::Key {
                pos,
                key: key.to_vec(),
                held: self.table.holds(w.client, key),
                at_ms: ffi::now_ms(),
            },
            None => transaction::Event::Flush { pos },
        });
        // Its messages are counted once the EXEC is over, maybe in the filter.
        self.warm_route(client);
    }

    /// Settles a watched EXEC once it is over: what its reads remembered, and the invalidations
    /// its own writes sent for them.
    pub(super) fn resolve_exec(&mut self) {
        let Some(w) = self.exec.take() else {
            return;
        };
        let id = w.client;
        match ffi::client_flags(id) {
            // Postponed by CLIENT PAUSE: it has not run yet.
            Some(f) if f.blocked => {
                self.exec = Some(w);
                return;
            }
            None => return, // gone, and its table entries with it
            Some(_) => {}
        }
        if !self.registry.contains(id) {
            return;
        }
        let outcome = match ffi::commands_processed() {
            Some(now) if !w.disturbed => transaction::outcome(w.base, now, w.queued),
            _ => transaction::Outcome::Unknown,
        };
        match outcome {
            transaction::Outcome::Refused => {}
            transaction::Outcome::Unknown => {
                self.approximate(id, doubts::EXEC_UNCONFIRMED);
            }
            transaction::Outcome::Ran => {
                let c = self.registry.get_mut(id);
                let noloop =
                    matches!(&c.mirror, Mirror::Exact(s) if s.flags.contains(Flags::NOLOOP));
                let placed = transaction::place(&w.reads, &w.events, w.queued, noloop);
                c.acct.reads += w.reads.len() as u64;
                if placed.invalidated > 0 {
                    let at = placed.last_ms.unwrap_or(-1);
                    self.credit(id, placed.invalidated, 0, at);
                }
                let kept = placed.kept.iter().map(Vec::as_slice);
                if !keep_items(&mut self.table, &mut self.dropped_items, id, kept) {
                    self.approximate(id, doubts::TABLE_DID_NOT_KEEP);
                }
            }
        }
    }
}
