//! ACL: TRACKINFO.GET is a @connection command; the commands that reveal other connections are
//! @admin @dangerous where the server lets modules set categories (7.2+), and on every server
//! they are NOPERM wherever the server would deny the caller CLIENT LIST (issue 11). On Redis
//! 7.0 modules cannot set categories: the README's recipe grants TRACKINFO.GET by name.

mod common;

use common::{for_each_server, Conn, Resp, Server};

fn denied(r: &Resp) -> bool {
    matches!(r, Resp::Error(e) if e.starts_with(b"NOPERM"))
}

/// The views of other connections, with arguments naming `id` where they take one.
fn views(id: &str) -> Vec<Vec<String>> {
    [
        vec!["TRACKINFO.CLIENT", id],
        vec!["TRACKINFO.CLIENTS"],
        vec!["TRACKINFO.LIST"],
        vec!["TRACKINFO.LIST", "ID", id],
        vec!["TRACKINFO.KEYS", id],
        vec!["TRACKINFO.KEYS", id, "COUNT", "0"],
        vec!["TRACKINFO.STATS"],
    ]
    .iter()
    .map(|v| v.iter().map(|s| s.to_string()).collect())
    .collect()
}

/// The users of issue 11, each made with a recipe operators use, by name and ACL rules.
const USERS: [(&str, &[&str]); 5] = [
    ("readonly", &["+@all", "-@write", "~*"]),
    ("nodanger", &["+@all", "-@dangerous"]),
    ("noadmin", &["+@all", "-@admin"]),
    ("noclientlist", &["+@all", "-client|list", "-client|info"]),
    ("connonly", &["-@all", "+@connection"]),
];

/// The README's recipe for Redis 7.0, where module commands are in no category. It names a
/// module command, so MODULE UNLOAD is refused while it exists (tests/unload.rs).
const RECIPE_70: (&str, &[&str]) = ("recipe70", &["-@all", "+@connection", "+trackinfo.get"]);

/// An admin connection, a named tracking connection that read a key, and its id; the users of
/// [`USERS`] made.
fn setup(server: &Server) -> (Conn, Conn, String) {
    let mut admin = server.conn_proto(2);
    let mut tracker = server.conn_proto(3);
    tracker.ok(&["CLIENT", "TRACKING", "ON"]);
    tracker.ok(&["CLIENT", "SETNAME", "private-name"]);
    admin.ok(&["SET", "private:key", "v"]);
    assert!(!tracker.cmd(&["GET", "private:key"]).is_error());
    let id = tracker.client_id().to_string();
    make_users(&mut admin);
    (admin, tracker, id)
}

fn make_users(admin: &mut Conn) {
    for (name, rules) in USERS {
        let mut args = vec!["ACL", "SETUSER", name, "reset", "on", "nopass"];
        args.extend_from_slice(rules);
        admin.ok(&args);
    }
}

fn login(server: &Server, user: &str, proto: u8) -> Conn {
    let mut c = server.conn_proto(proto);
    c.ok(&["AUTH", user, "x"]);
    c
}

/// The server's own NOPERM for `command` run by this connection's user, in the words it uses
/// for the denied command `probe` (which it must deny).
fn servers_noperm(c: &mut Conn, probe: &[&str], probe_name: &str, command: &str) -> Vec<u8> {
    let r = c.cmd(probe);
    assert!(denied(&r), "{probe:?} should be denied: {r}");
    let text = r.text().unwrap_or_default();
    let needle = format!("'{probe_name}'");
    assert!(text.contains(&needle), "{text}");
    text.replace(&needle, &format!("'{command}'")).into_bytes()
}

/// The NOPERM text the command's page documents for this user on this server: its Errors row
/// gives the 7.2+ wording first, then Redis 7.0's.
fn documented_noperm(command: &str, user: &str, redis70: bool) -> Vec<u8> {
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/commands")
        .join(format!("{command}.md"));
    let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
    let row = text
        .lines()
        .find(|l| l.starts_with("| `NOPERM"))
        .unwrap_or_else(|| panic!("{page:?} documents no NOPERM error"));
    let quoted: Vec<&str> = row.split('`').skip(1).step_by(2).collect();
    let [named, unnamed, ..] = quoted[..] else {
        panic!("{page:?}: the NOPERM row gives two wordings: {row}");
    };
    let pick = if redis70 { unnamed } else { named };
    pick.replace("<user>", user).into_bytes()
}

/// The newest ACL LOG entry as name -> text pairs.
fn newest_acl_log_entry(admin: &mut Conn) -> Vec<(String, String)> {
    let r = admin.cmd(&["ACL", "LOG", "1"]);
    let entries = r.items().unwrap_or_else(|| panic!("ACL LOG: {r}"));
    let Some(Resp::Array(fields)) = entries.first() else {
        panic!("ACL LOG has no entry: {r}");
    };
    fields
        .chunks(2)
        .map(|kv| {
            let v = kv[1]
                .text()
                .or_else(|| kv[1].int().map(|i| i.to_string()))
                .unwrap_or_default();
            (kv[0].text().unwrap_or_default(), v)
        })
        .collect()
}

fn field<'a>(entry: &'a [(String, String)], name: &str) -> &'a str {
    entry
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn every_view_is_noperm_wherever_the_server_denies_client_list() {
    for_each_server(|server| {
        let d = server.describe();
        let (mut admin, _tracker, id) = setup(server);
        let mut recipe = vec!["ACL", "SETUSER", RECIPE_70.0, "reset", "on", "nopass"];
        recipe.extend_from_slice(RECIPE_70.1);
        admin.ok(&recipe);
        let mut checked = (0, 0);
        for proto in [2u8, 3] {
            for &(user, rules) in USERS.iter().chain([&RECIPE_70]) {
                let mut u = login(server, user, proto);
                // Its own connection stays open to every user the server lets run
                // TRACKINFO.GET: all of them but a bare @connection user on 7.0.
                let r = u.cmd(&["TRACKINFO.GET"]);
                let get_denied = user == "connonly" && server.info.is_redis70();
                assert_eq!(denied(&r), get_denied, "GET as {user} on {d}: {r}");
                let client_list = u.cmd(&["CLIENT", "LIST"]);
                for view in views(&id) {
                    let name = view[0].to_ascii_lowercase();
                    admin.ok(&["ACL", "LOG", "RESET"]);
                    let r = u.cmd(&view);
                    let what = format!("{view:?} as {user} ({rules:?}), RESP{proto} on {d}");
                    // A @connection-only user may run CLIENT LIST (it is in @connection), but
                    // the views are not in @connection: the server denies them by category on
                    // 7.2+, and on 7.0 module commands are in no category at all.
                    let server_denies_view = user == "connonly" || user == "recipe70";
                    if !denied(&client_list) && !server_denies_view {
                        assert!(!denied(&r), "{what} must be allowed like CLIENT LIST: {r}");
                        checked.1 += 1;
                        continue;
                    }
                    // The denial is in ACL LOG as a denied command of this user.
                    let entry = newest_acl_log_entry(&mut admin);
                    assert_eq!(field(&entry, "reason"), "command", "{what}: {entry:?}");
                    assert_eq!(field(&entry, "object"), name, "{what}: {entry:?}");
                    assert_eq!(field(&entry, "username"), user, "{what}: {entry:?}");
                    // Worded as the server words a denied command, and nothing else: not
                    // whether the client exists, nor anything of it.
                    let want = if denied(&client_list) {
                        servers_noperm(&mut u, &["CLIENT", "LIST"], "client|list", &name)
                    } else {
                        servers_noperm(&mut u, &["GET", "k"], "get", &name)
                    };
                    assert_eq!(r, Resp::Error(want), "{what}");
                    let documented = documented_noperm(&name, user, server.info.is_redis70());
                    assert_eq!(r, Resp::Error(documented), "{what}: the page's Errors row");
                    checked.0 += 1;
                }
            }
        }
        println!("{d}: {} denials checked, {} allowed", checked.0, checked.1);
        // Five of the six users are denied the views, in both protocols.
        assert_eq!(
            checked,
            (2 * 5 * views(&id).len(), 2 * views(&id).len()),
            "{d}"
        );
        let r = admin.cmd(&["TRACKINFO.CLIENT", &id]);
        assert!(
            r.items().is_some(),
            "the default user sees the tracker on {d}: {r}"
        );
    });
}

#[test]
fn a_denied_caller_learns_nothing_of_other_connections_from_the_error() {
    for_each_server(|server| {
        let d = server.describe();
        let (_admin, _tracker, id) = setup(server);
        let mut u = login(server, "noclientlist", 2);
        // A live tracking client, a client that does not exist, and arguments that are wrong:
        // the same error for each, so the error says nothing about who is connected.
        let id = id.as_str();
        for args in [
            vec!["TRACKINFO.CLIENT", id],
            vec!["TRACKINFO.CLIENT", "987654"],
            vec!["TRACKINFO.CLIENT", "not-a-number"],
            vec!["TRACKINFO.KEYS", id],
            vec!["TRACKINFO.KEYS", "987654"],
            vec!["TRACKINFO.KEYS", id, "COUNT", "-1"],
            vec!["TRACKINFO.KEYS", id, "BOGUS"],
            vec!["TRACKINFO.LIST", "ID", id],
            vec!["TRACKINFO.LIST", "ID", "987654"],
            vec!["TRACKINFO.LIST", "MODE", "bogus"],
            vec!["TRACKINFO.LIST", "BOGUS"],
        ] {
            let r = u.cmd(&args);
            let name = args[0].to_ascii_lowercase();
            let want = servers_noperm(&mut u, &["CLIENT", "LIST"], "client|list", &name);
            assert_eq!(r, Resp::Error(want), "{args:?} on {d}");
        }
        // Inside a transaction too: the denial is the view's reply in EXEC's array.
        u.ok(&["MULTI"]);
        assert_eq!(
            u.cmd(&["TRACKINFO.CLIENTS"]),
            Resp::Simple(b"QUEUED".to_vec())
        );
        let r = u.cmd(&["EXEC"]);
        let want = servers_noperm(
            &mut u,
            &["CLIENT", "LIST"],
            "client|list",
            "trackinfo.clients",
        );
        assert_eq!(r, Resp::Array(vec![Resp::Error(want)]), "EXEC on {d}");
        // The wrong number of arguments is still checked first, as the server checks it
        // before any ACL rule.
        let r = u.cmd(&["TRACKINFO.CLIENTS", "extra"]);
        assert!(
            matches!(&r, Resp::Error(e) if e.starts_with(b"ERR wrong number of arguments")),
            "{d}: {r}"
        );
    });
}

#[test]
fn module_unload_works_with_these_users_defined() {
    for_each_server(|server| {
        let d = server.describe();
        let mut admin = server.conn_proto(2);
        make_users(&mut admin);
        // Each user has run a view, and all but `readonly` were denied it: ACL LOG holds
        // entries naming them.
        for (user, _) in USERS {
            let mut u = login(server, user, 2);
            let r = u.cmd(&["TRACKINFO.STATS"]);
            assert_eq!(denied(&r), user != "readonly", "{user} on {d}: {r}");
        }
        let r = admin.cmd(&["MODULE", "UNLOAD", "trackinfo"]);
        assert!(r.is_ok(), "MODULE UNLOAD with issue 11's users on {d}: {r}");
        assert_eq!(admin.cmd(&["PING"]), Resp::Simple(b"PONG".to_vec()), "{d}");
        // The users are intact and work as before.
        for (user, _) in USERS {
            let mut u = login(server, user, 2);
            assert_eq!(
                u.cmd(&["PING"]),
                Resp::Simple(b"PONG".to_vec()),
                "{user} on {d}"
            );
        }
        let log = admin.cmd(&["ACL", "LOG"]);
        assert!(log.items().is_some_and(|e| !e.is_empty()), "{d}: {log}");
        let r = admin.cmd(&["MODULE", "LOAD", &common::module_path().to_string_lossy()]);
        assert!(r.is_ok(), "MODULE LOAD again on {d}: {r}");
        let mut u = login(server, "noclientlist", 2);
        assert!(
            denied(&u.cmd(&["TRACKINFO.CLIENTS"])),
            "after reload on {d}"
        );
    });
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
