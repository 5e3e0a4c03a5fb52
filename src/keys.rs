//! The per-key table: a mirror of the server's TrackingTable (tracking.c), which maps each key
//! name to the ids of the clients that read it while tracking (default, OPTIN and OPTOUT modes).
//!
//! Its rules, which the mirror keeps:
//! - keys are names only, not scoped by database;
//! - an entry is removed whole when the key is invalidated, whoever of its ids was sent a
//!   message (NOLOOP, tracking off, BCAST and gone clients are skipped, but lose the entry too);
//! - ids of clients that switched tracking off, or disconnected, stay until then (lazy removal);
//! - a flush empties the table.
//!
//! Nothing here talks to the server: the hooks feed it what the server did.

use std::collections::{HashMap, HashSet};

use crate::fasthash::{FastMap, FastSet};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Gives memory back once a map has shrunk well below its capacity (a HashMap never shrinks by
/// itself): after a wave of clients has come and gone, the table must not keep its high-water
/// mark. Shrinking to twice the length only when under a quarter full keeps it amortized O(1)
/// and never alternates between growing and shrinking.
pub fn shrink<K: Eq + Hash, V, S: BuildHasher>(m: &mut HashMap<K, V, S>) {
    if m.len().saturating_mul(4) < m.capacity() {
        m.shrink_to(m.len() * 2);
    }
}

/// [`shrink`] for a set.
pub fn shrink_set<T: Eq + Hash, S: BuildHasher>(m: &mut HashSet<T, S>) {
    if m.len().saturating_mul(4) < m.capacity() {
        m.shrink_to(m.len() * 2);
    }
}

/// Changes to any key table since the process started: a check of the table against the
/// server's totals holds until the next change (see `hooks::State::table_check_holds`).
static CHANGES: AtomicU64 = AtomicU64::new(0);

/// How many times a key table has changed.
pub fn changes() -> u64 {
    CHANGES.load(Relaxed)
}

/// Notes a change made other than through a table's methods (a table switched on or off).
/// Every caller runs under the server's lock (its main thread, or a thread holding the GIL), so
/// a load and a store do: no locked read-modify-write on the filter's path.
pub fn note_change() {
    CHANGES.store(CHANGES.load(Relaxed).wrapping_add(1), Relaxed);
}

/// Key names packed in one buffer: the reads of the command running now wait here until it has
/// run. The buffer is emptied, not freed, between commands, so the filter's reads allocate
/// nothing once it has grown.
#[derive(Debug, Default)]
pub struct KeyList {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`.
    ends: Vec<usize>,
}

impl KeyList {
    pub fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    /// How many keys the list holds: the index the next key gets.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The keys with indexes in `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &[u8]> + '_ {
        range.map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.bytes[start..self.ends[i]]
        })
    }

    /// Forgets every key, keeping the memory of a few short ones; gives back what a command of
    /// many keys (an MGET) made it grow to, so that the module's memory does not keep the
    /// largest read ever seen.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        if self.bytes.capacity() > 1024 {
            self.bytes = Vec::new();
        }
        if self.ends.capacity() > 64 {
            self.ends = Vec::new();
        }
    }
}

/// The ids of one key's entry. Between two writes most keys are read by one or two clients:
/// those entries need no allocation of their own. A key read by many clients (a hot key) keeps
/// them in a set, so that a read costs the same whatever their number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ids {
    One(u64),
    Two(u64, u64),
    Few(Vec<u64>),
    Many(FastSet<u64>),
}

/// Past this many ids an entry's list becomes a set.
const FEW: usize = 8;

impl Ids {
    pub fn contains(&self, id: u64) -> bool {
        match self {
            Ids::One(a) => *a == id,
            Ids::Two(a, b) => *a == id || *b == id,
            Ids::Few(v) => v.contains(&id),
            Ids::Many(set) => set.contains(&id),
        }
    }

    fn push(&mut self, id: u64) {
        *self = match std::mem::replace(self, Ids::One(0)) {
            Ids::One(a) => Ids::Two(a, id),
            Ids::Two(a, b) => Ids::Few(vec![a, b, id]),
            Ids::Few(mut v) if v.len() < FEW => {
                v.push(id);
                Ids::Few(v)
            }
            Ids::Few(v) => Ids::Many(v.into_iter().chain([id]).collect()),
            Ids::Many(mut set) => {
                set.insert(id);
                Ids::Many(set)
            }
        }
    }

    /// At least 1: an entry exists only with an id.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        match self {
            Ids::One(_) => 1,
            Ids::Two(..) => 2,
            Ids::Few(v) => v.len(),
            Ids::Many(set) => set.len(),
        }
    }

    /// The ids, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let (head, rest): (&[u64], &[u64]) = match self {
            Ids::One(a) => (std::slice::from_ref(a), &[]),
            Ids::Two(a, b) => (std::slice::from_ref(a), std::slice::from_ref(b)),
            Ids::Few(v) => (v, &[]),
            Ids::Many(_) => (&[], &[]),
        };
        let set = match self {
            Ids::Many(set) => Some(set.iter()),
            _ => None,
        };
        head.iter()
            .chain(rest)
            .chain(set.into_iter().flatten())
            .copied()
    }
}

/// A key name: inline when it is short (most are), so that an entry needs no allocation of its
/// own; the same size as a boxed name.
#[derive(Clone)]
pub enum KeyName {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

const INLINE_KEY: usize = 22;

impl KeyName {
    pub fn new(key: &[u8]) -> KeyName {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            KeyName::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            KeyName::Heap(key.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            KeyName::Inline { len, bytes } => &bytes[..usize::from(*len)],
            KeyName::Heap(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for KeyName {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Hash and equality as the bytes', so that the map is looked up with a plain `&[u8]`.
impl Hash for KeyName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for KeyName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for KeyName {}

impl std::fmt::Debug for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// Key names are chosen by clients, so the table's hash is seeded at random (per process and
/// per map), as SipHash is in the standard library; foldhash costs a fraction of SipHash on
/// short keys, and nothing the module replies with depends on the map's order.
pub type KeyHasher = foldhash::quality::RandomState;

#[derive(Debug, Default)]
pub struct KeyTable {
    /// key -> the ids that read it, in the order they did.
    keys: HashMap<KeyName, Ids, KeyHasher>,
    /// id -> how many keys hold it (gone clients included, as in the server).
    per_client: FastMap<u64, u64>,
    items: u64,
}

impl KeyTable {
    /// As trackingRememberKeys: adds (key, id). True when the item is new.
    pub fn remember(&mut self, id: u64, key: &[u8]) -> bool {
        match self.keys.get_mut(key) {
            Some(ids) if ids.contains(id) => return false,
            Some(ids) => ids.push(id),
            None => {
                self.keys.insert(KeyName::new(key), Ids::One(id));
            }
        }
        *self.per_client.entry(id).or_default() += 1;
        self.items += 1;
        note_change();
        true
    }

    /// The ids an invalidation of `key` would reach now, if any.
    pub fn invalidate_would_reach(&self, key: &[u8]) -> Option<&Ids> {
        self.keys.get(key)
    }

    /// Whether (key, id) is held.
    pub fn holds(&self, id: u64, key: &[u8]) -> bool {
        self.keys.get(key).is_some_and(|ids| ids.contains(id))
    }

    /// As trackingInvalidateKey: removes the key's entry and returns the ids it held; the caller
    /// decides which of them were sent a message.
    pub fn invalidate(&mut self, key: &[u8]) -> Option<Ids> {
        let ids = self.keys.remove(key)?;
        note_change();
        for id in ids.iter() {
            self.forget_item(id);
        }
        shrink(&mut self.keys);
        shrink(&mut self.per_client);
        Some(ids)
    }

    /// As trackingInvalidateKeysOnFlush: the table is emptied.
    pub fn flush(&mut self) {
        note_change();
        self.keys = HashMap::default();
        self.per_client = FastMap::default();
        self.items = 0;
    }

    fn forget_item(&mut self, id: u64) {
        if let Some(n) = self.per_client.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&id);
            }
        }
        self.items -= 1;
    }

    /// Keys the table holds for `id`.
    pub fn count_of(&self, id: u64) -> u64 {
        self.per_client.get(&id).copied().unwrap_or(0)
    }

    /// The keys held for `id`, in byte order, at most `limit` of them (0: all).
    pub fn keys_of(&self, id: u64, limit: usize, shown: impl Fn(&[u8]) -> bool) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = self
            .keys
            .iter()
            .filter(|(k, ids)| ids.contains(id) && shown(k.as_bytes()))
            .map(|(k, _)| k.as_bytes())
            .collect();
        out.sort_unstable();
        if limit > 0 {
            out.truncate(limit);
        }
        out
    }

    /// Distinct client ids the table holds items for, gone clients included.
    pub fn client_count(&self) -> u64 {
        self.per_client.len() as u64
    }

    /// Distinct keys (the server's `tracking_total_keys`).
    pub fn key_count(&self) -> u64 {
        self.keys.len() as u64
    }

    /// (key, id) pairs (the server's `tracking_total_items`).
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Items held for ids that `alive` says are gone: memory the server keeps for nobody.
    pub fn items_of_gone(&self, alive: impl Fn(u64) -> bool) -> u64 {
        self.per_client
            .iter()
            .filter(|(id, _)| !alive(**id))
            .map(|(_, n)| *n)
            .sum()
    }

    /// The `n` keys held for the most clients, most first (ties in byte order), among those
    /// `shown` lets through.
    pub fn top_keys(&self, n: usize, shown: impl Fn(&[u8]) -> bool) -> Vec<(&[u8], usize)> {
        let mut all: Vec<(&[u8], usize)> = self
            .keys
            .iter()
            .filter(|(k, _)| shown(k.as_bytes()))
            .map(|(k, ids)| (k.as_bytes(), ids.len()))
            .collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_list_gives_back_its_keys_by_index() {
        let mut l = KeyList::default();
        l.push(b"a");
        l.push(b"");
        l.push(b"ccc");
        assert_eq!(l.len(), 3);
        assert_eq!(l.slice(0..3).collect::<Vec<_>>(), [&b"a"[..], b"", b"ccc"]);
        assert_eq!(l.slice(1..3).collect::<Vec<_>>(), [&b""[..], b"ccc"]);
        l.clear();
        assert!(l.is_empty());
        for _ in 0..1000 {
            l.push(b"a key of some length");
        }
        l.clear();
        assert_eq!(
            (l.bytes.capacity(), l.ends.capacity()),
            (0, 0),
            "a large read is let go"
        );
        l.push(b"d");
        assert_eq!(l.slice(0..1).collect::<Vec<_>>(), [&b"d"[..]]);
    }

    #[test]
    fn one_item_per_key_and_client() {
        let mut t = KeyTable::default();
        assert!(t.remember(1, b"k"));
        assert!(!t.remember(1, b"k"));
        assert!(t.remember(2, b"k"));
        assert!(t.remember(1, b"j"));
        assert_eq!((t.key_count(), t.items()), (2, 3));
        assert_eq!((t.count_of(1), t.count_of(2), t.count_of(3)), (2, 1, 0));
    }

    #[test]
    fn invalidation_removes_the_whole_entry_and_returns_its_ids() {
        let mut t = KeyTable::default();
        t.remember(1, b"k");
        t.remember(2, b"k");
        t.remember(2, b"j");
        let ids = t.invalidate(b"k").expect("held");
        assert_eq!(ids.iter().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(t.invalidate(b"k"), None, "one invalidation per read");
        assert_eq!((t.key_count(), t.items()), (1, 1));
        assert_eq!((t.count_of(1), t.count_of(2)), (0, 1));
    }

    #[test]
    fn a_hot_key_keeps_every_reader_once() {
        let mut t = KeyTable::default();
        for round in 0..3 {
            for id in 1..=100u64 {
                assert_eq!(t.remember(id, b"hot"), round == 0);
            }
        }
        assert_eq!((t.key_count(), t.items(), t.count_of(77)), (1, 100, 1));
        assert_eq!(t.top_keys(1, |_| true), [(&b"hot"[..], 100)]);
        let mut ids: Vec<u64> = t.invalidate(b"hot").expect("held").iter().collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=100).collect::<Vec<_>>());
        assert_eq!((t.items(), t.client_count()), (0, 0));
    }

    #[test]
    fn keys_longer_than_the_inline_size_are_kept_too() {
        let mut t = KeyTable::default();
        let short = [b'k'; INLINE_KEY];
        let long = [b'k'; INLINE_KEY + 1];
        assert!(t.remember(1, &short) && t.remember(1, &long));
        assert!(t.holds(1, &short) && t.holds(1, &long) && !t.holds(1, &long[..3]));
        assert_eq!(t.keys_of(1, 0, |_| true), [&short[..], &long[..]]);
    }

    #[test]
    fn flush_empties_everything() {
        let mut t = KeyTable::default();
        t.remember(1, b"k");
        t.remember(2, b"j");
        t.flush();
        assert_eq!((t.key_count(), t.items(), t.count_of(1)), (0, 0, 0));
    }

    #[test]
    fn keys_of_a_client_come_in_byte_order_and_can_be_limited() {
        let mut t = KeyTable::default();
        for k in [&b"b"[..], b"a", b"c\0z", b"c"] {
            t.remember(7, k);
        }
        t.remember(8, b"x");
        assert_eq!(t.keys_of(7, 0, |_| true), [&b"a"[..], b"b", b"c", b"c\0z"]);
        assert_eq!(t.keys_of(7, 2, |_| true), [&b"a"[..], b"b"]);
        // A filter applies before the limit: COUNT n gives n keys the caller may see.
        assert_eq!(t.keys_of(7, 2, |k| k != b"a"), [&b"b"[..], b"c"]);
    }

    #[test]
    fn items_of_gone_clients_are_counted_until_their_keys_change() {
        let mut t = KeyTable::default();
        t.remember(1, b"k");
        t.remember(2, b"k");
        t.remember(2, b"j");
        assert_eq!(t.items_of_gone(|id| id == 1), 2);
        t.invalidate(b"j");
        assert_eq!(t.items_of_gone(|id| id == 1), 1);
    }

    #[test]
    fn the_table_gives_memory_back_when_its_entries_go() {
        let mut t = KeyTable::default();
        for i in 0..1000u64 {
            t.remember(i, format!("k{i}").as_bytes());
        }
        assert_eq!(t.client_count(), 1000);
        for i in 0..990u64 {
            t.invalidate(format!("k{i}").as_bytes());
        }
        assert_eq!((t.key_count(), t.client_count()), (10, 10));
        assert!(t.keys.capacity() < 100, "capacity {}", t.keys.capacity());
        assert!(t.per_client.capacity() < 100);
        for i in 990..1000u64 {
            t.invalidate(format!("k{i}").as_bytes());
        }
        assert_eq!((t.keys.capacity(), t.per_client.capacity()), (0, 0));
        t.remember(1, b"k");
        t.flush();
        assert_eq!((t.keys.capacity(), t.per_client.capacity()), (0, 0));
    }

    #[test]
    fn top_keys_are_the_most_shared() {
        let mut t = KeyTable::default();
        for (id, k) in [(1, &b"a"[..]), (2, b"a"), (1, b"b"), (2, b"c"), (3, b"c")] {
            t.remember(id, k);
        }
        assert_eq!(t.top_keys(2, |_| true), [(&b"a"[..], 2), (&b"c"[..], 2)]);
        assert_eq!(
            t.top_keys(2, |k| k != b"a"),
            [(&b"c"[..], 2), (&b"b"[..], 1)]
        );
    }
}
