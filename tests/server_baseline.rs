//! The server facts the other tests rely on, checked without the module: if one of these fails,
//! the server changed, not the module.

mod common;

use common::mirror::{truth, Fields};
use common::{servers, Conn, Resp, Server};

fn each_server(mut f: impl FnMut(&Server)) {
    for bin in servers() {
        let server = Server::start(&bin, None);
        f(&server);
    }
}

fn raw_trackinginfo(conn: &mut Conn) -> Vec<u8> {
    conn.cmd_raw(&["CLIENT", "TRACKINGINFO"]).1
}

#[test]
fn trackinginfo_is_encoded_as_documented_in_resp2_and_resp3() {
    each_server(|server| {
        let mut off2 = server.conn();
        assert_eq!(
            raw_trackinginfo(&mut off2),
            b"*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"
        );
        for proto in [2u8, 3] {
            let mut c = server.conn_proto(proto);
            c.ok(&[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b", "PREFIX", "a", "NOLOOP",
            ]);
            let body = b"$5\r\nflags\r\n*3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n";
            let mut expected = if proto == 3 {
                b"%3\r\n".to_vec()
            } else {
                b"*6\r\n".to_vec()
            };
            let mut body = body.to_vec();
            if proto == 3 {
                // flags is a set in RESP3
                body[11] = b'~';
            }
            expected.extend_from_slice(&body);
            assert_eq!(
                common::escape(&raw_trackinginfo(&mut c)),
                common::escape(&expected),
                "RESP{proto}"
            );
        }
    });
}

#[test]
fn overlapping_new_prefixes_after_the_first_answer_an_error_then_ok() {
    each_server(|server| {
        let mut c = server.conn();
        c.send(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b", "PREFIX", "bc",
        ]);
        let first = c.read_reply();
        assert!(
            first
                .text()
                .unwrap_or_default()
                .starts_with("ERR Prefix 'b' overlaps with another provided prefix 'bc'"),
            "{first}"
        );
        assert!(c.read_reply().is_ok());
        let t = truth(&mut c);
        assert_eq!(
            t.prefixes,
            vec![b"a".to_vec(), b"b".to_vec(), b"bc".to_vec()]
        );

        // With the collision at the first new prefix there is only the error.
        let mut d = server.conn();
        let r = d.cmd(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab",
        ]);
        assert!(r.is_error(), "{r}");
        assert_eq!(d.cmd(&["PING"]), Resp::Simple(b"PONG".to_vec()));
        assert_eq!(truth(&mut d).flags, vec!["off"]);
    });
}

#[test]
fn caching_survives_client_subcommands_and_multi_but_not_other_commands() {
    each_server(|server| {
        let mut c = server.conn();
        c.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        c.ok(&["CLIENT", "CACHING", "yes"]);
        c.client_id();
        assert_eq!(truth(&mut c).flags, vec!["on", "optin", "caching-yes"]);
        c.ok(&["MULTI"]);
        assert_eq!(c.cmd(&["GET", "k"]), Resp::Simple(b"QUEUED".to_vec()));
        let (_, raw) = c.cmd_raw(&["CLIENT", "TRACKINGINFO"]);
        assert_eq!(raw, b"+QUEUED\r\n");
        let (exec, exec_raw) = c.cmd_raw(&["EXEC"]);
        assert_eq!(exec.items().map(<[Resp]>::len), Some(2), "{exec}");
        let (_, items) = common::resp::split_raw(&exec_raw).unwrap();
        let inside = Fields::parse_truth(items[1], 2).unwrap();
        assert_eq!(inside.flags, vec!["on", "optin", "caching-yes"]);
        assert_eq!(truth(&mut c).flags, vec!["on", "optin"]);
        c.ok(&["CLIENT", "CACHING", "yes"]);
        c.cmd(&["PING"]);
        assert_eq!(truth(&mut c).flags, vec!["on", "optin"]);
    });
}

#[test]
fn broken_redirect_appears_only_when_an_invalidation_is_attempted() {
    each_server(|server| {
        let mut target = server.conn();
        let target_id = target.client_id();
        let mut source = server.conn_proto(3);
        let mut observer = server.conn();
        source.ok(&[
            "CLIENT",
            "TRACKING",
            "ON",
            "REDIRECT",
            &target_id.to_string(),
        ]);
        source.cmd(&["GET", "k"]);
        drop(target);
        server.wait_client_gone(&mut observer, target_id);
        assert_eq!(truth(&mut source).flags, vec!["on"]);
        observer.ok(&["SET", "k", "v"]);
        let t = truth(&mut source);
        assert_eq!(t.flags, vec!["on", "broken_redirect"]);
        assert_eq!(t.redirect, target_id);
        assert!(
            source.pushes.iter().any(|p| matches!(p.items(),
                Some([Resp::Bulk(kind), Resp::Int(id)]) if kind == b"tracking-redir-broken" && *id == target_id)),
            "RESP3 source got no tracking-redir-broken push: {:?}",
            source.pushes
        );
    });
}
