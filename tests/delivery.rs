//! `resp` and `delivery` must say where invalidation messages really go: checked with real
//! receivers on every server.

mod common;

use common::{for_each_server, Conn, Resp, Server};

/// The value of `name` in TRACKINFO.CLIENT <id>, read over RESP2 (a flat name/value array).
fn field(obs: &mut Conn, id: i64, name: &str) -> Resp {
    let r = obs.cmd(&["TRACKINFO.CLIENT", &id.to_string()]);
    let items = r
        .items()
        .unwrap_or_else(|| panic!("TRACKINFO.CLIENT {id}: {r}"));
    items
        .chunks(2)
        .find(|kv| kv[0] == Resp::Bulk(name.as_bytes().to_vec()))
        .map(|kv| kv[1].clone())
        .unwrap_or_else(|| panic!("no `{name}` in {r}"))
}

fn delivery(obs: &mut Conn, id: i64) -> String {
    field(obs, id, "delivery").text().unwrap_or_default()
}

/// Invalidation messages that reached `c`: a PING is answered after anything already queued
/// for it, so everything that arrives before the PONG was sent before.
fn invalidations(c: &mut Conn) -> usize {
    c.send(&["PING"]);
    let mut n = 0;
    loop {
        let (frame, _) = c.try_read_frame().unwrap_or_else(|e| panic!("{e}"));
        let text = format!("{frame}");
        if text.contains("invalidate") {
            n += 1;
        } else if text.to_ascii_lowercase().contains("pong") {
            return n;
        }
    }
}

struct Case {
    name: &'static str,
    source: Conn,
    source_id: i64,
    /// Where the messages would arrive; `None`: on the source connection itself.
    receiver: Option<Conn>,
    expect: &'static str,
    expect_resp: i64,
}

fn cases(server: &Server) -> Vec<Case> {
    let mut out = Vec::new();
    let conn = |proto| {
        let mut c = server.conn_proto(proto);
        let id = c.client_id();
        (c, id)
    };

    let (mut s, sid) = conn(3);
    s.ok(&["CLIENT", "TRACKING", "ON"]);
    out.push(Case {
        name: "RESP3 without redirect pushes to itself",
        source: s,
        source_id: sid,
        receiver: None,
        expect: "self",
        expect_resp: 3,
    });

    let (mut s, sid) = conn(2);
    s.ok(&["CLIENT", "TRACKING", "ON"]);
    out.push(Case {
        name: "RESP2 without redirect is dropped",
        source: s,
        source_id: sid,
        receiver: None,
        expect: "dropped",
        expect_resp: 2,
    });

    let (t, tid) = conn(3);
    let (mut s, sid) = conn(2);
    s.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &tid.to_string()]);
    out.push(Case {
        name: "redirect to a RESP3 target",
        source: s,
        source_id: sid,
        receiver: Some(t),
        expect: "redirect",
        expect_resp: 2,
    });

    let (mut t, tid) = conn(2);
    t.send(&["SUBSCRIBE", "some-channel"]);
    t.read_reply();
    let (mut s, sid) = conn(3);
    s.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &tid.to_string()]);
    out.push(Case {
        name: "redirect to a subscribed RESP2 target",
        source: s,
        source_id: sid,
        receiver: Some(t),
        expect: "redirect",
        expect_resp: 3,
    });

    let (t, tid) = conn(2);
    let (mut s, sid) = conn(2);
    s.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &tid.to_string()]);
    out.push(Case {
        name: "redirect to an unsubscribed RESP2 target is dropped",
        source: s,
        source_id: sid,
        receiver: Some(t),
        expect: "dropped",
        expect_resp: 2,
    });
    out
}

#[test]
fn delivery_matches_where_invalidations_really_arrive() {
    for_each_server(|server| {
        let mut obs = server.conn_proto(2);
        let mut writer = server.conn_proto(2);
        for (i, mut c) in cases(server).into_iter().enumerate() {
            let key = format!("delivery:{i}");
            c.source.cmd(&["GET", &key]);
            let said = delivery(&mut obs, c.source_id);
            assert_eq!(said, c.expect, "{} on {}", c.name, server.describe());
            let resp = field(&mut obs, c.source_id, "resp");
            assert_eq!(resp, Resp::Int(c.expect_resp), "{}", c.name);
            writer.cmd(&["SET", &key, "v"]);
            let arrived = match c.receiver.as_mut() {
                Some(r) => invalidations(r),
                None => invalidations(&mut c.source),
            };
            let delivered = matches!(c.expect, "self" | "redirect");
            assert_eq!(
                arrived > 0,
                delivered,
                "{} on {}: delivery {said}, {arrived} invalidations arrived",
                c.name,
                server.describe()
            );
        }
    });
}

#[test]
fn a_vanished_redirect_target_drops_and_off_delivers_nothing() {
    for_each_server(|server| {
        let mut obs = server.conn_proto(2);
        let mut target = server.conn_proto(3);
        let tid = target.client_id();
        let mut source = server.conn_proto(2);
        let sid = source.client_id();
        assert_eq!(delivery(&mut obs, sid), "off");
        source.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &tid.to_string()]);
        assert_eq!(delivery(&mut obs, sid), "redirect");
        target.send(&["QUIT"]);
        assert!(target.wait_closed());
        server.wait_client_gone(&mut obs, tid);
        assert_eq!(
            delivery(&mut obs, sid),
            "dropped",
            "on {}",
            server.describe()
        );
        source.ok(&["CLIENT", "TRACKING", "OFF"]);
        assert_eq!(delivery(&mut obs, sid), "off");
    });
}

/// The module keeps each tracking client's protocol between queries (CLIENT LIST is costly at
/// 10,000 clients) until the client sends HELLO or RESET: a switch is seen by the next query,
/// and the server's own delivery agrees.
#[test]
fn a_protocol_switch_is_seen_by_the_next_query() {
    for_each_server(|server| {
        let d = server.describe();
        let mut obs = server.conn_proto(2);
        let mut w = server.conn_proto(2);
        let mut c = server.conn_proto(2);
        let id = c.client_id();
        c.ok(&["CLIENT", "TRACKING", "ON"]);
        assert_eq!(field(&mut obs, id, "resp"), Resp::Int(2), "{d}");
        assert_eq!(delivery(&mut obs, id), "dropped", "{d}");
        // Asked twice: the second answer comes from what the module kept.
        assert_eq!(delivery(&mut obs, id), "dropped", "{d}");
        c.hello(3);
        assert_eq!(
            field(&mut obs, id, "resp"),
            Resp::Int(3),
            "after HELLO 3 on {d}"
        );
        assert_eq!(delivery(&mut obs, id), "self", "{d}");
        c.cmd(&["GET", "proto:k"]);
        w.ok(&["SET", "proto:k", "1"]);
        assert_eq!(
            invalidations(&mut c),
            1,
            "a RESP3 client receives it on {d}"
        );
        c.cmd(&["HELLO", "2"]);
        c.proto = 2;
        assert_eq!(
            field(&mut obs, id, "resp"),
            Resp::Int(2),
            "after HELLO 2 on {d}"
        );
        assert_eq!(delivery(&mut obs, id), "dropped", "{d}");
        c.hello(3);
        assert_eq!(delivery(&mut obs, id), "self", "{d}");
        // RESET goes back to RESP2 and switches tracking off.
        c.cmd(&["RESET"]);
        c.proto = 2;
        assert_eq!(delivery(&mut obs, id), "off", "after RESET on {d}");
    });
}
