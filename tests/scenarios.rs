//! The CLIENT TRACKINGINFO cases of Redis's tests/unit/tracking.tcl, each checked through the
//! module: `TRACKINFO.GET` on the connection itself and `TRACKINFO.CLIENT <id>` from an observer
//! must match `CLIENT TRACKINGINFO` on that connection, in RESP2 and RESP3. On Redis 7.0 the
//! module may only claim what CLIENT LIST shows (`fidelity partial`), and that is what is checked.

mod common;

use common::mirror::{assert_client_mirror, assert_get_mirror, assert_mirrored, Expect, Fields};
use common::resp::split_raw;
use common::{for_each_server, for_each_server_and_protocol, Conn, Resp, Server};

/// A connection under test, its id, and an observer speaking the same protocol.
fn pair(server: &Server, proto: u8) -> (Conn, i64, Conn) {
    let mut a = server.conn_proto(proto);
    let id = a.client_id();
    (a, id, server.conn_proto(proto))
}

fn exact(server: &Server) -> Expect {
    Expect::for_client(&server.info, true)
}

fn assert_error(reply: &Resp, expected: &str) {
    assert_eq!(
        reply,
        &Resp::Error(expected.as_bytes().to_vec()),
        "expected -{expected}, got {reply}"
    );
}

fn assert_error_prefix(reply: &Resp, prefix: &str) {
    let ok = matches!(reply, Resp::Error(e) if e.starts_with(prefix.as_bytes()));
    assert!(
        ok,
        "expected an error starting with {prefix:?}, got {reply}"
    );
}

#[test]
fn tracking_off_is_mirrored_exactly() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        // Off is exact on every server, Redis 7.0 included.
        let t = assert_client_mirror(server, &mut a, id, &mut obs, Expect::Exact);
        assert_eq!((t.flags.clone(), t.redirect), (vec!["off".into()], -1));
        assert!(t.prefixes.is_empty());
        assert_get_mirror(server, &mut a, id, Expect::Exact);
    });
}

#[test]
fn tracking_on_is_mirrored() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        a.ok(&["CLIENT", "TRACKING", "ON"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!((t.flags, t.redirect), (vec!["on".into()], 0));
    });
}

#[test]
fn tracking_on_with_redirect_and_noloop_is_mirrored() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let mut target = server.conn();
        let target_id = target.client_id();
        a.ok(&[
            "CLIENT",
            "TRACKING",
            "on",
            "REDIRECT",
            &target_id.to_string(),
            "noloop",
        ]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(
            (t.flags, t.redirect),
            (vec!["on".into(), "noloop".into()], target_id)
        );
    });
}

#[test]
fn optin_and_caching_yes_are_mirrored() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let expect = exact(server);
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["on", "optin"]);
        a.ok(&["CLIENT", "CACHING", "yes"]);
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optin", "caching-yes"]);
        // TRACKINFO.GET still runs inside the window, and closes it.
        let t = assert_get_mirror(server, &mut a, id, expect);
        assert_eq!(t.flags, vec!["on", "optin", "caching-yes"]);
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optin"]);
    });
}

#[test]
fn optout_and_caching_no_are_mirrored() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let expect = exact(server);
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTOUT"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["on", "optout"]);
        a.ok(&["client", "caching", "NO"]);
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optout", "caching-no"]);
        let t = assert_get_mirror(server, &mut a, id, expect);
        assert_eq!(t.flags, vec!["on", "optout", "caching-no"]);
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optout"]);
    });
}

#[test]
fn bcast_prefixes_are_mirrored_in_byte_order_and_binary_safe() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let args: [&[u8]; 9] = [
            b"CLIENT",
            b"TRACKING",
            b"ON",
            b"BCAST",
            b"PREFIX",
            b"b",
            b"PREFIX",
            b"a",
            b"PREFIX",
        ];
        let mut args = args.to_vec();
        args.push(b"c\0z");
        a.ok(&args);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["on", "bcast"]);
        assert_eq!(
            t.prefixes,
            vec![b"a".to_vec(), b"b".to_vec(), b"c\0z".to_vec()]
        );
    });
}

#[test]
fn bcast_without_prefix_is_mirrored_as_one_empty_prefix() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        a.ok(&["CLIENT", "TRACKING", "ON", "BCAST"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.prefixes, vec![Vec::<u8>::new()]);
    });
}

#[test]
fn bcast_prefixes_accumulate_across_on_calls() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        a.ok(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"]);
        a.ok(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.prefixes, vec![b"a".to_vec(), b"b".to_vec()]);
        // BCAST without PREFIX adds "" with no overlap check.
        a.ok(&["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["on", "bcast", "noloop"]);
        assert_eq!(t.prefixes, vec![b"".to_vec(), b"a".to_vec(), b"b".to_vec()]);
    });
}

#[test]
fn overlapping_prefixes_are_mirrored_including_the_error_then_ok_quirk() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        // Collision between new prefixes at index 0: only an error, nothing changes.
        let r = a.cmd(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab",
        ]);
        assert_error_prefix(
            &r,
            "ERR Prefix 'a' overlaps with another provided prefix 'ab'",
        );
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["off"]);
        // Collision at index 1: the error, then +OK, and tracking is on with all prefixes.
        a.send(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "b", "PREFIX", "bc",
        ]);
        assert_error_prefix(
            &a.read_reply(),
            "ERR Prefix 'b' overlaps with another provided prefix 'bc'",
        );
        assert!(a.read_reply().is_ok());
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(
            t.prefixes,
            vec![b"a".to_vec(), b"b".to_vec(), b"bc".to_vec()]
        );
        // Collision with an existing prefix: only an error, nothing changes.
        let r = a.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "abc"]);
        assert_error_prefix(&r, "ERR Prefix 'abc' overlaps with an existing prefix 'a'");
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.prefixes.len(), 3);
    });
}

#[test]
fn broken_redirect_is_mirrored_only_after_an_invalidation_attempt() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let mut writer = server.conn();
        let mut target = server.conn();
        let target_id = target.client_id();
        a.ok(&[
            "CLIENT",
            "TRACKING",
            "ON",
            "REDIRECT",
            &target_id.to_string(),
        ]);
        a.cmd(&["GET", "broken:k"]);
        drop(target);
        server.wait_client_gone(&mut writer, target_id);
        // Nothing happens when the target leaves: no broken_redirect yet.
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!((t.flags, t.redirect), (vec!["on".into()], target_id));
        writer.ok(&["SET", "broken:k", "1"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(
            (t.flags, t.redirect),
            (vec!["on".into(), "broken_redirect".into()], target_id)
        );
        // A new ON clears it.
        a.ok(&["CLIENT", "TRACKING", "ON"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!((t.flags, t.redirect), (vec!["on".into()], 0));
    });
}

#[test]
fn broken_redirect_in_bcast_mode_is_mirrored() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let mut writer = server.conn();
        let mut target = server.conn();
        let target_id = target.client_id();
        let tid = target_id.to_string();
        a.ok(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "bc:", "REDIRECT", &tid,
        ]);
        drop(target);
        server.wait_client_gone(&mut writer, target_id);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["on", "bcast"]);
        writer.ok(&["SET", "bc:1", "1"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["on", "bcast", "broken_redirect"]);
    });
}

#[test]
fn caching_window_survives_client_subcommands_and_multi_then_ends() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let expect = exact(server);
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        a.ok(&["CLIENT", "CACHING", "YES"]);
        a.client_id();
        a.cmd(&["CLIENT", "GETREDIR"]);
        let before = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(before.flags, vec!["on", "optin", "caching-yes"]);

        // The window covers a whole MULTI…EXEC. A cannot read its own state while queuing, so
        // the observer's view is compared with the state read just before MULTI.
        a.ok(&["MULTI"]);
        assert_eq!(a.cmd(&["GET", "cw:k"]), Resp::Simple(b"QUEUED".to_vec()));
        let during = obs.cmd_raw(&["TRACKINFO.CLIENT", &id.to_string()]).1;
        if let Err(e) = common::mirror::compare(
            &before.raw,
            &during,
            proto,
            id,
            expect,
            server.started_ms - 1000,
        ) {
            panic!("while A is queuing in MULTI: {e}");
        }
        a.cmd(&["EXEC"]);
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optin"]);

        // Any non-CLIENT command ends it.
        a.ok(&["CLIENT", "CACHING", "YES"]);
        a.cmd(&["PING"]);
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optin"]);
    });
}

#[test]
fn caching_set_inside_multi_is_seen_by_trackinfo_get_inside_exec() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTOUT"]);
        a.ok(&["MULTI"]);
        for cmd in [
            &["CLIENT", "CACHING", "no"][..],
            &["GET", "cm:k"],
            &["CLIENT", "TRACKINGINFO"],
            &["TRACKINFO.GET"],
        ] {
            assert_eq!(a.cmd(cmd), Resp::Simple(b"QUEUED".to_vec()));
        }
        let (exec, raw) = a.cmd_raw(&["EXEC"]);
        assert_eq!(exec.items().map(<[Resp]>::len), Some(4), "EXEC: {exec}");
        let (_, items) = split_raw(&raw).unwrap();
        let truth = Fields::parse_truth(items[2], proto).unwrap();
        assert_eq!(truth.flags, vec!["on", "optout", "caching-no"]);
        if let Err(e) = common::mirror::compare(
            items[2],
            items[3],
            proto,
            id,
            exact(server),
            server.started_ms - 1000,
        ) {
            panic!("TRACKINFO.GET inside EXEC on {}:\n{e}", server.describe());
        }
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["on", "optout"]);
    });
}

#[test]
fn caching_set_by_the_last_queued_command_ends_with_exec() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let expect = exact(server);
        a.ok(&["MULTI"]);
        a.cmd(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        a.cmd(&["CLIENT", "CACHING", "yes"]);
        let exec = a.cmd(&["EXEC"]);
        assert_eq!(exec, Resp::Array(vec![Resp::Simple(b"OK".to_vec()); 2]));
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optin"]);

        a.ok(&["MULTI"]);
        a.cmd(&["CLIENT", "CACHING", "yes"]);
        a.cmd(&["EXEC"]);
        let t = assert_client_mirror(server, &mut a, id, &mut obs, expect);
        assert_eq!(t.flags, vec!["on", "optin"]);
    });
}

#[test]
fn repeated_on_replaces_options_and_off_clears_everything() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let obs_id = obs.client_id().to_string();
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN", "REDIRECT", &obs_id]);
        a.ok(&["CLIENT", "TRACKING", "ON", "NOLOOP"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(
            (t.flags, t.redirect),
            (vec!["on".into(), "noloop".into()], 0)
        );
        a.ok(&["CLIENT", "TRACKING", "OFF"]);
        a.ok(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x", "REDIRECT", &obs_id,
        ]);
        a.ok(&["CLIENT", "TRACKING", "OFF"]);
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!((t.flags, t.redirect), (vec!["off".into()], -1));
        assert!(t.prefixes.is_empty());
    });
}

#[test]
fn rejected_tracking_commands_change_nothing() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN", "NOLOOP"]);
        let rejected: [(&[&str], &str); 9] = [
            (&["CLIENT", "TRACKING", "ON", "PREFIX", "p"], "ERR PREFIX option requires BCAST mode to be enabled"),
            (&["CLIENT", "TRACKING", "ON", "BCAST"], "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."),
            (&["CLIENT", "TRACKING", "ON", "OPTOUT"], "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."),
            (&["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"], "ERR You can't specify both OPTIN mode and OPTOUT mode"),
            (&["CLIENT", "TRACKING", "OFF", "REDIRECT", "999999"], "ERR The client ID you want redirect to does not exist"),
            (&["CLIENT", "TRACKING", "ON", "REDIRECT", "x"], "ERR value is not an integer or out of range"),
            (&["CLIENT", "TRACKING", "MAYBE"], "ERR syntax error"),
            (&["CLIENT", "TRACKING", "ON", "PREFIX"], "ERR syntax error"),
            (&["CLIENT", "TRACKING"], "ERR wrong number of arguments for 'client|tracking' command"),
        ];
        for (cmd, error) in rejected {
            assert_error(&a.cmd(cmd), error);
            let t = assert_client_mirror(server, &mut a, id, &mut obs, exact(server));
            assert_eq!(t.flags, vec!["on", "optin", "noloop"], "after {cmd:?}");
        }
        assert_error(
            &a.cmd(&["CLIENT", "CACHING", "no"]),
            "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
        );
        assert_error(&a.cmd(&["CLIENT", "CACHING", "maybe"]), "ERR syntax error");
        assert_mirrored(server, &mut a, id, &mut obs);
    });
}

#[test]
fn tracking_changed_inside_exec_is_mirrored_and_discarded_or_aborted_multi_changes_nothing() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let mut other = server.conn();
        a.ok(&["MULTI"]);
        a.cmd(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        a.ok(&["DISCARD"]);
        assert_eq!(
            assert_mirrored(server, &mut a, id, &mut obs).flags,
            vec!["off"]
        );

        a.ok(&["MULTI"]);
        a.cmd(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        a.cmd(&["NO-SUCH-COMMAND"]);
        assert_error_prefix(&a.cmd(&["EXEC"]), "EXECABORT");
        assert_eq!(
            assert_mirrored(server, &mut a, id, &mut obs).flags,
            vec!["off"]
        );

        a.ok(&["WATCH", "mx:k"]);
        other.ok(&["SET", "mx:k", "1"]);
        a.ok(&["MULTI"]);
        a.cmd(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        let r = a.cmd(&["EXEC"]);
        assert!(
            matches!(r, Resp::NilArray | Resp::Null),
            "EXEC after WATCH: {r}"
        );
        assert_eq!(
            assert_mirrored(server, &mut a, id, &mut obs).flags,
            vec!["off"]
        );

        a.ok(&["MULTI"]);
        a.cmd(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        a.cmd(&["CLIENT", "TRACKING", "ON", "BCAST"]);
        let exec = a.cmd(&["EXEC"]);
        assert!(
            exec.items()
                .is_some_and(|i| i[0].is_ok() && i[1].is_error()),
            "{exec}"
        );
        assert_eq!(
            assert_mirrored(server, &mut a, id, &mut obs).flags,
            vec!["on", "optin"]
        );
    });
}

#[test]
fn client_calls_refused_inside_scripts_change_nothing_even_inside_exec() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        a.ok(&["CLIENT", "TRACKING", "ON", "NOLOOP"]);
        let scripts = [
            "return redis.pcall('client','caching','yes')",
            "return redis.pcall('client','tracking','on','optin')",
        ];
        for script in scripts {
            assert_error_prefix(
                &a.cmd(&["EVAL", script, "0"]),
                "ERR This Redis command is not allowed from script",
            );
            assert_eq!(
                assert_mirrored(server, &mut a, id, &mut obs).flags,
                vec!["on", "noloop"]
            );
        }
        for script in scripts {
            a.ok(&["MULTI"]);
            a.cmd(&["CLIENT", "TRACKING", "ON", "NOLOOP"]);
            a.cmd(&["EVAL", script, "0"]);
            let exec = a.cmd(&["EXEC"]);
            assert!(
                exec.items()
                    .is_some_and(|i| i[0].is_ok() && i[1].is_error()),
                "{exec}"
            );
            assert_eq!(
                assert_mirrored(server, &mut a, id, &mut obs).flags,
                vec!["on", "noloop"]
            );
        }
    });
}

#[test]
fn reset_turns_tracking_off() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, _) = pair(server, proto);
        a.ok(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "r"]);
        assert_eq!(a.cmd(&["RESET"]), Resp::Simple(b"RESET".to_vec()));
        // RESET also switches the connection back to RESP2.
        a.proto = 2;
        let mut obs2 = server.conn();
        let t = assert_mirrored(server, &mut a, id, &mut obs2);
        assert_eq!(t.flags, vec!["off"]);
    });
}

#[test]
fn acl_denied_tracking_commands_change_nothing() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        obs.ok(&[
            "ACL",
            "SETUSER",
            "limited",
            "on",
            "nopass",
            "~*",
            "&*",
            "+@all",
            "-client|tracking",
        ]);
        a.ok(&["AUTH", "limited", "x"]);
        assert_error_prefix(&a.cmd(&["CLIENT", "TRACKING", "ON", "OPTIN"]), "NOPERM");
        let t = assert_mirrored(server, &mut a, id, &mut obs);
        assert_eq!(t.flags, vec!["off"]);
        a.ok(&["MULTI"]);
        assert_error_prefix(&a.cmd(&["CLIENT", "TRACKING", "ON"]), "NOPERM");
        assert_error_prefix(&a.cmd(&["EXEC"]), "EXECABORT");
        assert_eq!(
            assert_mirrored(server, &mut a, id, &mut obs).flags,
            vec!["off"]
        );
        // Allowed again as the default user.
        a.ok(&["AUTH", "default", "x"]);
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        assert_eq!(
            assert_mirrored(server, &mut a, id, &mut obs).flags,
            vec!["on", "optin"]
        );
    });
}

#[test]
fn partial_fidelity_claims_only_what_client_list_shows() {
    for_each_server_and_protocol(|server, proto| {
        let (mut a, id, mut obs) = pair(server, proto);
        let obs_id = obs.client_id();
        a.ok(&[
            "CLIENT",
            "TRACKING",
            "ON",
            "OPTIN",
            "NOLOOP",
            "REDIRECT",
            &obs_id.to_string(),
        ]);
        a.ok(&["CLIENT", "CACHING", "yes"]);
        let (_, raw) = obs.cmd_raw(&["TRACKINFO.CLIENT", &id.to_string()]);
        let m = Fields::parse_mirror(&raw, proto).unwrap_or_else(|e| panic!("{e}"));
        if server.info.is_redis70() {
            assert_eq!(m.fidelity.as_deref(), Some("partial"), "{}", m.summary());
            assert_eq!(m.flags, vec!["on"], "{}", m.summary());
            assert_eq!(m.redirect, obs_id);
            assert!(m.prefixes.is_empty());
        } else {
            assert_eq!(m.fidelity.as_deref(), Some("exact"), "{}", m.summary());
            assert_eq!(m.flags, vec!["on", "optin", "caching-yes", "noloop"]);
        }
        let (mut b, b_id, _) = pair(server, proto);
        b.ok(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p1", "PREFIX", "p2", "NOLOOP",
        ]);
        let (_, raw) = obs.cmd_raw(&["TRACKINFO.CLIENT", &b_id.to_string()]);
        let m = Fields::parse_mirror(&raw, proto).unwrap_or_else(|e| panic!("{e}"));
        if server.info.is_redis70() {
            assert_eq!(m.fidelity.as_deref(), Some("partial"), "{}", m.summary());
            assert_eq!(m.flags, vec!["on", "bcast"], "{}", m.summary());
            assert!(m.prefixes.is_empty(), "{}", m.summary());
        } else {
            assert_eq!(m.fidelity.as_deref(), Some("exact"), "{}", m.summary());
            assert_eq!(m.prefixes, vec![b"p1".to_vec(), b"p2".to_vec()]);
        }
    });
}

/// `(id, raw bytes of the first six pairs)` of each entry of `TRACKINFO.CLIENTS`.
fn clients(obs: &mut Conn) -> Vec<(i64, Vec<u8>)> {
    let (reply, raw) = obs.cmd_raw(&["TRACKINFO.CLIENTS"]);
    assert_eq!(
        reply.marker(),
        '*',
        "TRACKINFO.CLIENTS must be an array: {reply}"
    );
    let (_, entries) = split_raw(&raw).unwrap();
    entries
        .into_iter()
        .map(|e| {
            let f = Fields::parse_mirror(e, obs.proto)
                .unwrap_or_else(|err| panic!("TRACKINFO.CLIENTS entry: {err}\n{reply}"));
            (f.id.unwrap(), f.children[..12].concat())
        })
        .collect()
}

fn first_six(obs: &mut Conn, id: i64) -> Vec<u8> {
    let (_, raw) = obs.cmd_raw(&["TRACKINFO.CLIENT", &id.to_string()]);
    let f = Fields::parse_mirror(&raw, obs.proto).unwrap_or_else(|e| panic!("{e}"));
    f.children[..12].concat()
}

#[test]
fn trackinfo_clients_lists_tracking_clients_in_id_order() {
    for_each_server_and_protocol(|server, proto| {
        let mut obs = server.conn_proto(proto);
        let mut conns: Vec<(Conn, i64)> = (0..4)
            .map(|i| {
                let mut c = server.conn_proto(if i % 2 == 0 { 2 } else { 3 });
                let id = c.client_id();
                (c, id)
            })
            .collect();
        assert!(clients(&mut obs).is_empty());
        // Switch on in an order that is not id order; conns[1] stays off.
        conns[3].0.ok(&["CLIENT", "TRACKING", "ON", "BCAST"]);
        conns[0].0.ok(&["CLIENT", "TRACKING", "ON", "OPTOUT"]);
        conns[2].0.ok(&["CLIENT", "TRACKING", "ON"]);
        let listed = clients(&mut obs);
        let ids: Vec<i64> = listed.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![conns[0].1, conns[2].1, conns[3].1]);
        for (id, entry) in &listed {
            assert_eq!(
                common::escape(entry),
                common::escape(&first_six(&mut obs, *id)),
                "TRACKINFO.CLIENTS entry for {id} differs from TRACKINFO.CLIENT {id}"
            );
        }
        conns[2].0.ok(&["CLIENT", "TRACKING", "OFF"]);
        conns[1].0.ok(&["CLIENT", "TRACKING", "ON", "NOLOOP"]);
        let ids: Vec<i64> = clients(&mut obs).iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![conns[0].1, conns[1].1, conns[3].1]);
        let (gone, gone_id) = conns.remove(0);
        drop(gone);
        server.wait_client_gone(&mut obs, gone_id);
        let ids: Vec<i64> = clients(&mut obs).iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![conns[0].1, conns[2].1]);
    });
}

/// The ids in CLIENT LIST order.
fn client_list_order(obs: &mut Conn) -> Vec<i64> {
    let text = obs.cmd(&["CLIENT", "LIST"]).text().unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn trackinfo_clients_stays_in_id_order_when_client_list_is_rotated() {
    for_each_server(|server| {
        let mut obs = server.conn();
        // With more than 5 clients, clientsCron visits 5 per tick and rotates the server's
        // client list, so CLIENT LIST stops being in id order within about 100 ms.
        let mut conns: Vec<(Conn, i64)> = (0..7)
            .map(|_| {
                let mut c = server.conn();
                let id = c.client_id();
                c.ok(&["CLIENT", "TRACKING", "ON"]);
                (c, id)
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let order = client_list_order(&mut obs);
            if !order.is_sorted() {
                println!("CLIENT LIST order: {order:?}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "CLIENT LIST stayed in id order: {order:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ids: Vec<i64> = clients(&mut obs).iter().map(|(id, _)| *id).collect();
        let expected: Vec<i64> = conns.iter_mut().map(|(_, id)| *id).collect();
        assert_eq!(ids, expected, "TRACKINFO.CLIENTS must be in id order");
    });
}

#[test]
fn trackinfo_client_rejects_bad_and_unknown_ids() {
    for_each_server(|server| {
        let mut c = server.conn();
        for bad in ["abc", "1.5", "", "12a", "99999999999999999999999"] {
            assert_error(
                &c.cmd(&["TRACKINFO.CLIENT", bad]),
                "ERR value is not an integer or out of range",
            );
        }
        for unknown in ["0", "999999"] {
            assert_error(&c.cmd(&["TRACKINFO.CLIENT", unknown]), "ERR No such client");
        }
    });
}

#[test]
fn trackinfo_commands_reject_wrong_arity() {
    for_each_server(|server| {
        let mut c = server.conn();
        let id = c.client_id().to_string();
        let cases: [(&[&str], &str); 4] = [
            (&["trackinfo.get", "x"], "trackinfo.get"),
            (&["trackinfo.client"], "trackinfo.client"),
            (&["trackinfo.client", &id, "x"], "trackinfo.client"),
            (&["trackinfo.clients", "x"], "trackinfo.clients"),
        ];
        for (cmd, name) in cases {
            assert_error(
                &c.cmd(cmd),
                &format!("ERR wrong number of arguments for '{name}' command"),
            );
        }
    });
}
