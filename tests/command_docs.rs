//! What the server says about the module's commands (COMMAND DOCS, COMMAND INFO, MODULE LIST)
//! is what the pages in docs/commands/ say. Every expectation comes from a page's front matter
//! (or Cargo.toml), so the pages and the server cannot drift apart unnoticed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::frontmatter::{read_pages, Page, Yaml};
use common::{module_path, servers, Conn, Resp, Server};

/// The front-matter keys of the Redis command-page format.
const FRONT_MATTER_KEYS: [&str; 10] = [
    "title",
    "summary",
    "description",
    "syntax",
    "arity",
    "complexity",
    "since",
    "group",
    "command_flags",
    "acl_categories",
];

fn pages() -> Vec<Page> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands");
    read_pages(&dir).unwrap_or_else(|e| panic!("{e}"))
}

fn text(r: &Resp) -> String {
    r.text().unwrap_or_else(|| panic!("not a string: {r}"))
}

/// The strings of an array or set reply.
fn strings(r: &Resp) -> BTreeSet<String> {
    r.items()
        .unwrap_or_else(|| panic!("not an array: {r}"))
        .iter()
        .map(text)
        .collect()
}

fn map_get<'a>(r: &'a Resp, key: &str) -> Option<&'a Resp> {
    match r {
        Resp::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k.text().as_deref() == Some(key))
            .map(|(_, v)| v),
        _ => panic!("not a map: {r}"),
    }
}

/// Maps with their keys sorted, all the way down: the pages and the server order them
/// differently.
fn canonical(y: &Yaml) -> Yaml {
    match y {
        Yaml::List(items) => Yaml::List(items.iter().map(canonical).collect()),
        Yaml::Map(m) => {
            let mut m: Vec<(String, Yaml)> =
                m.iter().map(|(k, v)| (k.clone(), canonical(v))).collect();
            m.sort_by(|a, b| a.0.cmp(&b.0));
            Yaml::Map(m)
        }
        other => other.clone(),
    }
}

/// COMMAND DOCS's argument list written as the pages write it: `flags` become `optional: true`
/// and `multiple: true`; a `display_text` equal to the name is left out (Redis 7.2+ shows the
/// name there when none was given); any other field is kept as it is, so that it shows up in a
/// mismatch.
fn arguments_as_page(r: &Resp) -> Yaml {
    let items = r.items().unwrap_or_else(|| panic!("arguments: {r}"));
    Yaml::List(
        items
            .iter()
            .map(|arg| {
                let Resp::Map(pairs) = arg else {
                    panic!("argument: {arg}")
                };
                let name = pairs
                    .iter()
                    .find(|(k, _)| k.text().as_deref() == Some("name"))
                    .and_then(|(_, v)| v.text());
                let mut m = Vec::new();
                for (k, v) in pairs {
                    let k = text(k);
                    match k.as_str() {
                        "flags" => {
                            for flag in strings(v) {
                                m.push((flag, Yaml::Bool(true)));
                            }
                        }
                        "arguments" => m.push((k, arguments_as_page(v))),
                        "display_text" if v.text() == name => {}
                        _ => m.push((k, Yaml::Str(v.text().unwrap_or_else(|| v.to_string())))),
                    }
                }
                Yaml::Map(m)
            })
            .collect(),
    )
}

/// The module's commands as the server lists them, lowercase.
fn registered(conn: &mut Conn) -> BTreeSet<String> {
    let r = conn.cmd(&["COMMAND", "LIST", "FILTERBY", "MODULE", "trackinfo"]);
    strings(&r).into_iter().map(|s| s.to_lowercase()).collect()
}

/// `major * 10000 + minor * 100 + patch` of a `major.minor.patch` version, as MODULE LIST shows a
/// module's version.
fn encoded(version: &str) -> i64 {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<i64> = core
        .split('.')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("version {version}")))
        .collect();
    assert_eq!(parts.len(), 3, "version {version}");
    parts[0] * 10000 + parts[1] * 100 + parts[2]
}

/// `ver` of the trackinfo entry of MODULE LIST.
fn module_list_version(conn: &mut Conn) -> Option<i64> {
    let r = conn.cmd(&["MODULE", "LIST"]);
    r.items()
        .unwrap_or_else(|| panic!("MODULE LIST: {r}"))
        .iter()
        .find(|m| map_get(m, "name").and_then(Resp::text).as_deref() == Some("trackinfo"))
        .map(|m| map_get(m, "ver").and_then(Resp::int).expect("ver"))
}

#[test]
fn every_page_follows_the_command_page_format() {
    let pages = pages();
    assert!(!pages.is_empty());
    for page in &pages {
        let f = &page.file;
        assert!(page.command.starts_with("trackinfo."), "{f}: file name");
        for key in FRONT_MATTER_KEYS {
            assert!(page.get(key).is_some(), "{f}: front matter has no `{key}`");
        }
        assert_eq!(
            page.str("title").unwrap(),
            page.command.to_uppercase(),
            "{f}"
        );
        let syntax = page.str("syntax").unwrap();
        assert!(
            syntax == page.command.to_uppercase()
                || syntax.starts_with(&format!("{} ", page.command.to_uppercase())),
            "{f}: syntax {syntax:?} does not start with the command"
        );
        page.int("arity").unwrap();
        page.strings("command_flags").unwrap();
        for cat in page.strings("acl_categories").unwrap() {
            assert!(cat.starts_with('@'), "{f}: ACL category {cat}");
        }
        // Usage and examples, then the two reply sections, in this order.
        let at = |heading: &str| {
            page.body
                .lines()
                .position(|l| l == heading)
                .unwrap_or_else(|| panic!("{f}: no `{heading}` section"))
        };
        let examples = at("## Examples");
        let resp2 = at("## RESP2 Reply");
        let resp3 = at("## RESP3 Reply");
        assert!(
            examples < resp2 && resp2 < resp3,
            "{f}: sections out of order"
        );
    }
}

#[test]
fn command_docs_and_command_info_say_what_the_pages_say() {
    let pages = pages();
    for bin in servers() {
        let server = Server::with_module(&bin);
        let mut conn = server.conn_proto(3);
        let commands = registered(&mut conn);
        assert!(commands.contains("trackinfo.get"), "{commands:?}");
        for name in &commands {
            assert!(
                pages.iter().any(|p| &p.command == name),
                "{name} has no page in docs/commands/ ({})",
                server.describe()
            );
        }
        for page in &pages {
            let name = page.command.as_str();
            if !commands.contains(name) {
                // A page written ahead of its command (trackinfo.list until it lands).
                println!("{name}: not registered by this build, not checked against the server");
                continue;
            }
            let context = format!("{name} on {}", server.describe());
            let docs = conn.cmd(&["COMMAND", "DOCS", name]);
            let doc = map_get(&docs, name).unwrap_or_else(|| panic!("COMMAND DOCS {name}: {docs}"));
            let field = |k: &str| map_get(doc, k).map(text);
            for key in ["summary", "since", "group", "complexity"] {
                assert_eq!(
                    field(key).as_deref(),
                    Some(page.str(key).unwrap()),
                    "{key} of {context}"
                );
            }
            assert_eq!(field("module").as_deref(), Some("trackinfo"), "{context}");
            let want = page.get("arguments").cloned().unwrap_or(Yaml::List(vec![]));
            let got = map_get(doc, "arguments")
                .map(arguments_as_page)
                .unwrap_or(Yaml::List(vec![]));
            assert_eq!(canonical(&got), canonical(&want), "arguments of {context}");

            let info = conn.cmd(&["COMMAND", "INFO", name]);
            let entry = &info
                .items()
                .unwrap_or_else(|| panic!("COMMAND INFO: {info}"))[0];
            let entry = entry
                .items()
                .unwrap_or_else(|| panic!("COMMAND INFO: {info}"));
            assert_eq!(
                entry[1].int(),
                Some(page.int("arity").unwrap()),
                "arity of {context}"
            );
            let flags = strings(&entry[2]);
            for flag in page.strings("command_flags").unwrap() {
                assert!(
                    flags.contains(&flag),
                    "{context}: flag {flag} not in {flags:?}"
                );
            }
            let categories = strings(&entry[6]);
            let page_categories: BTreeSet<String> = page
                .strings("acl_categories")
                .unwrap()
                .into_iter()
                .collect();
            if server.info.is_redis70() {
                // Modules cannot set categories on 7.0: only the implied ones show.
                assert!(
                    categories.is_subset(&page_categories),
                    "{context}: {categories:?}"
                );
            } else {
                assert_eq!(categories, page_categories, "ACL categories of {context}");
            }
        }
    }
}

#[test]
fn the_server_checks_the_arity_before_the_module_runs() {
    for bin in servers() {
        let server = Server::with_module(&bin);
        let mut conn = server.conn();
        // Inside MULTI the server refuses a wrong arity at once, as for its own commands; the
        // module alone could only answer it at EXEC.
        conn.ok(&["MULTI"]);
        let r = conn.cmd(&["TRACKINFO.GET", "x"]);
        assert_eq!(
            r.text().as_deref(),
            Some("ERR wrong number of arguments for 'trackinfo.get' command"),
            "{}",
            server.describe()
        );
        let r = conn.cmd(&["EXEC"]);
        assert!(
            text(&r).starts_with("EXECABORT"),
            "EXEC after a refused command: {r} on {}",
            server.describe()
        );
    }
}

#[test]
fn module_list_shows_cargo_tomls_version() {
    let want = encoded(env!("CARGO_PKG_VERSION"));
    for bin in servers() {
        let server = Server::with_module(&bin);
        let mut conn = server.conn_proto(3);
        assert_eq!(
            module_list_version(&mut conn),
            Some(want),
            "MODULE LIST ver on {} (Cargo.toml: {})",
            server.describe(),
            env!("CARGO_PKG_VERSION")
        );
    }
}

/// The version the module reports has its section in CHANGELOG.md, and the README and
/// CHANGELOG link every command page.
#[test]
fn the_changelog_has_this_version_and_the_readme_links_the_docs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).expect("CHANGELOG.md");
    let section = format!("## [{}]", env!("CARGO_PKG_VERSION"));
    assert!(
        changelog.lines().any(|l| l.starts_with(&section)),
        "CHANGELOG.md has no `{section}` section"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let pages = std::fs::read_dir(root.join("docs/commands")).expect("docs/commands");
    for page in pages {
        let name = page
            .expect("a page")
            .file_name()
            .into_string()
            .expect("utf-8");
        let link = format!("docs/commands/{name}");
        assert!(readme.contains(&link), "README.md does not link {link}");
    }
    for link in [
        "examples/",
        "docs/troubleshooting.md",
        "CHANGELOG.md",
        "BENCHMARKS.md",
    ] {
        assert!(readme.contains(link), "README.md does not link {link}");
    }
}

#[test]
fn docs_come_and_go_with_the_module_and_come_back_on_reload() {
    let path = module_path();
    let path = path.to_str().unwrap();
    for bin in servers() {
        let server = Server::start(&bin, None);
        let mut conn = server.conn_proto(3);
        let summary = |conn: &mut Conn| {
            let docs = conn.cmd(&["COMMAND", "DOCS", "trackinfo.get"]);
            match docs {
                Resp::Map(ref pairs) if pairs.is_empty() => None,
                _ => map_get(&docs, "trackinfo.get")
                    .and_then(|d| map_get(d, "summary"))
                    .map(text),
            }
        };
        for round in 0..2 {
            let r = conn.cmd(&["MODULE", "LOAD", path]);
            assert!(r.is_ok(), "MODULE LOAD (round {round}): {r}");
            assert!(
                summary(&mut conn).is_some(),
                "round {round} on {}",
                server.describe()
            );
            let r = conn.cmd(&["TRACKINFO.GET"]);
            assert!(matches!(r, Resp::Map(_)), "TRACKINFO.GET after load: {r}");
            let r = conn.cmd(&["MODULE", "UNLOAD", "trackinfo"]);
            assert!(r.is_ok(), "MODULE UNLOAD (round {round}): {r}");
            assert_eq!(summary(&mut conn), None, "after MODULE UNLOAD");
            assert_eq!(module_list_version(&mut conn), None);
        }
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        assert!(
            !log.contains("COMMAND DOCS of") && !log.contains("Invalid command info"),
            "{}: the log says the docs were refused:\n{}",
            server.describe(),
            server.log_tail(20)
        );
        assert_eq!(conn.cmd(&["PING"]).text().as_deref(), Some("PONG"));
    }
}
