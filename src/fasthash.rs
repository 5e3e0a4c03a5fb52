//! A fast hasher for maps whose keys clients cannot choose: client ids (the server assigns
//! them) and lookups in the fixed table of command names (a client can send any name, but
//! cannot add one to the table, so it cannot make entries collide). Maps keyed by key names,
//! which clients do choose, use a seeded hash (keys.rs).
//!
//! The multiply-rotate scheme of rustc's FxHasher, written out here rather than added as a
//! dependency.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
pub type FastSet<T> = HashSet<T, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_maps_work() {
        let mut m: FastMap<Vec<u8>, u32> = FastMap::default();
        m.insert(b"get".to_vec(), 1);
        m.insert(b"object|encoding".to_vec(), 2);
        assert_eq!(m.get(&b"get"[..]), Some(&1));
        assert_eq!(m.get(&b"object|encoding"[..]), Some(&2));
        assert_eq!(m.get(&b"gets"[..]), None);
        let ids: FastSet<u64> = (1..1000).collect();
        assert!(ids.contains(&999) && !ids.contains(&1000));
    }
}
