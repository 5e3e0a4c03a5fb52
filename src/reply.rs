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
    /// Text as CLIENT LIST replies: a verbatim string of format `txt` in RESP3, a bulk string in
    /// RESP2 (networking.c addReplyVerbatim).
    Verbatim(Vec<u8>),
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
            Reply::Verbatim(t) => {
                if resp3 {
                    head(out, b'=', t.len() + 4);
                    out.extend_from_slice(b"txt:");
                } else {
                    head(out, b'$', t.len());
                }
                out.extend_from_slice(t);
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

/// What TRACKINFO.CLIENTS and TRACKINFO.LIST show of a view: the same honesty rules for both.
impl View {
    /// Unix ms when tracking was last switched on; -1 when off or unknown.
    pub fn shown_since(&self) -> i64 {
        if self.state.is_on() {
            self.since_ms
        } else {
            -1
        }
    }

    /// `tracked-keys`: -1 where the module cannot know, never a guess.
    pub fn shown_tracked_keys(&self) -> i64 {
        known(self.tracked_keys)
    }

    /// `invalidated-keys`: -1 where the module cannot know.
    pub fn shown_invalidated(&self) -> i64 {
        known(self.acct.as_ref().map(|a| a.invalidated))
    }

    /// `dropped-keys`: -1 where the module cannot know.
    pub fn shown_dropped_keys(&self) -> i64 {
        known(self.acct.as_ref().map(|a| a.dropped_keys))
    }

    /// `counters`: exact only when the module counted everything for this client.
    pub fn counters_exact(&self) -> bool {
        self.tracked_keys.is_some() && self.acct.as_ref().is_some_and(|a| !a.approximate)
    }

    fn counters_name(&self) -> &'static str {
        if self.counters_exact() {
            "exact"
        } else {
            "approximate"
        }
    }
}

fn known(n: Option<u64>) -> i64 {
    n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// One TRACKINFO entry: the three CLIENT TRACKINGINFO fields first, byte for byte, then ours.
pub fn entry(v: &View) -> Reply {
    let flags = v.state.flag_names().into_iter().map(Reply::text).collect();
    let prefixes = v.state.prefixes.iter().map(Reply::bulk).collect();
    let a = v.acct.as_ref();
    Reply::Map(vec![
        (Reply::text("flags"), Reply::Set(flags)),
        (
            Reply::text("redirect"),
            Reply::Int(v.state.reported_redirect()),
        ),
        (Reply::text("prefixes"), Reply::Array(prefixes)),
        (Reply::text("id"), Reply::Int(v.id as i64)),
        (Reply::text("fidelity"), Reply::text(v.fidelity.name())),
        (Reply::text("tracking-since"), Reply::Int(v.shown_since())),
        (Reply::text("resp"), Reply::Int(v.resp)),
        (Reply::text("delivery"), Reply::text(v.delivery.name())),
        (
            Reply::text("tracked-keys"),
            Reply::Int(v.shown_tracked_keys()),
        ),
        (
            Reply::text("tracked-reads"),
            Reply::Int(known(a.map(|a| a.reads))),
        ),
        (
            Reply::text("invalidated-keys"),
            Reply::Int(v.shown_invalidated()),
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
        (Reply::text("counters"), Reply::text(v.counters_name())),
        (
            Reply::text("dropped-keys"),
            Reply::Int(v.shown_dropped_keys()),
        ),
        (
            Reply::text("dropped-flushes"),
            Reply::Int(known(a.map(|a| a.dropped_flushes))),
        ),
    ])
}

/// One TRACKINFO.LIST line, in CLIENT LIST's `name=value` format and ended by "\n" as
/// networking.c clientsCatList ends its lines. `addr` and `name` are CLIENT LIST's own values;
/// the rest is what `entry` shows for the same view, `since` counted back from `now_ms`.
pub fn list_line(v: &View, addr: &[u8], name: &[u8], now_ms: i64, out: &mut Vec<u8>) {
    let since = match v.shown_since() {
        -1 => -1,
        at => now_ms.saturating_sub(at).max(0),
    };
    let flags = v.state.flag_names().join(",");
    out.extend_from_slice(format!("id={} addr=", v.id).as_bytes());
    out.extend_from_slice(addr);
    out.extend_from_slice(b" name=");
    out.extend_from_slice(name);
    out.extend_from_slice(
        format!(
            " flags={flags} redir={} prefixes=",
            v.state.reported_redirect()
        )
        .as_bytes(),
    );
    for (i, p) in v.state.prefixes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape_prefix(p, out);
    }
    out.extend_from_slice(
        format!(
            " delivery={} tracked-keys={} invalidated-keys={} since={since} fidelity={} counters={} \
             dropped-keys={}\n",
            v.delivery.name(),
            v.shown_tracked_keys(),
            v.shown_invalidated(),
            v.fidelity.name(),
            v.counters_name(),
            v.shown_dropped_keys(),
        )
        .as_bytes(),
    );
}

/// A BCAST prefix as one token of a comma-joined list on a space-separated line: bytes `!`
/// to `~` as they are (the bytes CLIENT SETNAME allows in a name), except `%`, `,` and `"`,
/// which like every other byte are written `%XX` (two uppercase hex digits). The empty
/// prefix (BCAST without PREFIX) is written `""`.
pub fn escape_prefix(p: &[u8], out: &mut Vec<u8>) {
    if p.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in p {
        match b {
            b'%' | b',' | b'"' => {}
            b'!'..=b'~' => {
                out.push(b);
                continue;
            }
            _ => {}
        }
        out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
    }
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
                "counters",
                "dropped-keys",
                "dropped-flushes"
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

    fn escaped(p: &[u8]) -> String {
        let mut out = Vec::new();
        escape_prefix(p, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prefixes_escape_to_one_unambiguous_token() {
        assert_eq!(escaped(b""), "\"\"");
        assert_eq!(escaped(b"user:"), "user:");
        assert_eq!(escaped(b"a=b\\c"), "a=b\\c");
        assert_eq!(escaped(b"a b,c%d\"e"), "a%20b%2Cc%25d%22e");
        assert_eq!(escaped(b"\r\n\x00\x7f\xff"), "%0D%0A%00%7F%FF");
        assert_eq!(escaped(b"\"\""), "%22%22");
    }

    #[test]
    fn list_line_has_client_list_shape_and_the_entrys_values() {
        let mut v = bcast_view();
        v.state.prefixes = [b"".to_vec(), b"a b".to_vec(), b"u:".to_vec()]
            .into_iter()
            .collect();
        v.acct = Some(Acct {
            invalidated: 4,
            dropped_keys: 3,
            ..Acct::default()
        });
        let mut out = Vec::new();
        list_line(&v, b"127.0.0.1:5000", b"app", 1700000000250, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id=7 addr=127.0.0.1:5000 name=app flags=on,bcast,noloop redir=0 \
             prefixes=\"\",a%20b,u: delivery=self tracked-keys=2 invalidated-keys=4 since=250 \
             fidelity=exact counters=exact dropped-keys=3\n"
        );
    }

    #[test]
    fn list_line_of_a_partial_client_says_what_is_unknown() {
        let mut v = bcast_view();
        v.state.flags = Flags::ON | Flags::BROKEN_REDIR;
        v.state.redirect = 9;
        v.state.prefixes.clear();
        v.fidelity = Fidelity::Partial;
        v.since_ms = -1;
        v.delivery = Delivery::Dropped;
        v.tracked_keys = None;
        v.acct = None;
        let mut out = Vec::new();
        list_line(&v, b"127.0.0.1:5000", b"", 1700000000250, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id=7 addr=127.0.0.1:5000 name= flags=on,broken_redirect redir=9 prefixes= \
             delivery=dropped tracked-keys=-1 invalidated-keys=-1 since=-1 fidelity=partial \
             counters=approximate dropped-keys=-1\n"
        );
    }

    #[test]
    fn verbatim_is_txt_in_resp3_and_bulk_in_resp2() {
        let r = Reply::Verbatim(b"id=1\n".to_vec());
        let (mut two, mut three) = (Vec::new(), Vec::new());
        r.encode(false, &mut two);
        r.encode(true, &mut three);
        assert_eq!(two, b"$5\r\nid=1\n\r\n");
        assert_eq!(three, b"=9\r\ntxt:id=1\n\r\n");
    }
}
