//! Per-client state: what the module knows about each connection whose tracking state is not
//! the default. Entries appear when a client's CLIENT TRACKING/CACHING is seen (or at load, from
//! CLIENT LIST) and go on the server's disconnect event. A client with no entry has tracking off.

use crate::fasthash::FastMap;
use crate::ffi::ClientFlags;
use crate::rules::delivery::Delivery;
use crate::rules::TrackingState;

/// What the module knows of one client's CLIENT TRACKINGINFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// Every command that decides it was seen and replayed.
    Exact(TrackingState),
    /// Tracking was switched on where the module could not see it (before MODULE LOAD, or
    /// through a path it could not attribute): only CLIENT LIST's view can be shown.
    Partial,
}

/// A CLIENT subcommand queued inside MULTI; it runs at EXEC, if EXEC runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// argv from the ON/OFF word on.
    Tracking(Vec<Vec<u8>>),
    /// The yes/no argument.
    Caching(Vec<u8>),
    /// A read-only command's keys, and its place in the transaction (from 0).
    Read(u64, Vec<Vec<u8>>),
}

/// What the module counted for a client since its tracking was last switched on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acct {
    pub reads: u64,
    pub invalidated: u64,
    pub flushes: u64,
    pub last_ms: i64,
    /// The module knows it missed something for this client (a script's reads and writes, a
    /// transaction it could not confirm, an expiry it cannot place).
    pub approximate: bool,
    /// BCAST: keys invalidated under each prefix.
    pub prefix_stats: std::collections::BTreeMap<Vec<u8>, u64>,
    /// Of `invalidated` and `flushes`: those the server discarded, its delivery being `dropped`
    /// when it sent them (hooks/route.rs).
    pub dropped_keys: u64,
    pub dropped_flushes: u64,
}

impl Default for Acct {
    fn default() -> Self {
        Acct {
            reads: 0,
            invalidated: 0,
            flushes: 0,
            last_ms: -1,
            approximate: false,
            prefix_stats: Default::default(),
            dropped_keys: 0,
            dropped_flushes: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub mirror: Mirror,
    /// Unix ms when tracking was last switched on; -1 when unknown.
    pub since_ms: i64,
    pub queued: Vec<Op>,
    /// How many commands the server has queued since MULTI, all kinds (each takes a place).
    pub queue_len: u64,
    /// A command that is not a CLIENT subcommand was processed: once it has completed, the
    /// CACHING window ends unless the client is in MULTI (networking.c resetClient).
    pub caching_end: bool,
    pub acct: Acct,
    /// The server's flags for this connection as of its last command, while no command since
    /// could have changed them (hooks.rs `changes_own_flags`): reading them costs a system call.
    pub flags: Option<ClientFlags>,
    /// The connection's protocol as CLIENT LIST last said, until it sends HELLO, RESET or EXEC
    /// (the only commands that change it).
    pub resp: Option<i64>,
    /// Where its messages went when last worked out, and the route epoch then (0: never;
    /// hooks/route.rs).
    pub route: (u64, Delivery),
}

impl Default for Client {
    fn default() -> Self {
        Client {
            mirror: Mirror::Exact(TrackingState::default()),
            since_ms: -1,
            queued: Vec::new(),
            queue_len: 0,
            caching_end: false,
            acct: Acct::default(),
            flags: None,
            resp: None,
            route: (0, Delivery::Off),
        }
    }
}

impl Client {
    pub fn partial() -> Self {
        Client {
            mirror: Mirror::Partial,
            ..Default::default()
        }
    }

    /// True when the entry says nothing a missing entry would not: tracking off, nothing
    /// queued, no CACHING window left to settle.
    pub fn is_default(&self) -> bool {
        matches!(&self.mirror, Mirror::Exact(s) if !s.is_on())
            && self.queued.is_empty()
            && self.queue_len == 0
            && !self.caching_end
    }

    pub fn tracking_on(&self) -> Option<bool> {
        match &self.mirror {
            Mirror::Exact(s) => Some(s.is_on()),
            Mirror::Partial => None,
        }
    }
}

/// All clients with non-default state. A hash map: the filter looks a client up for every
/// command of a connection the module keeps state for, and once for every other command.
#[derive(Debug, Default)]
pub struct Registry {
    clients: FastMap<u64, Client>,
}

impl Registry {
    pub fn get(&self, id: u64) -> Option<&Client> {
        self.clients.get(&id)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.clients.contains_key(&id)
    }

    /// The entry of `id`, made (default) if there is none.
    pub fn get_mut(&mut self, id: u64) -> &mut Client {
        self.clients.entry(id).or_default()
    }

    /// The entry of `id`, if there is one.
    pub fn find_mut(&mut self, id: u64) -> Option<&mut Client> {
        self.clients.get_mut(&id)
    }

    /// Stores `c`, or forgets the client when its state is the default.
    pub fn put(&mut self, id: u64, c: Client) {
        if c.is_default() {
            self.remove(id);
        } else {
            self.clients.insert(id, c);
        }
    }

    /// Drops an entry that became the default.
    pub fn tidy(&mut self, id: u64) {
        if self.clients.get(&id).is_some_and(Client::is_default) {
            self.remove(id);
        }
    }

    pub fn remove(&mut self, id: u64) -> Option<Client> {
        let c = self.clients.remove(&id);
        crate::keys::shrink(&mut self.clients);
        c
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Client)> {
        self.clients.iter().map(|(id, c)| (*id, c))
    }

    pub fn clear(&mut self) {
        self.clients.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Flags;

    #[test]
    fn default_entries_are_not_kept() {
        let mut r = Registry::default();
        r.put(1, Client::default());
        assert!(r.is_empty());
        let on = Client {
            mirror: Mirror::Exact(TrackingState {
                flags: Flags::ON,
                ..Default::default()
            }),
            ..Default::default()
        };
        r.put(2, on);
        r.put(1, Client::partial());
        let mut ids: Vec<u64> = r.iter().map(|(id, _)| id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2]);
        r.remove(2);
        r.get_mut(1).mirror = Mirror::Exact(TrackingState::default());
        r.tidy(1);
        assert!(r.is_empty());
    }
}
