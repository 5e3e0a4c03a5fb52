//! What the command filter knows of the server's command table: for each command (`name` or
//! `container|sub`, lowercase), whether tracking remembers its keys, where they are, and
//! whether it is one of the few commands the filter treats apart. Built once at load from the
//! server's COMMAND reply (commands/mod.rs); looked up for every command of a connection the
//! module keeps state for, so a lookup neither allocates nor hashes a byte string.

use crate::fasthash::FastMap;

/// Commands that run other commands (scripts and functions): their inner reads and writes
/// belong to the caller in the server's tracking, but the filter cannot tie them to it.
const SCRIPT_COMMANDS: [&str; 6] = [
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Commands that can change their own connection's flags as the module reads them (tracking,
/// MULTI, Pub/Sub), besides CLIENT, EXEC, DISCARD and RESET, which the filter matches itself.
/// `blocked` needs no care: a connection runs no command while blocked.
const CHANGE_OWN_FLAGS: [&str; 7] = [
    "multi",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
];

/// The commands Valkey reports an immediate deletion of as `expired` (see hooks.rs).
const EXPIRE_COMMANDS: [&str; 4] = ["expire", "pexpire", "expireat", "pexpireat"];

/// One command of the server's command table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandInfo {
    pub readonly: bool,
    /// It has subcommands: the server's name for a call is `name|sub`.
    pub container: bool,
    /// COMMAND's key range and arity, when they give the keys exactly (no `movablekeys`): the
    /// keys are then found without asking the server.
    pub span: Option<KeySpan>,
    /// Runs other commands: `SCRIPT_COMMANDS`.
    pub script: bool,
    /// `CHANGE_OWN_FLAGS`.
    pub changes_own_flags: bool,
    /// `EXPIRE_COMMANDS`.
    pub expire: bool,
    /// HELLO, which can change the connection's protocol.
    pub hello: bool,
}

impl CommandInfo {
    /// tracking.c remembers keys of read-only commands, but not of the *_RO script commands.
    pub fn remembers_keys(&self) -> bool {
        self.readonly && !self.script
    }
}

/// COMMAND's arity and legacy key range of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpan {
    pub arity: i64,
    pub first: i64,
    pub last: i64,
    pub step: i64,
}

impl KeySpan {
    /// The key positions for `argc` arguments; `None` when the arity check refuses the command
    /// before it runs (as processCommand does).
    pub fn positions(&self, argc: usize) -> Option<Positions> {
        let argc = i64::try_from(argc).ok()?;
        let arity_ok = if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        };
        if !arity_ok {
            return None;
        }
        let last = if self.last < 0 {
            argc + self.last
        } else {
            self.last
        };
        let step = usize::try_from(self.step.max(1)).ok()?;
        Some(
            match (
                usize::try_from(self.first),
                usize::try_from(last.min(argc - 1)),
            ) {
                (Ok(next), Ok(last)) => Positions { next, last, step },
                _ => Positions {
                    next: 1,
                    last: 0,
                    step,
                }, // no key
            },
        )
    }
}

/// Key positions from `next` to `last` (inclusive) by `step`: a plain loop (a `StepBy` costs
/// several times more per key in the filter).
#[derive(Debug, Clone)]
pub struct Positions {
    next: usize,
    last: usize,
    step: usize,
}

impl Iterator for Positions {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.next > self.last {
            return None;
        }
        let p = self.next;
        self.next = p.saturating_add(self.step);
        if self.next == p {
            self.last = 0; // step 0 cannot happen (checked), but never loop forever
            self.next = 1;
        }
        Some(p)
    }
}

/// A name of at most 15 bytes, lowercased and packed with its length into one integer: the
/// table's key for nearly every command, made without allocating or looping over bytes.
fn pack(name: &[u8]) -> Option<u128> {
    let n = name.len();
    if n > 15 {
        return None;
    }
    let mut b = [0u8; 16];
    b[..n].copy_from_slice(name);
    b[15] = n as u8;
    Some(ascii_lowercase(u128::from_le_bytes(b)))
}

/// Every byte `A`..=`Z` of `w` made lowercase, the others left alone (bytes at or above 0x80
/// included), all 16 at once.
fn ascii_lowercase(w: u128) -> u128 {
    const ONES: u128 = u128::from_le_bytes([1; 16]);
    const HIGH: u128 = ONES * 0x80;
    let low7 = w & !HIGH;
    // High bit of each byte: its low 7 bits are >= 'A', and > 'Z'.
    let at_least_a = low7 + ONES * (0x80 - 0x41);
    let above_z = low7 + ONES * (0x80 - 0x5b);
    let upper = at_least_a & !above_z & !w & HIGH;
    w | (upper >> 2)
}

#[derive(Debug, Default)]
pub struct CommandTable {
    /// Names `pack` takes.
    short: FastMap<u128, CommandInfo>,
    /// Longer names, lowercase.
    long: FastMap<Vec<u8>, CommandInfo>,
}

impl CommandTable {
    /// The entry of `name` (any case), made empty if there is none.
    pub fn entry(&mut self, name: &[u8]) -> &mut CommandInfo {
        match pack(name) {
            Some(k) => self.short.entry(k).or_default(),
            None => self.long.entry(name.to_ascii_lowercase()).or_default(),
        }
    }

    /// Marks the commands the filter treats apart (after the server's table is in).
    pub fn mark_special(&mut self) {
        type Mark = fn(&mut CommandInfo);
        let lists: [(&[&str], Mark); 4] = [
            (&SCRIPT_COMMANDS, |i| i.script = true),
            (&CHANGE_OWN_FLAGS, |i| i.changes_own_flags = true),
            (&EXPIRE_COMMANDS, |i| i.expire = true),
            (&["hello"], |i| i.hello = true),
        ];
        for (names, mark) in lists {
            for name in names {
                mark(self.entry(name.as_bytes()));
            }
        }
    }

    /// What the table says of `name` (any case); nothing for a command it does not know.
    pub fn get(&self, name: &[u8]) -> CommandInfo {
        self.find(&[name])
    }

    /// What the table says of a call: its command, or its subcommand (asked for only when the
    /// command is a container) for a container.
    pub fn look_up<'a>(&self, name: &[u8], sub: impl FnOnce() -> Option<&'a [u8]>) -> CommandInfo {
        let info = self.get(name);
        if !info.container {
            return info;
        }
        match sub() {
            Some(sub) => self.find(&[name, sub]),
            None => info,
        }
    }

    /// `parts` joined by `|`, looked up without allocating.
    fn find(&self, parts: &[&[u8]]) -> CommandInfo {
        let found = match parts {
            [name] if name.len() <= 15 => pack(name).and_then(|k| self.short.get(&k)),
            _ => {
                let mut buf = [0u8; MAX_NAME];
                lowered(&mut buf, parts).and_then(|full| match pack(full) {
                    Some(k) => self.short.get(&k),
                    None => self.long.get(full),
                })
            }
        };
        found.copied().unwrap_or_default()
    }
}

/// No command name, nor `container|sub`, is longer: a longer one is unknown.
const MAX_NAME: usize = 64;

/// `parts` joined by `|` and lowercased into `buf`; `None` when longer than `MAX_NAME`.
fn lowered<'b>(buf: &'b mut [u8; MAX_NAME], parts: &[&[u8]]) -> Option<&'b [u8]> {
    let mut len = 0;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            *buf.get_mut(len)? = b'|';
            len += 1;
        }
        let dest = buf.get_mut(len..len + part.len())?;
        for (d, s) in dest.iter_mut().zip(part.iter()) {
            *d = s.to_ascii_lowercase();
        }
        len += part.len();
    }
    Some(&buf[..len])
}

/// The server's name for a call: `name`, or `name|sub` for a container's subcommand, lowercase.
pub fn full_name(name: &[u8], sub: Option<&[u8]>) -> Vec<u8> {
    let mut full = name.to_ascii_lowercase();
    if let Some(sub) = sub {
        full.push(b'|');
        full.extend(sub.iter().map(u8::to_ascii_lowercase));
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_spans_give_positions_and_refuse_wrong_arities() {
        let get = KeySpan {
            arity: 2,
            first: 1,
            last: 1,
            step: 1,
        };
        assert_eq!(get.positions(2).map(Iterator::collect), Some(vec![1]));
        assert_eq!(get.positions(3).map(Iterator::collect::<Vec<_>>), None);
        let mget = KeySpan {
            arity: -2,
            first: 1,
            last: -1,
            step: 1,
        };
        assert_eq!(
            mget.positions(4).map(Iterator::collect),
            Some(vec![1, 2, 3])
        );
        assert_eq!(mget.positions(1).map(Iterator::collect::<Vec<_>>), None);
        let pairs = KeySpan {
            arity: -3,
            first: 1,
            last: -1,
            step: 2,
        };
        assert_eq!(pairs.positions(5).map(Iterator::collect), Some(vec![1, 3]));
        let sub = KeySpan {
            arity: -3,
            first: 2,
            last: 2,
            step: 1,
        };
        assert_eq!(sub.positions(3).map(Iterator::collect), Some(vec![2]));
    }

    #[test]
    fn packed_names_are_lowercased_bytewise() {
        for name in [
            &b""[..],
            b"GET",
            b"get",
            b"HgetAll",
            b"@[`{AZaz09\x7f\x80\xc1\xdaZ",
            b"ABCDEFGHIJKLMNO",
        ] {
            let mut want = [0u8; 16];
            for (d, s) in want.iter_mut().zip(name) {
                *d = s.to_ascii_lowercase();
            }
            want[15] = name.len() as u8;
            assert_eq!(pack(name), Some(u128::from_le_bytes(want)), "{name:?}");
        }
        assert_eq!(pack(b"ABCDEFGHIJKLMNOP"), None);
        for b in 0..=255u8 {
            let w = u128::from(b) | (u128::from(b) << 64);
            let l = u128::from(b.to_ascii_lowercase());
            assert_eq!(ascii_lowercase(w), l | (l << 64), "byte {b}");
        }
    }

    #[test]
    fn names_are_found_in_any_case_short_or_long() {
        let mut t = CommandTable::default();
        t.entry(b"get").readonly = true;
        t.entry(b"object").container = true;
        t.entry(b"object|encoding").readonly = true;
        let long = b"georadiusbymember_ro";
        t.entry(long).readonly = true;
        t.mark_special();
        assert!(t.get(b"GeT").readonly);
        assert!(!t.get(b"get\0").readonly, "the length is part of the key");
        assert!(!t.get(b"ge").readonly);
        assert!(t.get(b"GEORADIUSBYMEMBER_RO").readonly);
        assert!(!t.get(b"georadiusbymember_rx").readonly);
        let sub = |s: &'static [u8]| move || Some(s);
        assert!(t.look_up(b"OBJECT", sub(b"Encoding")).readonly);
        assert!(!t.look_up(b"object", sub(b"freq")).readonly);
        assert!(t.look_up(b"object", || None).container);
        let eval_ro = t.get(b"EVAL_RO");
        assert!(eval_ro.script && !eval_ro.remembers_keys());
        assert!(t.get(b"Multi").changes_own_flags && t.get(b"pexpireat").expire);
        assert!(t.get(b"hello").hello);
        assert_eq!(t.get(b"nosuchcommand"), CommandInfo::default());
        assert_eq!(t.get(&[b'a'; MAX_NAME + 1]), CommandInfo::default());
        let object = t.look_up(b"object", || Some(&[b'e'; MAX_NAME][..]));
        assert_eq!(object, CommandInfo::default(), "too long once joined");
    }
}
