//! TRACKINFO.STATS and INFO trackinfo: server-wide figures, checked against the server's own.

mod common;

use std::collections::BTreeMap;

use common::{for_each_server, int_of, trackinfo_stats, Conn, Resp};

/// INFO fields as name -> text.
fn info(obs: &mut Conn, section: &str) -> BTreeMap<String, String> {
    let text = obs.cmd(&["INFO", section]).text().unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn stats_count_clients_by_mode_delivery_and_redirect() {
    for_each_server(|server| {
        let mut obs = server.conn_proto(2);
        let mut target = server.conn_proto(3);
        let tid = target.client_id().to_string();
        let mut gone = server.conn_proto(3);
        let gone_id = gone.client_id();

        let mut plain = server.conn_proto(3); // default, self
        plain.ok(&["CLIENT", "TRACKING", "ON"]);
        let mut deaf = server.conn_proto(2); // default, dropped
        deaf.ok(&["CLIENT", "TRACKING", "ON"]);
        let mut optin = server.conn_proto(2); // optin, redirect
        optin.ok(&["CLIENT", "TRACKING", "ON", "OPTIN", "REDIRECT", &tid]);
        let mut optout = server.conn_proto(2); // optout, redirect
        optout.ok(&["CLIENT", "TRACKING", "ON", "OPTOUT", "REDIRECT", &tid]);
        let mut bcast = server.conn_proto(2); // bcast, redirect to a client that goes away
        bcast.ok(&[
            "CLIENT",
            "TRACKING",
            "ON",
            "BCAST",
            "REDIRECT",
            &gone_id.to_string(),
        ]);
        gone.send(&["QUIT"]);
        assert!(gone.wait_closed());
        server.wait_client_gone(&mut obs, gone_id);
        obs.cmd(&["SET", "stats:x", "1"]); // BCAST "" matches: the server marks it broken

        let s = trackinfo_stats(&mut obs);
        let d = server.describe();
        assert_eq!(int_of(&s, "tracking-clients"), 5, "on {d}: {s:?}");
        assert_eq!(
            int_of(&s, "tracking-clients"),
            int_of(&s, "server-tracking-clients")
        );
        if server.info.module_knows_sender() {
            for (m, n) in [("default", 2), ("optin", 1), ("optout", 1), ("bcast", 1)] {
                assert_eq!(int_of(&s, &format!("clients-{m}")), n, "{m} on {d}");
            }
        } else {
            assert_eq!(int_of(&s, "clients-bcast"), 1, "CLIENT LIST shows B");
            assert_eq!(int_of(&s, "clients-unknown-mode"), 4);
        }
        assert_eq!(
            int_of(&s, "clients-delivery-dropped"),
            2,
            "RESP2 self and gone target"
        );
        assert_eq!(int_of(&s, "clients-broken-redirect"), 1);
        assert_eq!(int_of(&s, "redirect-targets"), 2);
        let sources = s["redirect-target-sources"].items().unwrap().to_vec();
        assert_eq!(
            sources,
            [
                Resp::Int(tid.parse().unwrap()),
                Resp::Int(2),
                Resp::Int(gone_id),
                Resp::Int(1)
            ]
        );
        assert!(int_of(&s, "memory-bytes") > 0);

        let i = info(&mut obs, "trackinfo");
        assert_eq!(i["trackinfo_tracking_clients"], "5");
        assert_eq!(i["trackinfo_clients_delivery_dropped"], "2");
        assert_eq!(
            i["trackinfo_server_tracking_clients"],
            info(&mut obs, "clients")["tracking_clients"]
        );
    });
}

#[test]
fn stats_mirror_the_servers_tracking_table_and_its_unreclaimed_items() {
    for_each_server(|server| {
        let mut obs = server.conn_proto(2);
        let mut a = server.conn_proto(3);
        a.ok(&["CLIENT", "TRACKING", "ON"]);
        a.cmd(&["MGET", "stats:1", "stats:2", "stats:3"]);
        let mut b = server.conn_proto(3);
        let bid = b.client_id();
        b.ok(&["CLIENT", "TRACKING", "ON"]);
        b.cmd(&["MGET", "stats:2", "stats:4"]);
        let s = trackinfo_stats(&mut obs);
        let d = server.describe();
        assert_eq!(
            int_of(&s, "server-tracking-total-items"),
            5,
            "the server's own count on {d}"
        );
        if !server.info.module_knows_sender() {
            assert_eq!(int_of(&s, "keys"), -1, "Redis 7.0 cannot know");
            assert_eq!(int_of(&s, "items"), -1);
            return;
        }
        assert_eq!(
            int_of(&s, "keys"),
            int_of(&s, "server-tracking-total-keys"),
            "{d}"
        );
        assert_eq!(
            int_of(&s, "items"),
            int_of(&s, "server-tracking-total-items")
        );
        assert_eq!(int_of(&s, "unreclaimed-items"), 0);
        let top = s["top-keys"].items().unwrap().to_vec();
        assert_eq!(
            top[0],
            Resp::Array(vec![Resp::Bulk(b"stats:2".to_vec()), Resp::Int(2)])
        );
        // b goes away: the server keeps its two items until the keys change.
        b.send(&["QUIT"]);
        assert!(b.wait_closed());
        server.wait_client_gone(&mut obs, bid);
        let s = trackinfo_stats(&mut obs);
        assert_eq!(int_of(&s, "server-tracking-total-items"), 5);
        assert_eq!(int_of(&s, "unreclaimed-items"), 2, "{d}");
        obs.cmd(&["DEL", "stats:4"]); // never created: nothing changes
        obs.cmd(&["SET", "stats:4", "v"]);
        let s = trackinfo_stats(&mut obs);
        assert_eq!(int_of(&s, "unreclaimed-items"), 1);
        assert_eq!(
            int_of(&s, "items"),
            int_of(&s, "server-tracking-total-items")
        );
    });
}

/// The `counters` field of a TRACKINFO.CLIENT reply read over RESP2.
fn counters_of(r: &Resp) -> String {
    let items = r.items().unwrap_or_else(|| panic!("TRACKINFO.CLIENT: {r}"));
    items
        .chunks(2)
        .find(|kv| kv[0].text().as_deref() == Some("counters"))
        .and_then(|kv| kv[1].text())
        .unwrap_or_else(|| panic!("no counters in {r}"))
}

/// The server evicts from its tracking table past `tracking-table-max-keys` at the next command,
/// where the module cannot see it. A query checks the module's table against the server's
/// totals; the check is reused within an event-loop cycle only while nothing can have changed,
/// so even a query pipelined right behind the CONFIG SET that causes the eviction says
/// `approximate`.
#[test]
fn the_servers_own_evictions_make_counters_approximate_even_in_the_same_cycle() {
    for_each_server(|server| {
        if !server.info.module_knows_sender() {
            return; // Redis 7.0: no counters (-1, approximate) to begin with
        }
        let d = server.describe();
        let mut obs = server.conn_proto(2);
        let mut a = server.conn_proto(3);
        let id = a.client_id().to_string();
        a.ok(&["CLIENT", "TRACKING", "ON"]);
        a.cmd(&["MGET", "ev:1", "ev:2", "ev:3"]);
        let r = obs.cmd(&["TRACKINFO.CLIENT", &id]);
        assert_eq!(counters_of(&r), "exact", "before the limit on {d}: {r}");
        // One write, one event-loop cycle: a query (the check is made, and kept), the limit,
        // then a query after the server evicted.
        obs.send_pipeline(&[
            &["TRACKINFO.CLIENT", &id],
            &["CONFIG", "SET", "tracking-table-max-keys", "1"],
            &["TRACKINFO.CLIENT", &id],
        ]);
        let first = obs.read_reply();
        assert!(obs.read_reply().is_ok(), "CONFIG SET on {d}");
        let after = obs.read_reply();
        assert_eq!(counters_of(&first), "exact", "{d}: {first}");
        assert_eq!(
            info(&mut obs, "stats")["tracking_total_keys"],
            "1",
            "the server evicted down to its limit on {d}"
        );
        assert_eq!(counters_of(&after), "approximate", "{d}: {after}");
    });
}
