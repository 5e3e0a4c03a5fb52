//! TRACKINFO.KEYS lists exactly the keys whose writes invalidate the client.

mod common;

use common::{for_each_server, Resp};

fn texts(r: &Resp) -> Vec<String> {
    r.items()
        .unwrap_or_else(|| panic!("not an array: {r}"))
        .iter()
        .map(|i| i.text().unwrap_or_default())
        .collect()
}

#[test]
fn trackinfo_keys_are_the_keys_whose_writes_invalidate_the_client() {
    for_each_server(|server| {
        let mut obs = server.conn_proto(2);
        let mut writer = server.conn_proto(2);
        let mut a = server.conn_proto(3);
        let id = a.client_id().to_string();
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        a.ok(&["CLIENT", "CACHING", "yes"]);
        a.cmd(&["MGET", "keys:b", "keys:a"]);
        a.cmd(&["GET", "keys:not-cached"]); // OPTIN without CACHING yes: not tracked
        a.ok(&["CLIENT", "CACHING", "yes"]);
        a.cmd(&["EXISTS", "keys:c"]);
        let r = obs.cmd(&["TRACKINFO.KEYS", &id]);
        if !server.info.module_knows_sender() {
            assert!(r.is_error(), "Redis 7.0 cannot know the keys: {r}");
            return;
        }
        let listed = texts(&r);
        assert_eq!(
            listed,
            ["keys:a", "keys:b", "keys:c"],
            "on {}",
            server.describe()
        );
        assert_eq!(
            texts(&obs.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "2"])),
            ["keys:a", "keys:b"]
        );
        assert_eq!(
            texts(&obs.cmd(&["TRACKINFO.KEYS", &id, "count", "0"])).len(),
            3
        );
        // Write every key that was touched: exactly the listed ones invalidate.
        let mut arrived = Vec::new();
        for k in ["keys:a", "keys:b", "keys:c", "keys:not-cached"] {
            writer.cmd(&["SET", k, "v"]);
            a.send(&["PING"]);
            loop {
                let (frame, _) = a.try_read_frame().unwrap_or_else(|e| panic!("{e}"));
                let text = format!("{frame}");
                if text.contains("invalidate") {
                    arrived.push(k.to_string());
                } else if text.contains("PONG") {
                    break;
                }
            }
        }
        assert_eq!(arrived, listed, "on {}", server.describe());
        assert!(texts(&obs.cmd(&["TRACKINFO.KEYS", &id])).is_empty());
    });
}

#[test]
fn trackinfo_keys_rejects_bad_arguments() {
    for_each_server(|server| {
        let mut obs = server.conn_proto(2);
        let id = obs.client_id().to_string();
        let err = |r: Resp| match r {
            Resp::Error(e) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("expected an error, got {other}"),
        };
        assert_eq!(
            err(obs.cmd(&["TRACKINFO.KEYS", "x"])),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            err(obs.cmd(&["TRACKINFO.KEYS", "999999"])),
            "ERR No such client"
        );
        assert_eq!(
            err(obs.cmd(&["TRACKINFO.KEYS", &id, "COUNT"])),
            "ERR syntax error"
        );
        assert_eq!(
            err(obs.cmd(&["TRACKINFO.KEYS", &id, "COUNT", "-1"])),
            "ERR value is out of range, must be positive"
        );
        assert_eq!(
            err(obs.cmd(&["TRACKINFO.KEYS", &id, "LIMIT", "1"])),
            "ERR syntax error"
        );
        assert!(err(obs.cmd(&["TRACKINFO.KEYS"])).contains("wrong number of arguments"));
    });
}

/// Where the module doubts a client's entries (here: an EXEC that switched tracking on and read,
/// whose reads it cannot place), TRACKINFO.KEYS lists nothing rather than keys it may be wrong
/// about, and says so with the documented error.
#[test]
fn keys_the_module_doubts_are_never_listed() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands/trackinfo.keys.md"),
    )
    .unwrap();
    for_each_server(|server| {
        if !server.info.module_knows_sender() {
            return;
        }
        let d = server.describe();
        let mut obs = server.conn_proto(2);
        let mut a = server.conn_proto(3);
        let id = a.client_id().to_string();
        a.ok(&["MULTI"]);
        a.cmd(&["CLIENT", "TRACKING", "ON"]);
        a.cmd(&["GET", "keys:doubted"]);
        let r = a.cmd(&["EXEC"]);
        assert!(r.items().is_some(), "EXEC on {d}: {r}");
        let entry = obs.cmd(&["TRACKINFO.CLIENT", &id]);
        assert!(
            format!("{entry}").contains("approximate"),
            "the module doubts this client on {d}: {entry}"
        );
        let r = obs.cmd(&["TRACKINFO.KEYS", &id]);
        let text = r.text().unwrap_or_default();
        assert!(
            r.is_error() && text.starts_with("ERR the keys of this client are uncertain"),
            "TRACKINFO.KEYS of a doubted client on {d}: {r}"
        );
        let documented = text.split(':').next().unwrap();
        assert!(
            page.contains(&format!("`{documented}: ...`")),
            "{documented} not on the page"
        );
    });
}
