//! Loading, unloading and reloading the module, and clients coming and going.

mod common;

use common::mirror::{assert_client_mirror, Expect, Fields};
use common::resp::split_raw;
use common::{module_path, servers, Conn, Resp, Server};

fn tracking_ids(obs: &mut Conn) -> Vec<(i64, String)> {
    let (reply, raw) = obs.cmd_raw(&["TRACKINFO.CLIENTS"]);
    assert_eq!(reply.marker(), '*', "TRACKINFO.CLIENTS: {reply}");
    let (_, entries) = split_raw(&raw).unwrap();
    entries
        .into_iter()
        .map(|e| {
            let f = Fields::parse_mirror(e, obs.proto).unwrap_or_else(|err| panic!("{err}"));
            (f.id.unwrap(), f.fidelity.unwrap())
        })
        .collect()
}

fn module_load(obs: &mut Conn) {
    let path = module_path();
    let r = obs.cmd(&["MODULE", "LOAD", path.to_str().unwrap()]);
    assert!(r.is_ok(), "MODULE LOAD {}: {r}", path.display());
}

fn connect(server: &Server, proto: u8) -> (Conn, i64) {
    let mut c = server.conn_proto(proto);
    let id = c.client_id();
    (c, id)
}

#[test]
fn module_loaded_at_runtime_reports_existing_tracking_clients_as_partial_until_switched_again() {
    for bin in servers() {
        let server = Server::start(&bin, None);
        let (mut obs2, obs2_id) = connect(&server, 2);
        let mut obs3 = server.conn_proto(3);
        let (mut a, a_id) = connect(&server, 2);
        let (mut b, b_id) = connect(&server, 3);
        let (mut c, c_id) = connect(&server, 2);
        let (mut d, d_id) = connect(&server, 3);
        a.ok(&["CLIENT", "TRACKING", "ON"]);
        b.ok(&[
            "CLIENT",
            "TRACKING",
            "ON",
            "BCAST",
            "PREFIX",
            "x",
            "NOLOOP",
            "REDIRECT",
            &obs2_id.to_string(),
        ]);
        c.ok(&["CLIENT", "TRACKING", "ON", "OPTIN", "NOLOOP"]);
        c.ok(&["CLIENT", "CACHING", "yes"]);

        module_load(&mut obs2);

        let listed = tracking_ids(&mut obs3);
        let partial = "partial".to_string();
        assert_eq!(
            listed,
            vec![
                (a_id, partial.clone()),
                (b_id, partial.clone()),
                (c_id, partial)
            ]
        );
        let t = assert_client_mirror(&server, &mut a, a_id, &mut obs2, Expect::Partial);
        assert_eq!(t.flags, vec!["on"]);
        let t = assert_client_mirror(&server, &mut b, b_id, &mut obs3, Expect::Partial);
        assert_eq!(
            (t.flags, t.redirect),
            (vec!["on".into(), "bcast".into(), "noloop".into()], obs2_id)
        );
        let t = assert_client_mirror(&server, &mut c, c_id, &mut obs2, Expect::Partial);
        assert_eq!(t.flags, vec!["on", "optin", "caching-yes", "noloop"]);
        assert_client_mirror(&server, &mut d, d_id, &mut obs3, Expect::Exact);

        // Switched off and on again with the module loaded: exact where the server lets the
        // module see who sent the command.
        let known = Expect::for_client(&server.info, true);
        a.ok(&["CLIENT", "TRACKING", "OFF"]);
        assert_client_mirror(&server, &mut a, a_id, &mut obs2, Expect::Exact);
        a.ok(&["CLIENT", "TRACKING", "ON", "NOLOOP"]);
        assert_client_mirror(&server, &mut a, a_id, &mut obs2, known);
        c.ok(&["CLIENT", "TRACKING", "OFF"]);
        c.ok(&["CLIENT", "TRACKING", "ON", "OPTOUT"]);
        assert_client_mirror(&server, &mut c, c_id, &mut obs2, known);
        d.ok(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "d"]);
        assert_client_mirror(&server, &mut d, d_id, &mut obs3, known);
        assert_client_mirror(&server, &mut b, b_id, &mut obs3, Expect::Partial);
    }
}

#[test]
fn module_unloads_and_reloads_five_times_with_tracking_clients_connected() {
    for bin in servers() {
        let server = Server::with_module(&bin);
        let (mut obs2, _) = connect(&server, 2);
        let mut obs3 = server.conn_proto(3);
        let (mut a, a_id) = connect(&server, 3);
        let (mut b, b_id) = connect(&server, 2);
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
        b.ok(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p"]);
        let known = Expect::for_client(&server.info, true);
        assert_client_mirror(&server, &mut a, a_id, &mut obs3, known);
        for round in 1..=5 {
            println!("reload round {round}");
            let r = obs2.cmd(&["MODULE", "UNLOAD", "trackinfo"]);
            assert!(r.is_ok(), "round {round}: MODULE UNLOAD trackinfo: {r}");
            let r = obs2.cmd(&["TRACKINFO.CLIENTS"]);
            assert!(
                matches!(&r, Resp::Error(e) if e.starts_with(b"ERR unknown command")),
                "round {round}: TRACKINFO.CLIENTS after unload: {r}"
            );
            module_load(&mut obs2);
            let r = obs2.cmd(&["TRACKINFO.GET"]);
            assert!(
                !r.is_error(),
                "round {round}: TRACKINFO.GET after load: {r}"
            );
            // Tracking switched on before this load: the module cannot know the options.
            assert_client_mirror(&server, &mut a, a_id, &mut obs3, Expect::Partial);
            assert_client_mirror(&server, &mut b, b_id, &mut obs2, Expect::Partial);
            let partial = "partial".to_string();
            assert_eq!(
                tracking_ids(&mut obs2),
                vec![(a_id, partial.clone()), (b_id, partial)],
                "round {round}"
            );
            a.ok(&["CLIENT", "TRACKING", "OFF"]);
            a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN"]);
            assert_client_mirror(&server, &mut a, a_id, &mut obs3, known);
        }
    }
}

#[test]
fn module_loads_from_the_command_line() {
    for bin in servers() {
        let server = Server::with_module(&bin);
        let mut c = server.conn();
        let list = c.cmd(&["MODULE", "LIST"]);
        let names: Vec<String> = list
            .items()
            .unwrap_or_else(|| panic!("MODULE LIST: {list}"))
            .iter()
            .filter_map(|m| {
                let items = m.items()?;
                let i = items
                    .iter()
                    .position(|x| x.text().as_deref() == Some("name"))?;
                items.get(i + 1)?.text()
            })
            .collect();
        assert!(
            names.iter().any(|n| n == "trackinfo"),
            "MODULE LIST: {list}"
        );
        let id = c.client_id();
        let mut obs = server.conn();
        assert_client_mirror(&server, &mut c, id, &mut obs, Expect::Exact);
        c.ok(&["CLIENT", "TRACKING", "ON"]);
        assert_client_mirror(
            &server,
            &mut c,
            id,
            &mut obs,
            Expect::for_client(&server.info, true),
        );
    }
}

#[test]
fn disconnected_clients_leave_trackinfo_clients_and_become_unknown() {
    for bin in servers() {
        let server = Server::with_module(&bin);
        let mut obs = server.conn();
        let mut conns: Vec<(Conn, i64)> = (0..4).map(|i| connect(&server, 2 + i % 2)).collect();
        for (c, _) in conns.iter_mut() {
            c.ok(&["CLIENT", "TRACKING", "ON"]);
        }
        let ids: Vec<i64> = conns.iter().map(|(_, id)| *id).collect();
        let listed: Vec<i64> = tracking_ids(&mut obs)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(listed, ids);

        // Three ways to leave: the socket closes, QUIT, CLIENT KILL.
        let (mut d, d_id) = conns.pop().unwrap();
        obs.cmd(&["CLIENT", "KILL", "ID", &d_id.to_string()]);
        assert!(d.wait_closed(), "CLIENT KILL left the connection open");
        let (mut q, q_id) = conns.remove(1);
        q.cmd(&["QUIT"]);
        assert!(q.wait_closed(), "QUIT left the connection open");
        let (closed, closed_id) = conns.remove(0);
        drop(closed);
        for gone in [d_id, q_id, closed_id] {
            server.wait_client_gone(&mut obs, gone);
            let r = obs.cmd(&["TRACKINFO.CLIENT", &gone.to_string()]);
            assert_eq!(
                r,
                Resp::Error(b"ERR No such client".to_vec()),
                "TRACKINFO.CLIENT {gone} after it left"
            );
        }
        let listed: Vec<i64> = tracking_ids(&mut obs)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(listed, vec![conns[0].1]);
    }
}
