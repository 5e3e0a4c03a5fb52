//! One client's tracking options, as the server keeps them in `client->flags`,
//! `client_tracking_redirection` and `client_tracking_prefixes`.

use std::collections::BTreeSet;

bitflags::bitflags! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Flags: u8 {
        const ON = 1 << 0;
        const BCAST = 1 << 1;
        const OPTIN = 1 << 2;
        const OPTOUT = 1 << 3;
        const CACHING = 1 << 4;
        const NOLOOP = 1 << 5;
        const BROKEN_REDIR = 1 << 6;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackingState {
    pub flags: Flags,
    /// The stored redirect id. It survives OFF (the server only reports it as -1 then).
    pub redirect: i64,
    /// BCAST prefixes. A BTreeSet of byte strings iterates in memcmp order, as the server's rax does.
    pub prefixes: BTreeSet<Vec<u8>>,
}

impl TrackingState {
    pub fn is_on(&self) -> bool {
        self.flags.contains(Flags::ON)
    }

    /// The `flags` list of CLIENT TRACKINGINFO, in the order networking.c emits it.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let f = self.flags;
        let mut out = Vec::with_capacity(5);
        out.push(if f.contains(Flags::ON) { "on" } else { "off" });
        if f.contains(Flags::BCAST) {
            out.push("bcast");
        }
        if f.contains(Flags::OPTIN) {
            out.push("optin");
            if f.contains(Flags::CACHING) {
                out.push("caching-yes");
            }
        }
        if f.contains(Flags::OPTOUT) {
            out.push("optout");
            if f.contains(Flags::CACHING) {
                out.push("caching-no");
            }
        }
        if f.contains(Flags::NOLOOP) {
            out.push("noloop");
        }
        if f.contains(Flags::BROKEN_REDIR) {
            out.push("broken_redirect");
        }
        out
    }

    /// The `redirect` field: -1 while tracking is off, whatever id is stored.
    pub fn reported_redirect(&self) -> i64 {
        if self.is_on() {
            self.redirect
        } else {
            -1
        }
    }

    /// As tracking.c disableTracking: clears the options and the prefixes, keeps the stored redirect.
    pub fn disable(&mut self) {
        if self.is_on() {
            self.prefixes.clear();
            self.flags = Flags::empty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_listed_in_server_order() {
        let mut s = TrackingState::default();
        assert_eq!(s.flag_names(), ["off"]);
        s.flags = Flags::ON | Flags::OPTIN | Flags::CACHING | Flags::NOLOOP | Flags::BROKEN_REDIR;
        assert_eq!(
            s.flag_names(),
            ["on", "optin", "caching-yes", "noloop", "broken_redirect"]
        );
        s.flags = Flags::ON | Flags::OPTOUT | Flags::CACHING;
        assert_eq!(s.flag_names(), ["on", "optout", "caching-no"]);
        s.flags = Flags::ON | Flags::BCAST | Flags::NOLOOP;
        assert_eq!(s.flag_names(), ["on", "bcast", "noloop"]);
    }

    #[test]
    fn redirect_reads_minus_one_while_off_but_is_kept() {
        let mut s = TrackingState {
            flags: Flags::ON,
            redirect: 9,
            ..Default::default()
        };
        assert_eq!(s.reported_redirect(), 9);
        s.disable();
        assert_eq!(s.reported_redirect(), -1);
        assert_eq!(s.redirect, 9);
    }

    #[test]
    fn prefixes_iterate_in_byte_order() {
        let s = TrackingState {
            prefixes: [b"b".to_vec(), b"a".to_vec(), b"c\0z".to_vec(), b"".to_vec()]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let v: Vec<&[u8]> = s.prefixes.iter().map(|p| p.as_slice()).collect();
        assert_eq!(v, [&b""[..], b"a", b"b", b"c\0z"]);
    }
}
