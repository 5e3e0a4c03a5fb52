//! TRACKINFO.LIST is TRACKINFO.CLIENTS as CLIENT LIST lines: the same clients, the same values,
//! the same filters, on every server (on Redis 7.0 every entry is partial, and still equal).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{for_each_server, now_ms, Conn, Resp, Server};

type Entry = BTreeMap<String, Resp>;
type Line = BTreeMap<String, String>;

/// TRACKINFO.CLIENTS over RESP2, with its raw bytes.
fn clients(obs: &mut Conn) -> (Vec<Entry>, Vec<u8>) {
    let (r, raw) = obs.cmd_raw(&["TRACKINFO.CLIENTS"]);
    let entries = r
        .items()
        .unwrap_or_else(|| panic!("TRACKINFO.CLIENTS: {r}"))
        .iter()
        .map(|e| {
            e.items()
                .unwrap_or_else(|| panic!("entry {e}"))
                .chunks(2)
                .map(|kv| (kv[0].text().unwrap_or_default(), kv[1].clone()))
                .collect()
        })
        .collect();
    (entries, raw)
}

/// CLIENT LIST-style text as `name=value` maps, checking each line's field order.
fn lines(text: &str) -> Vec<Line> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "lines end with \\n: {text:?}"
    );
    text.lines()
        .map(|l| {
            let pairs: Vec<(String, String)> = l
                .split(' ')
                .map(|f| {
                    let (k, v) = f.split_once('=').unwrap_or_else(|| panic!("{f} in {l}"));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, common::LIST_FIELDS, "field order of {l}");
            pairs.into_iter().collect()
        })
        .collect()
}

fn list(obs: &mut Conn, filter: &[&str]) -> Resp {
    let mut args = vec!["TRACKINFO.LIST"];
    args.extend_from_slice(filter);
    obs.cmd(&args)
}

fn list_lines(obs: &mut Conn, filter: &[&str]) -> Vec<Line> {
    let r = list(obs, filter);
    let text = r
        .text()
        .filter(|_| !r.is_error())
        .unwrap_or_else(|| panic!("TRACKINFO.LIST {filter:?}: {r}"));
    lines(&text)
}

/// The escaping of `prefixes=` undone: `""` is the empty prefix, `%XX` a byte.
fn decode_prefixes(v: &str) -> Vec<Vec<u8>> {
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',')
        .map(|p| {
            if p == "\"\"" {
                return Vec::new();
            }
            let b = p.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    assert!(b[i].is_ascii_graphic() && b[i] != b'"', "{p}");
                    out.push(b[i]);
                    i += 1;
                }
            }
            out
        })
        .collect()
}

fn int(e: &Entry, k: &str) -> i64 {
    e[k].int().unwrap_or_else(|| panic!("{k} in {e:?}"))
}

fn words(e: &Entry, k: &str) -> Vec<Vec<u8>> {
    e[k].items()
        .unwrap_or_else(|| panic!("{k} in {e:?}"))
        .iter()
        .map(|i| match i {
            Resp::Bulk(b) => b.clone(),
            other => panic!("{k}: {other}"),
        })
        .collect()
}

/// One line equals the CLIENTS entry of the same id; `before`/`after` bound the module's clock.
fn assert_line_is_entry(l: &Line, e: &Entry, before: i64, after: i64, listed: &Line, d: &str) {
    let flags: Vec<String> = words(e, "flags")
        .iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    assert_eq!(l["flags"], flags.join(","), "flags of {l:?} on {d}");
    for (field, key) in [
        ("redir", "redirect"),
        ("tracked-keys", "tracked-keys"),
        ("invalidated-keys", "invalidated-keys"),
        ("dropped-keys", "dropped-keys"),
    ] {
        assert_eq!(l[field], int(e, key).to_string(), "{field} of {l:?} on {d}");
    }
    for k in ["delivery", "fidelity", "counters"] {
        assert_eq!(Some(&l[k]), e[k].text().as_ref(), "{k} of {l:?} on {d}");
    }
    assert_eq!(
        decode_prefixes(&l["prefixes"]),
        words(e, "prefixes"),
        "prefixes of {l:?} on {d}"
    );
    let since: i64 = l["since"].parse().unwrap();
    match int(e, "tracking-since") {
        -1 => assert_eq!(since, -1, "{l:?} on {d}"),
        at => assert!(
            (before - at - 1..=after - at + 1).contains(&since),
            "since={since}, tracking-since {at}, asked between {before} and {after} on {d}"
        ),
    }
    assert_eq!(
        l["addr"], listed["addr"],
        "addr as CLIENT LIST says, on {d}"
    );
    assert_eq!(
        l["name"], listed["name"],
        "name as CLIENT LIST says, on {d}"
    );
}

/// CLIENT LIST ID <id>'s line as `name=value`.
fn client_list_line(obs: &mut Conn, id: &str) -> Line {
    let r = obs.cmd(&["CLIENT", "LIST", "ID", id]);
    let text = r.text().unwrap_or_else(|| panic!("CLIENT LIST: {r}"));
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no client {id}"));
    line.split(' ')
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The mode MODE filters on: `bcast` is always known; the others only where the entry is exact.
fn mode(e: &Entry) -> Option<&'static str> {
    let flags = words(e, "flags");
    let exact = e["fidelity"].text().as_deref() != Some("partial");
    common::list_mode(|f| flags.iter().any(|w| w == f.as_bytes()), exact)
}

/// CLIENTS' entries that `filter` keeps, by the documented rules.
fn filtered<'a>(entries: &'a [Entry], filter: &[&str]) -> Vec<&'a Entry> {
    let mut ids: Option<Vec<i64>> = None;
    let (mut want_mode, mut want_delivery) = (None, None);
    let mut i = 0;
    while i < filter.len() {
        match filter[i].to_ascii_lowercase().as_str() {
            "id" => {
                i += 1;
                while i < filter.len()
                    && !["id", "mode", "delivery"]
                        .contains(&filter[i].to_ascii_lowercase().as_str())
                {
                    ids.get_or_insert_with(Vec::new)
                        .push(filter[i].parse().unwrap());
                    i += 1;
                }
            }
            "mode" => {
                want_mode = Some(filter[i + 1].to_ascii_lowercase());
                i += 2;
            }
            _ => {
                want_delivery = Some(filter[i + 1].to_ascii_lowercase());
                i += 2;
            }
        }
    }
    entries
        .iter()
        .filter(|e| ids.as_ref().is_none_or(|ids| ids.contains(&int(e, "id"))))
        .filter(|e| want_mode.as_deref().is_none_or(|m| mode(e) == Some(m)))
        .filter(|e| {
            want_delivery
                .as_deref()
                .is_none_or(|d| e["delivery"].text().as_deref() == Some(d))
        })
        .collect()
}

/// Connections kept open while the test looks at them, and a few ids worth filtering on.
struct Population {
    _conns: Vec<Conn>,
    named: i64,
    optin: i64,
    bcast_odd: i64,
    broken: i64,
    gone: i64,
    idle: i64,
}

/// default, optin, optout, BCAST with the empty prefix and with prefixes that need escaping,
/// NOLOOP, redirects to live RESP2/RESP3/subscribed targets and to a gone one, RESP2 without
/// redirect; reads, invalidations and a CLIENT SETNAME.
fn population(server: &Server, obs: &mut Conn) -> Population {
    let mut conns = Vec::new();
    let mut w = server.conn_proto(2);
    let conn = |proto| {
        let mut c = server.conn_proto(proto);
        let id = c.client_id();
        (c, id)
    };
    let (mut named, named_id) = conn(3);
    named.ok(&["CLIENT", "SETNAME", "list-app,1=a"]);
    named.ok(&["CLIENT", "TRACKING", "ON"]);
    named.cmd(&["MGET", "list:k1", "list:k2"]);

    let (mut optin, optin_id) = conn(3);
    optin.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
    optin.ok(&["CLIENT", "CACHING", "yes"]);
    optin.cmd(&["GET", "list:k3"]);

    let (t3, t3_id) = conn(3);
    let (mut optout, _) = conn(2);
    optout.ok(&[
        "CLIENT",
        "TRACKING",
        "ON",
        "OPTOUT",
        "REDIRECT",
        &t3_id.to_string(),
    ]);
    optout.cmd(&["GET", "list:k4"]);

    let (mut all, _) = conn(3);
    all.ok(&["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"]);

    let (mut sub, sub_id) = conn(2);
    sub.cmd(&["SUBSCRIBE", "list-channel"]);
    let (mut odd, odd_id) = conn(2);
    let sub_arg = sub_id.to_string();
    odd.ok(&[
        &b"CLIENT"[..],
        b"TRACKING",
        b"ON",
        b"BCAST",
        b"PREFIX",
        b"user:",
        b"PREFIX",
        b"a b",
        b"PREFIX",
        b"x,y",
        b"PREFIX",
        b"%\x01\"\xff",
        b"REDIRECT",
        sub_arg.as_bytes(),
        b"NOLOOP",
    ]);

    let (t2, t2_id) = conn(2);
    let (mut r2drop, _) = conn(3);
    r2drop.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &t2_id.to_string()]);
    r2drop.cmd(&["GET", "list:k6"]);

    let (mut g, g_id) = conn(2);
    let (mut broken, broken_id) = conn(3);
    broken.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &g_id.to_string()]);
    broken.cmd(&["GET", "list:k5"]);
    g.send(&["QUIT"]);
    assert!(g.wait_closed());
    server.wait_client_gone(obs, g_id);

    let (mut plain2, _) = conn(2);
    plain2.ok(&["CLIENT", "TRACKING", "ON"]);
    plain2.cmd(&["GET", "list:k1"]);

    let (idle, idle_id) = conn(2);

    for k in ["list:k1", "list:k4", "list:k5", "user:1", "a b", "list:k6"] {
        w.ok(&["SET", k, "v"]);
    }
    conns.extend([
        named, optin, t3, optout, all, sub, odd, t2, r2drop, broken, plain2, idle, w,
    ]);
    Population {
        _conns: conns,
        named: named_id,
        optin: optin_id,
        bcast_odd: odd_id,
        broken: broken_id,
        gone: g_id,
        idle: idle_id,
    }
}

/// CLIENTS, then LIST, then CLIENTS again, until nothing changed in between.
fn settled(obs: &mut Conn, filter: &[&str], d: &str) -> (Vec<Entry>, Vec<Line>, i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (a, _) = clients(obs);
        let before = now_ms();
        let l = list_lines(obs, filter);
        let after = now_ms();
        let (b, _) = clients(obs);
        if a == b {
            return (a, l, before, after);
        }
        assert!(Instant::now() < deadline, "CLIENTS never settled on {d}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_line_equals_the_clients_entry_of_the_same_id() {
    for_each_server(|server| {
        let d = server.describe();
        let mut obs = server.conn_proto(2);
        let p = population(server, &mut obs);
        let (entries, lines, before, after) = settled(&mut obs, &[], &d);
        let ids = |ls: &[Line]| -> Vec<String> { ls.iter().map(|l| l["id"].clone()).collect() };
        let entry_ids: Vec<String> = entries.iter().map(|e| int(e, "id").to_string()).collect();
        assert_eq!(
            ids(&lines),
            entry_ids,
            "LIST lists CLIENTS' ids, in order, on {d}"
        );
        assert_eq!(entries.len(), 8, "eight tracking clients on {d}");
        for (l, e) in lines.iter().zip(&entries) {
            let listed = client_list_line(&mut obs, &l["id"]);
            assert_line_is_entry(l, e, before, after, &listed, &d);
        }
        let named = lines.iter().find(|l| l["id"] == p.named.to_string());
        assert_eq!(named.unwrap()["name"], "list-app,1=a", "on {d}");
        let broken = lines.iter().find(|l| l["id"] == p.broken.to_string());
        assert_eq!(broken.unwrap()["delivery"], "dropped", "on {d}");
        if server.info.module_knows_sender() {
            let odd = lines.iter().find(|l| l["id"] == p.bcast_odd.to_string());
            assert_eq!(
                odd.unwrap()["prefixes"],
                "%25%01%22%FF,a%20b,user:,x%2Cy",
                "on {d}"
            );
            assert!(lines.iter().any(|l| l["prefixes"] == "\"\""), "on {d}");
            assert!(lines.iter().all(|l| l["fidelity"] == "exact"), "on {d}");
        } else {
            // Redis 7.0: CLIENT LIST is all the module can see.
            assert!(lines.iter().all(|l| l["fidelity"] == "partial"), "on {d}");
            assert!(lines.iter().all(|l| l["since"] == "-1"), "on {d}");
        }
    });
}

#[test]
fn each_filter_alone_and_combined_keeps_what_it_keeps_of_clients() {
    for_each_server(|server| {
        let d = server.describe();
        let mut obs = server.conn_proto(2);
        let p = population(server, &mut obs);
        let (named, optin, odd, broken) = (
            p.named.to_string(),
            p.optin.to_string(),
            p.bcast_odd.to_string(),
            p.broken.to_string(),
        );
        let (gone, idle) = (p.gone.to_string(), p.idle.to_string());
        let filters: Vec<Vec<&str>> = vec![
            vec!["ID", &named, &optin, &idle, &gone],
            vec!["id", &odd],
            vec!["ID", &named, "ID", &broken],
            vec!["MODE", "default"],
            vec!["MODE", "OptIn"],
            vec!["mode", "optout"],
            vec!["MODE", "bcast"],
            vec!["DELIVERY", "self"],
            vec!["DELIVERY", "redirect"],
            vec!["delivery", "DROPPED"],
            vec!["MODE", "bcast", "DELIVERY", "redirect"],
            vec!["ID", &named, &optin, &odd, &broken, "MODE", "default"],
            vec![
                "DELIVERY", "dropped", "ID", &odd, &broken, "mode", "default",
            ],
            vec!["MODE", "optin", "DELIVERY", "dropped"],
        ];
        for f in filters {
            let (entries, lines, _, _) = settled(&mut obs, &f, &d);
            let want: Vec<String> = filtered(&entries, &f)
                .iter()
                .map(|e| int(e, "id").to_string())
                .collect();
            let got: Vec<String> = lines.iter().map(|l| l["id"].clone()).collect();
            assert_eq!(got, want, "TRACKINFO.LIST {f:?} on {d}");
        }
        // Filters that keep something on every server, so the comparisons above are not all
        // between empty lists.
        assert_eq!(list_lines(&mut obs, &["ID", &named]).len(), 1, "{d}");
        assert_eq!(list_lines(&mut obs, &["MODE", "bcast"]).len(), 2, "{d}");
        assert_eq!(
            list_lines(&mut obs, &["DELIVERY", "redirect"]).len(),
            2,
            "{d}"
        );
    });
}

#[test]
fn resp2_gets_a_bulk_string_and_resp3_a_verbatim_string_as_client_list_does() {
    for_each_server(|server| {
        let d = server.describe();
        let mut c = server.conn_proto(2);
        c.ok(&["CLIENT", "TRACKING", "ON", "BCAST"]);
        for proto in [2u8, 3] {
            let mut obs = server.conn_proto(proto);
            let id = obs.client_id().to_string();
            let (theirs, theirs_raw) = obs.cmd_raw(&["CLIENT", "LIST", "ID", &id]);
            let (ours, raw) = obs.cmd_raw(&["TRACKINFO.LIST"]);
            assert_eq!(ours.marker(), theirs.marker(), "RESP{proto} on {d}: {ours}");
            let expect = if proto == 3 { &b"="[..] } else { b"$" };
            assert!(raw.starts_with(expect), "RESP{proto} on {d}: {raw:?}");
            if proto == 3 {
                let after_len =
                    |r: &[u8]| r[r.iter().position(|&b| b == b'\n').unwrap() + 1..][..4].to_vec();
                assert_eq!(after_len(&raw), b"txt:", "{d}");
                assert_eq!(after_len(&theirs_raw), b"txt:", "{d}");
            }
            assert_eq!(lines(&ours.text().unwrap()).len(), 1, "RESP{proto} on {d}");
            let (none, none_raw) = obs.cmd_raw(&["TRACKINFO.LIST", "MODE", "optin"]);
            assert_eq!(none.text().as_deref(), Some(""), "{d}");
            let empty: &[u8] = if proto == 3 {
                b"=4\r\ntxt:\r\n"
            } else {
                b"$0\r\n\r\n"
            };
            assert_eq!(none_raw, empty, "RESP{proto} on {d}");
        }
    });
}

#[test]
fn bad_arguments_get_the_servers_errors_and_change_nothing() {
    for_each_server(|server| {
        let d = server.describe();
        let mut obs = server.conn_proto(2);
        let p = population(server, &mut obs);
        let named = p.named.to_string();
        let (_, before) = clients(&mut obs);
        let fixed: [(&[&str], &str); 9] = [
            (&["ID"], "ERR syntax error"),
            (&["ID", "MODE", "bcast"], "ERR syntax error"),
            (&["MODE"], "ERR syntax error"),
            (&["ID", &named, "DELIVERY"], "ERR syntax error"),
            (&["TYPE", "normal"], "ERR syntax error"),
            (&["bcast"], "ERR syntax error"),
            (&["MODE", "off"], "ERR Unknown tracking mode 'off'"),
            (
                &["MODE", "bcast", "DELIVERY", "off"],
                "ERR Unknown delivery 'off'",
            ),
            (
                &["DELIVERY", "Self", "MODE", "all"],
                "ERR Unknown tracking mode 'all'",
            ),
        ];
        for (args, want) in fixed {
            let r = list(&mut obs, args);
            assert_eq!(r, Resp::Error(want.as_bytes().to_vec()), "{args:?} on {d}");
        }
        // After ID: the error CLIENT LIST ID gives for the same tokens, on this server.
        for toks in [
            &["abc"][..],
            &[&named, "abc"],
            &["0"],
            &["-1"],
            &["99999999999999999999"],
            &["007"],
            &["+5"],
        ] {
            let mut theirs = vec!["CLIENT", "LIST", "ID"];
            theirs.extend_from_slice(toks);
            let server_says = obs.cmd(&theirs);
            let mut ours = vec!["ID"];
            ours.extend_from_slice(toks);
            let r = list(&mut obs, &ours);
            if server_says.is_error() {
                assert_eq!(r, server_says, "ID {toks:?} on {d}");
            } else {
                // Redis: ids 0 and -1 match nothing.
                assert_eq!(r.text().as_deref(), Some(""), "ID {toks:?} on {d}: {r}");
            }
        }
        let (_, after) = clients(&mut obs);
        assert_eq!(
            String::from_utf8_lossy(&after),
            String::from_utf8_lossy(&before),
            "errors changed nothing on {d}"
        );
    });
}

/// Like TRACKINFO.CLIENTS: an `admin` command. Redis 7.0 gives module commands no categories,
/// so there `-@admin` does not take them away (the README grants or denies them by name).
#[test]
fn a_user_without_admin_gets_noperm_as_for_clients() {
    for_each_server(|server| {
        let d = server.describe();
        let mut admin = server.conn_proto(2);
        admin.ok(&[
            "ACL",
            "SETUSER",
            "ro",
            "on",
            "nopass",
            "~*",
            "-@all",
            "+@read",
            "+@connection",
        ]);
        admin.ok(&[
            "ACL", "SETUSER", "app", "on", "nopass", "~*", "&*", "+@all", "-@admin",
        ]);
        let denied = |r: &Resp| matches!(r, Resp::Error(e) if e.starts_with(b"NOPERM"));
        let mut ro = server.conn_proto(2);
        ro.ok(&["AUTH", "ro", "x"]);
        let r = ro.cmd(&["TRACKINFO.LIST"]);
        assert!(
            denied(&r),
            "TRACKINFO.LIST for +@read +@connection on {d}: {r}"
        );
        let mut app = server.conn_proto(2);
        app.ok(&["AUTH", "app", "x"]);
        let r = app.cmd(&["TRACKINFO.LIST", "MODE", "bcast"]);
        let clients = app.cmd(&["TRACKINFO.CLIENTS"]);
        assert_eq!(
            denied(&r),
            denied(&clients),
            "LIST {r} and CLIENTS {clients} on {d}"
        );
        // On every server: on 7.2+ by category, on 7.0 (no categories for modules) because the
        // server denies this user CLIENT LIST (issue 11).
        assert!(denied(&app.cmd(&["CLIENT", "LIST"])), "{d}");
        assert!(denied(&r), "-@admin on {d}: {r}");
        assert!(admin.cmd(&["TRACKINFO.LIST"]).text().is_some(), "{d}");
    });
}
