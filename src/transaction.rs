//! Reads queued in MULTI, confirmed when EXEC ran them and placed among the writes it made.
//!
//! The filter sees each queued command at queue time and EXEC once; the commands EXEC runs pass
//! no filter. What says whether EXEC ran its commands is the server's `total_commands_processed`
//! (server.c call(): one per command that ran, counted when it ends): read before EXEC, it grows
//! by 1 + the number of queued commands if EXEC ran them, and by 1 if EXEC refused (a WATCHed key
//! changed, EXECABORT after a queuing error). Read during a keyspace event, it says which queued
//! command was running: the `j`-th (from 0) while it reads `base + j`, EXEC as a whole after.
//!
//! The server remembers a read's keys after the command (call() -> trackingRememberKeys), and an
//! invalidation removes a key from its table whole. So a queued read of `k` followed by a write
//! of `k` in the same EXEC costs the reader one invalidation and leaves `k` out of the table; a
//! write (or a lazy expiry) before the read leaves `k` in it. This file replays that order.

use std::collections::HashSet;

/// What the server's command counter says of an EXEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// EXEC ran the queued commands.
    Ran,
    /// EXEC ran and refused them (WATCH, EXECABORT), or there was no MULTI.
    Refused,
    /// The counter cannot tell (another command ran meanwhile, a CONFIG RESETSTAT).
    Unknown,
}

/// The outcome of an EXEC of `queued` commands, from the counter before and after it.
pub fn outcome(before: u64, after: u64, queued: u64) -> Outcome {
    match after.checked_sub(before) {
        Some(1) => Outcome::Refused,
        Some(d) if d == queued + 1 => Outcome::Ran,
        _ => Outcome::Unknown,
    }
}

/// A change the server made while the EXEC was under watch, at position `pos`: the counter's
/// value minus the one read before EXEC (the index of the queued command running, or more
/// once EXEC has ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key was modified, expired or evicted. `held`: the table held it for the EXEC's client
    /// (from before the EXEC) when it happened; that invalidation was counted then.
    Key {
        pos: u64,
        key: Vec<u8>,
        held: bool,
        at_ms: i64,
    },
    /// FLUSHDB / FLUSHALL: the table was emptied (its null message is counted as a flush).
    Flush { pos: u64 },
}

impl Event {
    fn pos(&self) -> u64 {
        match self {
            Event::Key { pos, .. } | Event::Flush { pos } => *pos,
        }
    }
}

/// What the EXEC's own reads did, once it ran.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Placed {
    /// Invalidations sent to the client for keys its queued reads had just added.
    pub invalidated: u64,
    pub last_ms: Option<i64>,
    /// The keys the table holds for the client once the EXEC is over, in the order first read.
    pub kept: Vec<Vec<u8>>,
}

/// Replays the EXEC's remembered reads (`(pos, key)`, in queue order) among the events (in the
/// order they came). An event at a read's own position comes first: the server remembers a read
/// after the command. `noloop`: the client does not hear of the changes its own commands make,
/// which all the EXEC's are (server.current_client is the client until EXEC has ended).
pub fn place(reads: &[(u64, Vec<u8>)], events: &[Event], queued: u64, noloop: bool) -> Placed {
    let mut placed = Placed::default();
    let mut held: HashSet<&[u8]> = HashSet::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut order: Vec<&[u8]> = Vec::new();
    let mut e = events.iter().peekable();
    let apply = |ev: &Event, held: &mut HashSet<&[u8]>, placed: &mut Placed| match ev {
        Event::Key {
            pos,
            key,
            held: was_held,
            at_ms,
        } => {
            // One invalidation per key whoever added it; one counted at the event already.
            if held.remove(key.as_slice()) && !was_held && !(noloop && *pos <= queued) {
                placed.invalidated += 1;
                placed.last_ms = Some(*at_ms);
            }
        }
        Event::Flush { .. } => held.clear(),
    };
    for (pos, key) in reads {
        while let Some(ev) = e.next_if(|ev| ev.pos() <= *pos) {
            apply(ev, &mut held, &mut placed);
        }
        held.insert(key.as_slice());
        if seen.insert(key.as_slice()) {
            order.push(key.as_slice());
        }
    }
    for ev in e {
        apply(ev, &mut held, &mut placed);
    }
    placed.kept = order
        .into_iter()
        .filter(|k| held.contains(k))
        .map(<[u8]>::to_vec)
        .collect();
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_event(pos: u64, key: &str, held: bool) -> Event {
        Event::Key {
            pos,
            key: key.as_bytes().to_vec(),
            held,
            at_ms: 100 + pos as i64,
        }
    }

    fn reads(list: &[(u64, &str)]) -> Vec<(u64, Vec<u8>)> {
        list.iter()
            .map(|(p, k)| (*p, k.as_bytes().to_vec()))
            .collect()
    }

    fn kept(p: &Placed) -> Vec<String> {
        p.kept
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn the_counter_tells_ran_from_refused() {
        assert_eq!(outcome(10, 14, 3), Outcome::Ran);
        assert_eq!(outcome(10, 11, 3), Outcome::Refused);
        assert_eq!(outcome(10, 10, 3), Outcome::Unknown);
        assert_eq!(outcome(10, 13, 3), Outcome::Unknown);
        assert_eq!(outcome(10, 2, 3), Outcome::Unknown);
    }

    #[test]
    fn a_write_after_the_read_invalidates_it_and_leaves_the_key_out() {
        // GET k; SET k
        let p = place(&reads(&[(0, "k")]), &[key_event(1, "k", false)], 2, false);
        assert_eq!(p.invalidated, 1);
        assert_eq!(p.last_ms, Some(101));
        assert!(p.kept.is_empty());
    }

    #[test]
    fn a_write_before_the_read_leaves_the_key_in() {
        // SET k; GET k
        let p = place(&reads(&[(1, "k")]), &[key_event(0, "k", false)], 2, false);
        assert_eq!(p.invalidated, 0);
        assert_eq!(kept(&p), ["k"]);
    }

    #[test]
    fn a_lazy_expiry_during_the_read_comes_before_it() {
        let p = place(&reads(&[(0, "k")]), &[key_event(0, "k", false)], 1, false);
        assert_eq!(p.invalidated, 0);
        assert_eq!(kept(&p), ["k"]);
    }

    #[test]
    fn a_key_held_before_the_exec_is_invalidated_once() {
        // GET k; SET k, with k in the table already: counted at the event, not again.
        let p = place(&reads(&[(0, "k")]), &[key_event(1, "k", true)], 2, false);
        assert_eq!(p.invalidated, 0);
        assert!(p.kept.is_empty());
    }

    #[test]
    fn noloop_skips_the_exec_own_writes_but_not_later_expiries() {
        let r = reads(&[(0, "k")]);
        let own = place(&r, &[key_event(1, "k", false)], 2, true);
        assert_eq!(own.invalidated, 0);
        assert!(own.kept.is_empty());
        // After EXEC (position past 1 + queued): an active expiry, current_client NULL.
        let later = place(&r, &[key_event(4, "k", false)], 2, true);
        assert_eq!(later.invalidated, 1);
    }

    #[test]
    fn reads_again_after_a_write_are_kept() {
        // GET k; SET k; GET k; GET j
        let p = place(
            &reads(&[(0, "k"), (2, "k"), (3, "j")]),
            &[key_event(1, "k", false)],
            4,
            false,
        );
        assert_eq!(p.invalidated, 1);
        assert_eq!(kept(&p), ["k", "j"]);
    }

    #[test]
    fn a_flush_empties_what_was_read_before_it() {
        let p = place(
            &reads(&[(0, "a"), (2, "b")]),
            &[Event::Flush { pos: 1 }],
            3,
            false,
        );
        assert_eq!(p.invalidated, 0);
        assert_eq!(kept(&p), ["b"]);
    }
}
