//! CONFIG GET/SET trackinfo.*: the per-key table's switch and its cap.

mod common;

use common::{for_each_server, Conn, Resp};

fn field(obs: &mut Conn, cmd: &[&str], name: &str) -> Resp {
    let r = obs.cmd(cmd);
    let items = r.items().unwrap_or_else(|| panic!("{cmd:?}: {r}"));
    items
        .chunks(2)
        .find(|kv| kv[0].text().as_deref() == Some(name))
        .map(|kv| kv[1].clone())
        .unwrap_or_else(|| panic!("no `{name}` in {r}"))
}

#[test]
fn configs_have_bounded_defaults_and_can_be_set() {
    for_each_server(|server| {
        let mut obs = server.conn_proto(2);
        let got = obs.cmd(&["CONFIG", "GET", "trackinfo.*"]);
        let mut pairs: Vec<(String, String)> = got
            .items()
            .unwrap_or_else(|| panic!("CONFIG GET: {got}"))
            .chunks(2)
            .map(|kv| (kv[0].text().unwrap(), kv[1].text().unwrap()))
            .collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("trackinfo.key-table".to_string(), "yes".to_string()),
                ("trackinfo.key-table-max-items".into(), "1000000".into())
            ],
            "on {}",
            server.describe()
        );
        obs.ok(&["CONFIG", "SET", "trackinfo.key-table-max-items", "10"]);
        let r = obs.cmd(&["CONFIG", "SET", "trackinfo.key-table-max-items", "-1"]);
        assert!(r.is_error(), "a negative cap is refused: {r}");
        let r = obs.cmd(&["CONFIG", "SET", "trackinfo.key-table", "maybe"]);
        assert!(r.is_error(), "{r}");
    });
}

#[test]
fn the_item_cap_drops_reads_and_says_so() {
    for_each_server(|server| {
        if !server.info.module_knows_sender() {
            return; // Redis 7.0: the module keeps no table
        }
        let mut obs = server.conn_proto(2);
        obs.ok(&["CONFIG", "SET", "trackinfo.key-table-max-items", "2"]);
        let mut a = server.conn_proto(3);
        let id = a.client_id().to_string();
        a.ok(&["CLIENT", "TRACKING", "ON"]);
        a.cmd(&["MGET", "cap:1", "cap:2", "cap:3"]);
        let get = ["TRACKINFO.CLIENT", id.as_str()];
        assert_eq!(field(&mut obs, &get, "tracked-keys"), Resp::Int(2));
        assert_eq!(field(&mut obs, &get, "tracked-reads"), Resp::Int(3));
        assert_eq!(
            field(&mut obs, &get, "counters"),
            Resp::Bulk(b"approximate".to_vec())
        );
        let stats = ["TRACKINFO.STATS"];
        assert_eq!(
            field(&mut obs, &stats, "key-table-dropped-items"),
            Resp::Int(1)
        );
        assert_eq!(field(&mut obs, &stats, "key-table-max-items"), Resp::Int(2));
    });
}

#[test]
fn switching_the_table_off_makes_per_key_counters_unknown() {
    for_each_server(|server| {
        if !server.info.module_knows_sender() {
            return;
        }
        let mut obs = server.conn_proto(2);
        let mut a = server.conn_proto(3);
        let id = a.client_id().to_string();
        a.ok(&["CLIENT", "TRACKING", "ON"]);
        a.cmd(&["GET", "off:1"]);
        let get = ["TRACKINFO.CLIENT", id.as_str()];
        assert_eq!(field(&mut obs, &get, "tracked-keys"), Resp::Int(1));
        assert_eq!(
            field(&mut obs, &get, "counters"),
            Resp::Bulk(b"exact".to_vec())
        );
        obs.ok(&["CONFIG", "SET", "trackinfo.key-table", "no"]);
        assert_eq!(field(&mut obs, &get, "tracked-keys"), Resp::Int(-1));
        assert_eq!(
            field(&mut obs, &get, "counters"),
            Resp::Bulk(b"approximate".to_vec())
        );
        assert_eq!(field(&mut obs, &["TRACKINFO.STATS"], "keys"), Resp::Int(-1));
        let r = obs.cmd(&["TRACKINFO.KEYS", &id]);
        assert!(
            r.items().is_some_and(|k| k.is_empty()) || r.is_error(),
            "{r}"
        );
    });
}
