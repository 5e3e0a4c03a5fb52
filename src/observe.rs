//! What the server itself says, parsed: CLIENT LIST lines, INFO commandstats values and
//! ACL LIST rules.
//! These are the server's word; the mirror is checked against them.

/// One CLIENT LIST line, reduced to the fields tracking needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listed {
    pub id: u64,
    pub tracking: bool,
    pub bcast: bool,
    pub broken_redirect: bool,
    pub in_multi: bool,
    /// `P`: subscribed to something (RESP2 targets need it to receive invalidations).
    pub pubsub: bool,
    /// `resp=`: the protocol, 2 or 3.
    pub resp: i64,
    /// `redir=`: -1 when tracking is off, else the stored redirect (0 for none).
    pub redir: i64,
}

/// Parses CLIENT LIST output. Fields sit at different positions on each server, so go by name.
pub fn parse_client_list(text: &[u8]) -> Vec<Listed> {
    client_list_lines(text, |fields| {
        let mut c = Listed {
            redir: -1,
            resp: 2,
            ..Default::default()
        };
        for (name, value) in fields {
            match name {
                b"id" => c.id = parse_u64(value).unwrap_or(0),
                b"flags" => {
                    c.tracking = value.contains(&b't');
                    c.bcast = value.contains(&b'B');
                    c.broken_redirect = value.contains(&b'R');
                    c.in_multi = value.contains(&b'x');
                    c.pubsub = value.contains(&b'P');
                }
                b"redir" => c.redir = crate::rules::parse_i64(value).unwrap_or(-1),
                b"resp" => c.resp = crate::rules::parse_i64(value).unwrap_or(2),
                _ => {}
            }
        }
        (c.id != 0).then_some(c)
    })
}

/// A client's `addr=` and `name=` in CLIENT LIST (a name has no spaces: CLIENT SETNAME refuses
/// them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Named {
    pub id: u64,
    pub addr: Vec<u8>,
    pub name: Vec<u8>,
}

/// The `id`, `addr` and `name` of each CLIENT LIST line.
pub fn parse_client_names(text: &[u8]) -> Vec<Named> {
    client_list_lines(text, |fields| {
        let mut c = Named::default();
        for (name, value) in fields {
            match name {
                b"id" => c.id = parse_u64(value).unwrap_or(0),
                b"addr" => c.addr = value.to_vec(),
                b"name" => c.name = value.to_vec(),
                _ => {}
            }
        }
        (c.id != 0).then_some(c)
    })
}

/// Each line of CLIENT LIST output, as its `name=value` fields, through `parse`; the lines it
/// makes nothing of are left out (client ids start at 1: a line without one has `id` 0).
fn client_list_lines<'t, T>(text: &'t [u8], parse: impl FnMut(Fields<'t>) -> Option<T>) -> Vec<T> {
    text.split(|&b| b == b'\n')
        .map(|line| Fields {
            words: line
                .strip_suffix(b"\r")
                .unwrap_or(line)
                .split(|&b| b == b' '),
        })
        .filter_map(parse)
        .collect()
}

/// The `name=value` fields of one CLIENT LIST line (words without `=` are skipped).
struct Fields<'t> {
    words: std::slice::Split<'t, u8, fn(&u8) -> bool>,
}

impl<'t> Iterator for Fields<'t> {
    type Item = (&'t [u8], &'t [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        for word in self.words.by_ref() {
            if let Some(eq) = word.iter().position(|&b| b == b'=') {
                return Some((&word[..eq], &word[eq + 1..]));
            }
        }
        None
    }
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// How often a command ran, and how often it replied with an error, from one
/// `cmdstat_<name>` value: `calls=4,usec=3,usec_per_call=0.75,rejected_calls=1,failed_calls=2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallStats {
    pub calls: u64,
    pub rejected: u64,
    pub failed: u64,
}

pub fn parse_cmdstat(value: &[u8]) -> Option<CallStats> {
    let mut s = CallStats::default();
    let mut seen = false;
    for kv in value.split(|&b| b == b',') {
        let Some(eq) = kv.iter().position(|&b| b == b'=') else {
            continue;
        };
        match &kv[..eq] {
            b"calls" => {
                s.calls = parse_u64(&kv[eq + 1..])?;
                seen = true;
            }
            b"failed_calls" => s.failed = parse_u64(&kv[eq + 1..])?,
            b"rejected_calls" => s.rejected = parse_u64(&kv[eq + 1..])?,
            _ => {}
        }
    }
    seen.then_some(s)
}

/// The rules of one `ACL LIST` line that name a command starting with `prefix`, allowed or
/// denied (`+trackinfo.get`, `-trackinfo.keys`), selectors included. Category rules (`+@...`)
/// name no command.
pub fn acl_command_rules<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    line.split(' ')
        .map(|t| t.trim_start_matches('(').trim_end_matches(')'))
        .filter(|t| {
            t.strip_prefix(['+', '-'])
                .and_then(|name| name.get(..prefix.len()))
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_rules_naming_commands_are_found_in_selectors_too() {
        let line = "user app on nopass sanitize-payload ~* resetchannels -@all +TrackInfo.get \
                    +@connection (+trackinfo.keys ~k*) -trackinfo.stats +trackinfox";
        assert_eq!(
            acl_command_rules(line, "trackinfo."),
            ["+TrackInfo.get", "+trackinfo.keys", "-trackinfo.stats"]
        );
        assert!(acl_command_rules("user default on nopass ~* &* +@all", "trackinfo.").is_empty());
    }

    #[test]
    fn client_list_lines_are_parsed_by_field_name() {
        let text = b"id=3 addr=127.0.0.1:5 laddr=x fd=8 name= age=0 idle=0 flags=tRB capa= db=0 sub=0 psub=0 ssub=0 multi=-1 redir=12 resp=2\n\
id=4 addr=127.0.0.1:6 fd=9 name=a flags=x db=0 multi=2 redir=-1 resp=3\r\n";
        let l = parse_client_list(text);
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0],
            Listed {
                id: 3,
                tracking: true,
                bcast: true,
                broken_redirect: true,
                in_multi: false,
                pubsub: false,
                resp: 2,
                redir: 12
            }
        );
        assert!(!l[1].tracking && l[1].in_multi && l[1].redir == -1 && l[1].resp == 3);
    }

    #[test]
    fn client_list_addr_and_name_are_taken_whole() {
        let text = b"id=3 addr=127.0.0.1:5 laddr=127.0.0.1:6379 fd=8 name=a=b,c age=0 redir=0\n\
id=4 addr=/tmp/redis.sock:0 fd=9 name= flags=x\n";
        let n = parse_client_names(text);
        assert_eq!(n.len(), 2);
        assert_eq!(
            (n[0].id, &n[0].addr[..], &n[0].name[..]),
            (3, &b"127.0.0.1:5"[..], &b"a=b,c"[..])
        );
        assert_eq!(
            (n[1].id, &n[1].addr[..], &n[1].name[..]),
            (4, &b"/tmp/redis.sock:0"[..], &b""[..])
        );
    }

    #[test]
    fn cmdstat_values_give_calls_and_failures() {
        let v = b"calls=4,usec=3,usec_per_call=0.75,rejected_calls=1,failed_calls=2";
        assert_eq!(
            parse_cmdstat(v),
            Some(CallStats {
                calls: 4,
                rejected: 1,
                failed: 2
            })
        );
        assert_eq!(parse_cmdstat(b"usec=3"), None);
    }
}
