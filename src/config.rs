//! The module's settings, as server configs (`CONFIG GET/SET trackinfo.*`, or arguments after
//! the path in `loadmodule`/`MODULE LOAD`).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// `trackinfo.key-table`: keep the per-key table (tracked keys and per-key invalidations).
pub static KEY_TABLE: AtomicBool = AtomicBool::new(true);

/// `trackinfo.key-table-max-items`: the most (key, client) items the table holds; reads past it
/// are dropped (and counted), and the clients concerned get `counters approximate`. 0: no limit.
pub static KEY_TABLE_MAX_ITEMS: AtomicI64 = AtomicI64::new(DEFAULT_MAX_ITEMS);

/// As the server's own `tracking-table-max-keys` default, in items: bounded memory.
pub const DEFAULT_MAX_ITEMS: i64 = 1_000_000;

pub fn key_table() -> bool {
    KEY_TABLE.load(Relaxed)
}

/// The cap on items, `None` for no limit.
pub fn max_items() -> Option<u64> {
    u64::try_from(KEY_TABLE_MAX_ITEMS.load(Relaxed))
        .ok()
        .filter(|&n| n > 0)
}
