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
