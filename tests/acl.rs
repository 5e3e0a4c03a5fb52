//! ACL: TRACKINFO.GET is a @connection command; the commands that reveal other connections are
//! @admin @dangerous. On Redis 7.0 modules cannot set categories: the README's recipe grants
//! TRACKINFO.GET by name.

mod common;

use common::{for_each_server, Resp};

fn denied(r: &Resp) -> bool {
    matches!(r, Resp::Error(e) if e.starts_with(b"NOPERM"))
}

#[test]
fn a_connection_only_user_may_read_its_own_state_and_nothing_else() {
    for_each_server(|server| {
        let mut admin = server.conn_proto(2);
        let mut u = server.conn_proto(2);
        let d = server.describe();
        if server.info.module_knows_sender() {
            admin.ok(&[
                "ACL",
                "SETUSER",
                "conn",
                "on",
                "nopass",
                "-@all",
                "+@connection",
            ]);
        } else {
            // Redis 7.0: the recipe from the README.
            admin.ok(&[
                "ACL",
                "SETUSER",
                "conn",
                "on",
                "nopass",
                "-@all",
                "+@connection",
                "+trackinfo.get",
            ]);
        }
        u.ok(&["AUTH", "conn", "x"]);
        let r = u.cmd(&["TRACKINFO.GET"]);
        assert!(
            r.items().is_some(),
            "TRACKINFO.GET for a @connection user on {d}: {r}"
        );
        let id = admin.client_id().to_string();
        for cmd in [
            vec!["TRACKINFO.CLIENT", id.as_str()],
            vec!["TRACKINFO.CLIENTS"],
            vec!["TRACKINFO.LIST"],
            vec!["TRACKINFO.LIST", "ID", id.as_str()],
            vec!["TRACKINFO.KEYS", id.as_str()],
            vec!["TRACKINFO.STATS"],
        ] {
            let r = u.cmd(&cmd);
            assert!(denied(&r), "{cmd:?} must be NOPERM on {d}: {r}");
        }
    });
}

#[test]
fn on_redis_7_0_connection_alone_does_not_grant_trackinfo_get() {
    for_each_server(|server| {
        if server.info.module_knows_sender() {
            return;
        }
        let mut admin = server.conn_proto(2);
        admin.ok(&[
            "ACL",
            "SETUSER",
            "bare",
            "on",
            "nopass",
            "-@all",
            "+@connection",
        ]);
        let mut u = server.conn_proto(2);
        u.ok(&["AUTH", "bare", "x"]);
        let r = u.cmd(&["TRACKINFO.GET"]);
        assert!(
            denied(&r),
            "7.0 sets no categories, so the README's recipe is needed: {r}"
        );
    });
}

/// The keys in a `TRACKINFO.KEYS` reply, or in the `top-keys` of a `TRACKINFO.STATS` reply.
fn key_names(r: &Resp) -> Vec<String> {
    r.items()
        .unwrap_or_else(|| panic!("expected an array of keys: {r}"))
        .iter()
        .map(|k| match k {
            Resp::Array(pair) => pair[0].text().unwrap_or_default(),
            k => k.text().unwrap_or_default(),
        })
        .collect()
}

fn top_keys(r: &Resp) -> Vec<String> {
    let items = r.items().unwrap_or_else(|| panic!("STATS: {r}"));
    let mut it = items.iter();
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("STATS odd length: {r}"));
        if k.text().as_deref() == Some("top-keys") {
            return key_names(v);
        }
    }
    panic!("STATS has no top-keys: {r}")
}

#[test]
fn trackinfo_keys_lists_only_keys_the_callers_key_patterns_let_it_read() {
    for_each_server(|server| {
        let d = server.describe();
        let mut admin = server.conn_proto(2);
        let mut tracker = server.conn_proto(3);
        tracker.ok(&["CLIENT", "TRACKING", "ON"]);
        let id = tracker.client_id().to_string();
        for key in ["app:1", "app:2", "other:1", "secret:1"] {
            admin.ok(&["SET", key, "v"]);
            assert!(!tracker.cmd(&["GET", key]).is_error());
        }
        // app:* readable; secret:* write-only (%W~); other:* not at all.
        admin.ok(&[
            "ACL",
            "SETUSER",
            "apps",
            "on",
            "nopass",
            "+@all",
            "~app:*",
            "%W~secret:*",
        ]);
        admin.ok(&[
            "ACL",
            "SETUSER",
            "nokeys",
            "on",
            "nopass",
            "+@all",
            "resetkeys",
        ]);
        let mut apps = server.conn_proto(2);
        apps.ok(&["AUTH", "apps", "x"]);
        let mut nokeys = server.conn_proto(2);
        nokeys.ok(&["AUTH", "nokeys", "x"]);
        // The server's own check, which the module must agree with.
        assert!(!apps.cmd(&["GET", "app:1"]).is_error(), "{d}");
        assert!(apps.cmd(&["GET", "secret:1"]).is_error(), "{d}");
        assert!(apps.cmd(&["GET", "other:1"]).is_error(), "{d}");

        if !server.info.module_knows_sender() {
            // Redis 7.0: the module cannot place reads, so it lists no keys for anyone.
            let r = apps.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "0"]);
            assert!(r.is_error(), "7.0 lists no keys on {d}: {r}");
            return;
        }
        let all = key_names(&admin.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "0"]));
        assert_eq!(all, ["app:1", "app:2", "other:1", "secret:1"], "{d}");
        let seen = key_names(&apps.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "0"]));
        assert_eq!(seen, ["app:1", "app:2"], "{d}");
        // COUNT applies to the keys the caller may see.
        let one = key_names(&apps.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "1"]));
        assert_eq!(one, ["app:1"], "{d}");
        let none = key_names(&nokeys.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "0"]));
        assert!(none.is_empty(), "{d}: {none:?}");

        let mut top = top_keys(&apps.cmd(&["TRACKINFO.STATS"]));
        top.sort();
        assert_eq!(top, ["app:1", "app:2"], "STATS top-keys on {d}");
        assert!(
            top_keys(&nokeys.cmd(&["TRACKINFO.STATS"])).is_empty(),
            "{d}"
        );
        let mut top = top_keys(&admin.cmd(&["TRACKINFO.STATS"]));
        top.sort();
        assert_eq!(top, ["app:1", "app:2", "other:1", "secret:1"], "{d}");
    });
}
