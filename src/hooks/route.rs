//! Where a client's invalidation messages go at the moment the server sends them, and so
//! whether it discards them: `dropped-keys` and `dropped-flushes` (docs/design.md "Dropped
//! invalidations").
//!
//! tracking.c sendTrackingMessage decides at each message (the pure rule is
//! rules/delivery.rs `route`): a client without REDIRECT is sent pushes if it speaks RESP3,
//! else nothing; with REDIRECT, nothing if the target is gone, pushes if the target speaks
//! RESP3, Pub/Sub messages if it is in Pub/Sub mode, else nothing. So the module needs, at each
//! message: the client's redirect (its mirror), whether the target is connected and in Pub/Sub
//! mode (RM_GetClientInfoById), and protocols. A protocol changes only by HELLO or RESET, which
//! the filter sees; the server shows it only in `CLIENT LIST ID <id>`, asked once per client and
//! again after each HELLO or RESET, and never from inside the filter.
//!
//! Each client's route is kept with the route epoch it was worked out in. The epoch moves
//! whenever a route may have changed: a HELLO, RESET or (un)subscribe, a CLIENT command, an
//! EXEC, a disconnect, a tracking change confirmed. A message the server holds back until the
//! running command has ended (its client's own, tracking.c `tracking_pending_keys`) goes by the
//! route after the command; only an EXEC that queued such a change can make that differ, and
//! while it runs the messages of its client, and of clients redirecting to it, are doubted.

use std::collections::{HashMap, HashSet};

use super::State;
use crate::clients::{Client, Mirror};
use crate::doubts;
use crate::ffi;
use crate::rules::delivery::{route, Delivery, Receiver};

/// What the module knows of routes beyond each client's mirror.
#[derive(Debug)]
pub(super) struct Routes {
    /// Moves whenever any route may have changed; 0 is never used (a client's "not yet").
    epoch: u64,
    /// Protocols learned from CLIENT LIST, until the client's next HELLO or RESET. Valid only
    /// while some client has state (the filter sees HELLO only then): emptied when none has.
    proto: HashMap<u64, i64>,
    /// Clients that queued, inside MULTI, a command that can change a route.
    queued: HashSet<u64>,
    /// The client whose EXEC runs such a command, until the next hook.
    pub exec_changing: Option<u64>,
    /// The first id the server gave a connection after load: lower ids connected before.
    first_new: u64,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            epoch: 1,
            proto: HashMap::new(),
            queued: HashSet::new(),
            exec_changing: None,
            first_new: u64::MAX,
        }
    }
}

/// Commands that change a connection's protocol or Pub/Sub mode, or (CLIENT KILL, CLIENT
/// TRACKING) someone's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// HELLO or RESET: the protocol may change.
    Protocol,
    /// SUBSCRIBE and its kin, or a CLIENT command.
    Other,
}

/// Whether `name` is HELLO or a (un)subscribe command, matched without allocating.
pub(super) fn changes_route(name: &[u8]) -> Option<Change> {
    let is = |w: &[u8]| name.eq_ignore_ascii_case(w);
    match name.len() {
        5 if is(b"hello") => Some(Change::Protocol),
        9 if is(b"subscribe") => Some(Change::Other),
        10 if is(b"psubscribe") || is(b"ssubscribe") => Some(Change::Other),
        11 if is(b"unsubscribe") => Some(Change::Other),
        12 if is(b"punsubscribe") || is(b"sunsubscribe") => Some(Change::Other),
        _ => None,
    }
}

impl Routes {
    /// Something may have changed some route.
    pub(super) fn moved(&mut self) {
        self.epoch += 1;
    }

    /// The filter saw a command of `id` that may change a route once it runs (`in_multi`:
    /// it is queued, to run at EXEC).
    pub(super) fn note(&mut self, id: u64, change: Change, in_multi: bool) {
        if change == Change::Protocol {
            self.proto.remove(&id);
        }
        if in_multi {
            self.queued.insert(id);
        }
        self.moved();
    }

    /// EXEC from `id`: if it queued a route change, its route is in doubt until it has run.
    pub(super) fn exec(&mut self, id: u64) {
        if self.queued.remove(&id) {
            self.proto.remove(&id);
            self.exec_changing = Some(id);
        }
        self.moved();
    }

    /// DISCARD or RESET from `id`: nothing it queued will run.
    pub(super) fn discard(&mut self, id: u64) {
        self.queued.remove(&id);
    }

    /// The running command is over.
    pub(super) fn command_over(&mut self) {
        if self.exec_changing.take().is_some() {
            self.moved();
        }
    }

    pub(super) fn connected(&mut self, id: u64) {
        self.first_new = self.first_new.min(id);
    }

    pub(super) fn disconnected(&mut self, id: u64) {
        if self.proto.remove(&id).is_some() {
            crate::keys::shrink(&mut self.proto);
        }
        if self.queued.remove(&id) {
            crate::keys::shrink_set(&mut self.queued);
        }
        self.moved();
    }

    /// No client has state: HELLO goes unseen from now on, so nothing learned stays valid.
    pub(super) fn forget(&mut self) {
        if !self.proto.is_empty() || !self.queued.is_empty() {
            self.proto = HashMap::new();
            self.queued = HashSet::new();
        }
        self.moved();
    }
}

impl State {
    /// Where `id`'s messages go now (`Off` when it has no exact mirror with tracking on);
    /// `None` when the module cannot tell.
    pub(super) fn route_of(&mut self, id: u64) -> Option<Delivery> {
        let (redirect, cached) = match self.registry.get(id) {
            Some(Client {
                mirror: Mirror::Exact(s),
                route,
                ..
            }) if s.is_on() => (s.redirect, *route),
            _ => return Some(Delivery::Off),
        };
        let target = u64::try_from(redirect).ok().filter(|&t| t > 0);
        if let Some(x) = self.routes.exec_changing {
            if id == x || target == Some(x) {
                return None;
            }
        }
        if cached.0 == self.routes.epoch {
            return Some(cached.1);
        }
        let d = match target {
            None => {
                let own = Receiver {
                    resp: self.protocol_of(id)?,
                    pubsub: false,
                };
                route(true, 0, own, None)
            }
            Some(t) => {
                let receiver = match ffi::client_flags(t) {
                    None => None,
                    // In Pub/Sub mode it is sent Pub/Sub messages whatever its protocol.
                    Some(f) if f.pubsub => Some(Receiver {
                        resp: 2,
                        pubsub: true,
                    }),
                    Some(_) => Some(Receiver {
                        resp: self.protocol_of(t)?,
                        pubsub: false,
                    }),
                };
                let own = Receiver {
                    resp: 2,
                    pubsub: false,
                };
                route(true, redirect, own, receiver)
            }
        };
        if let Some(c) = self.registry.find_mut(id) {
            c.route = (self.routes.epoch, d);
        }
        Some(d)
    }

    /// The protocol of connection `id`, learned from CLIENT LIST where the module may ask.
    fn protocol_of(&mut self, id: u64) -> Option<i64> {
        if let Some(&p) = self.routes.proto.get(&id) {
            return Some(p);
        }
        // After a MODULE UNLOAD, CLIENT LIST can read freed memory for a connection whose last
        // command was the unloaded module's (redis/redis#10177): ask only about connections that
        // have sent a command since this load, or when no unload happened in this process.
        let safe = !ffi::reloaded() || id >= self.routes.first_new || self.registry.contains(id);
        if !safe {
            return None;
        }
        let p = ffi::client_protocol(id)?;
        self.routes.proto.insert(id, p);
        Some(p)
    }

    /// Counts `keys` keys and `flushes` null messages sent to `id` at `at_ms`, and of them
    /// those the server discarded.
    pub(super) fn credit(&mut self, id: u64, keys: u64, flushes: u64, at_ms: i64) {
        if !self.registry.contains(id) {
            return;
        }
        let d = self.route_of(id);
        let c = self.registry.get_mut(id);
        let a = &mut c.acct;
        a.invalidated += keys;
        a.flushes += flushes;
        a.last_ms = a.last_ms.max(at_ms);
        self.total_invalidated += keys;
        self.total_flushes += flushes;
        match d {
            Some(Delivery::Dropped) => {
                a.dropped_keys += keys;
                a.dropped_flushes += flushes;
                self.total_dropped_keys += keys;
                self.total_dropped_flushes += flushes;
            }
            Some(_) => {}
            None => {
                let why = if self.routes.exec_changing.is_some() {
                    doubts::EXEC_CHANGES_DELIVERY
                } else {
                    doubts::DELIVERY_UNKNOWN
                };
                self.doubt_counts(id, why);
            }
        }
    }

    /// Works a client's route out now, where the module may still ask the server, for a
    /// message that is counted later (in the filter).
    pub(super) fn warm_route(&mut self, id: u64) {
        let _ = self.route_of(id);
    }
}
