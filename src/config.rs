//! The module's settings, as server configs (`CONFIG GET/SET trackinfo.*`, or arguments after
//! the path in `loadmodule`/`MODULE LOAD`). `ffi::register_configs` registers them.

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

/// The configs' defaults, from the arguments after the path in `loadmodule` / `MODULE LOAD`
/// (`key-table-max-items 200000`, `key-table no`): the argument after a config's name, else the
/// built-in default.
pub fn defaults_from_args(args: &[&[u8]]) -> Result<(i64, bool), String> {
    let value = |name: &str| {
        args.iter()
            .skip_while(|a| **a != name.as_bytes())
            .nth(1)
            .copied()
    };
    let max_items = match value("key-table-max-items") {
        None => DEFAULT_MAX_ITEMS,
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|&n| n >= 0)
            .ok_or_else(|| {
                format!(
                    "key-table-max-items {} is not a number >= 0",
                    String::from_utf8_lossy(v)
                )
            })?,
    };
    let key_table = match value("key-table") {
        None => true,
        Some(b"yes") => true,
        Some(b"no") => false,
        Some(v) => {
            return Err(format!(
                "key-table {} is neither yes nor no",
                String::from_utf8_lossy(v)
            ))
        }
    };
    Ok((max_items, key_table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_arguments_give_the_defaults() {
        assert_eq!(defaults_from_args(&[]), Ok((DEFAULT_MAX_ITEMS, true)));
        let args: [&[u8]; 4] = [b"key-table", b"no", b"key-table-max-items", b"7"];
        assert_eq!(defaults_from_args(&args), Ok((7, false)));
        assert!(defaults_from_args(&[b"key-table-max-items", b"-1"]).is_err());
        assert!(defaults_from_args(&[b"key-table", b"maybe"]).is_err());
    }
}
