//! Replies as data: built by the command layer, emitted by the FFI shim with the module API's
//! map/set/array calls (which degrade to flat arrays in RESP2 exactly as the server's own do),
//! and encodable to RESP bytes so unit tests can compare them with the server's bytes.

use crate::clients::Acct;
use crate::rules::delivery::Delivery;
use crate::rules::TrackingState;

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Array(Vec<Reply>),
    /// Field names and fixed words are borrowed: a reply allocates only what varies.
    Bulk(Cow<'static, [u8]>),
    Int(i64),
}

impl Reply {
    pub fn bulk(s: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Cow::Owned(s.as_ref().to_vec()))
    }

    /// A fixed word (a field name, a flag): nothing is copied.
    pub fn text(s: &'static str) -> Reply {
        Reply::Bulk(Cow::Borrowed(s.as_bytes()))
    }

    /// The RESP bytes the server would send for this reply.
    pub fn encode(&self, resp3: bool, out: &mut Vec<u8>) {
        let head = |out: &mut Vec<u8>, c: u8, n: usize| {
            out.push(c);
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        match self {
            Reply::Map(pairs) => {
                if resp3 {
                    head(out, b'%', pairs.len());
                } else {
                    head(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(resp3, out);
                    v.encode(resp3, out);
                }
            }
            Reply::Set(items) | Reply::Array(items) => {
                let c = if resp3 && matches!(self, Reply::Set(_)) {
                    b'~'
                } else {
                    b'*'
                };
                head(out, c, items.len());
                for i in items {
                    i.encode(resp3, out);
                }
            }
            Reply::Bulk(b) => {
                head(out, b'$', b.len());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Int(i) => {
                out.push(b':');
                out.extend_from_slice(i.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fidelity {
    /// The module saw everything that decides `flags`, `redirect` and `prefixes`.
    Exact,
    /// Only what CLIENT LIST exposes: on/off, bcast, broken redirect, redirect id.
    Partial,
}

impl Fidelity {
    pub fn name(self) -> &'static str {
        match self {
            Fidelity::Exact => "exact",
            Fidelity::Partial => "partial",
        }
    }
}

/// Everything one TRACKINFO entry reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub id: u64,
    pub state: TrackingState,
    pub fidelity: Fidelity,
    /// Unix ms when tracking was last switched on; -1 when off or unknown.
    pub since_ms: i64,
    /// The client's protocol now (2 or 3).
    pub resp: i64,
    /// Where its invalidation messages go now.
    pub delivery: Delivery,
    /// Keys the tracking table holds for it; `None` where the module cannot know.
    pub tracked_keys: Option<u64>,
    /// What the module counted since tracking was switched on; `None` where it cannot know.
    pub acct: Option<Acct>,
}

impl View {
    /// A view whose `resp` and `delivery` are still to be read from the server (CLIENT LIST).
    pub fn new(id: u64, state: TrackingState, fidelity: Fidelity, since_ms: i64) -> View {
        View {
            id,
            state,
            fidelity,
            since_ms,
            resp: 2,
            delivery: Delivery::Off,
            tracked_keys: None,
            acct: None,
        }
    }
}

/// One TRACKINFO entry: the three CLIENT TRACKINGINFO fields first, byte for byte, then ours.
pub fn entry(v: &View) -> Reply {
    let flags = v.state.flag_names().into_iter().map(Reply::text).collect();
    let prefixes = v.state.prefixes.iter().map(Reply::bulk).collect();
    let since = if v.state.is_on() { v.since_ms } else { -1 };
    let mut out = Reply::Map(vec![
        (Reply::text("flags"), Reply::Set(flags)),
        (
            Reply::text("redirect"),
            Reply::Int(v.state.reported_redirect()),
        ),
        (Reply::text("prefixes"), Reply::Array(prefixes)),
        (Reply::text("id"), Reply::Int(v.id as i64)),
        (Reply::text("fidelity"), Reply::text(v.fidelity.name())),
        (Reply::text("tracking-since"), Reply::Int(since)),
        (Reply::text("resp"), Reply::Int(v.resp)),
        (Reply::text("delivery"), Reply::text(v.delivery.name())),
    ]);
    // Counters the module cannot know are -1, never a guess.
    let known = |n: Option<u64>| n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let a = v.acct.as_ref();
    let exact = v.tracked_keys.is_some() && a.is_some_and(|a| !a.approximate);
    let Reply::Map(pairs) = &mut out else {
        return out;
    };
    pairs.extend([
        (
            Reply::text("tracked-keys"),
            Reply::Int(known(v.tracked_keys)),
        ),
        (
            Reply::text("tracked-reads"),
            Reply::Int(known(a.map(|a| a.reads))),
        ),
        (
            Reply::text("invalidated-keys"),
            Reply::Int(known(a.map(|a| a.invalidated))),
        ),
        (
            Reply::text("flush-invalidations"),
            Reply::Int(known(a.map(|a| a.flushes))),
        ),
        (
            Reply::text("last-invalidation"),
            Reply::Int(a.map_or(-1, |a| a.last_ms)),
        ),
        (
            Reply::text("prefix-stats"),
            Reply::Map(
                a.map(|a| {
                    a.prefix_stats
                        .iter()
                        .map(|(p, n)| (Reply::bulk(p), Reply::Int(known(Some(*n)))))
                        .collect()
                })
                .unwrap_or_default(),
            ),
        ),
        (
            Reply::text("counters"),
            Reply::text(if exact { "exact" } else { "approximate" }),
        ),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Flags;

    fn bcast_view() -> View {
        View {
            id: 7,
            state: TrackingState {
                flags: Flags::ON | Flags::BCAST | Flags::NOLOOP,
                redirect: 0,
                prefixes: [b"b".to_vec(), b"a".to_vec()].into_iter().collect(),
            },
            fidelity: Fidelity::Exact,
            since_ms: 1700000000000,
            resp: 3,
            delivery: Delivery::SelfPush,
            tracked_keys: Some(2),
            acct: Some(Acct::default()),
        }
    }

    /// The first three fields are the server's own bytes (research/module-api.md §1).
    const SERVER_RESP2: &[u8] = b"*6\r\n$5\r\nflags\r\n*3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n";

    fn first_three(resp3: bool) -> Vec<u8> {
        let Reply::Map(pairs) = entry(&bcast_view()) else {
            panic!("entry is a map")
        };
        let mut out = Vec::new();
        Reply::Map(pairs[..3].to_vec()).encode(resp3, &mut out);
        out
    }

    #[test]
    fn resp2_entry_starts_with_the_servers_trackinginfo_bytes() {
        assert_eq!(first_three(false), SERVER_RESP2);
    }

    #[test]
    fn resp3_entry_uses_a_map_and_a_set_like_the_server() {
        let expected = String::from_utf8_lossy(SERVER_RESP2)
            .replacen("*6", "%3", 1)
            .replacen("*3", "~3", 1);
        assert_eq!(String::from_utf8_lossy(&first_three(true)), expected);
    }

    #[test]
    fn entry_keys_keep_their_order() {
        let Reply::Map(pairs) = entry(&bcast_view()) else {
            panic!("entry is a map")
        };
        let keys: Vec<_> = pairs
            .iter()
            .map(|(k, _)| match k {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            keys,
            [
                "flags",
                "redirect",
                "prefixes",
                "id",
                "fidelity",
                "tracking-since",
                "resp",
                "delivery",
                "tracked-keys",
                "tracked-reads",
                "invalidated-keys",
                "flush-invalidations",
                "last-invalidation",
                "prefix-stats",
                "counters"
            ]
        );
    }

    #[test]
    fn tracking_since_is_minus_one_while_off() {
        let mut v = bcast_view();
        v.state = TrackingState::default();
        let Reply::Map(pairs) = entry(&v) else {
            panic!("entry is a map")
        };
        assert_eq!(pairs[5].1, Reply::Int(-1));
        assert_eq!(pairs[1].1, Reply::Int(-1));
    }
}
