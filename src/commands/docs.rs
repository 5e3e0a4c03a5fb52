//! What `COMMAND DOCS` and `COMMAND INFO` say about each command: summary, complexity, since,
//! arity and the argument tree redis-cli turns into hints. Plain data; `ffi::set_command_docs`
//! hands it to the server (RedisModule_SetCommandInfo, Redis 7.0+).
//!
//! Each entry repeats the front matter of `docs/commands/<name>.md`. The unit test below and
//! `tests/command_docs.rs` (against the running servers) fail when the two drift apart.
//! The group is not here: the server shows `module` for every module command
//! (server.c addReplyCommandDocs), and the pages say so too.

/// One command's documentation.
pub struct CommandDoc {
    /// As registered, lowercase.
    pub name: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// The module version that added the command.
    pub since: &'static str,
    /// As the server counts it (the command name included); -N means at least N.
    pub arity: i32,
    pub args: &'static [Arg],
}

/// The argument types a module can declare (redismodule.h RedisModuleCommandArgType), the ones
/// this module uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    String,
    Integer,
    /// A token alone, such as `NX` in SET.
    PureToken,
    /// One of the sub-arguments.
    OneOf,
    /// The sub-arguments together.
    Block,
}

impl ArgType {
    /// The name COMMAND DOCS and the docs pages use.
    pub const fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
            ArgType::PureToken => "pure-token",
            ArgType::OneOf => "oneof",
            ArgType::Block => "block",
        }
    }
}

/// One argument, as COMMAND DOCS lists it.
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgType,
    /// The word before the value (`COUNT` in `COUNT count`), or the whole of a pure token.
    pub token: Option<&'static str>,
    pub optional: bool,
    /// The value may repeat (`ID id [id ...]`).
    pub multiple: bool,
    /// For `OneOf` and `Block` only.
    pub subargs: &'static [Arg],
}

impl Arg {
    const fn new(name: &'static str, kind: ArgType) -> Arg {
        Arg {
            name,
            kind,
            token: None,
            optional: false,
            multiple: false,
            subargs: &[],
        }
    }

    const fn integer(name: &'static str) -> Arg {
        Arg::new(name, ArgType::Integer)
    }

    /// A word that is its own argument (`self` in `DELIVERY self`); written as the docs spell it.
    const fn word(token: &'static str) -> Arg {
        Arg {
            token: Some(token),
            ..Arg::new(token, ArgType::PureToken)
        }
    }

    /// `TOKEN <a|b|c>`.
    const fn one_of(name: &'static str, token: &'static str, subargs: &'static [Arg]) -> Arg {
        Arg {
            token: Some(token),
            subargs,
            ..Arg::new(name, ArgType::OneOf)
        }
    }

    const fn token(self, token: &'static str) -> Arg {
        Arg {
            token: Some(token),
            ..self
        }
    }

    const fn optional(self) -> Arg {
        Arg {
            optional: true,
            ..self
        }
    }

    const fn multiple(self) -> Arg {
        Arg {
            multiple: true,
            ..self
        }
    }
}

/// The version every command so far first shipped in.
const SINCE: &str = "0.1.0";

/// Every TRACKINFO.* command. `trackinfo.list` may not be registered yet; its info is set only
/// where it is.
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "trackinfo.get",
        summary: "Returns the client-side caching state of the current connection, like CLIENT TRACKINGINFO, with the module's extra fields",
        complexity: "O(1). O(N) in the number of clients when the redirect target has vanished (one CLIENT LIST).",
        since: SINCE,
        arity: 1,
        args: &[],
    },
    CommandDoc {
        name: "trackinfo.client",
        summary: "Returns the client-side caching state of any connected client",
        complexity: "O(1). O(N) in the number of clients when the entry needs CLIENT LIST (partial fidelity, or a vanished redirect target).",
        since: SINCE,
        arity: 2,
        args: &[Arg::integer("client-id")],
    },
    CommandDoc {
        name: "trackinfo.clients",
        summary: "Returns the client-side caching state of every client with tracking on",
        complexity: "O(N) where N is the number of tracking clients (plus one CLIENT LIST when some need it).",
        since: SINCE,
        arity: 1,
        args: &[],
    },
    CommandDoc {
        name: "trackinfo.keys",
        summary: "Lists the keys the server's tracking table holds for a client",
        complexity: "O(K) where K is the number of keys in the tracking table.",
        since: SINCE,
        arity: -2,
        args: &[
            Arg::integer("client-id"),
            Arg::integer("count").token("COUNT").optional(),
        ],
    },
    CommandDoc {
        name: "trackinfo.stats",
        summary: "Server-wide client-side caching figures: the module's beside the server's own",
        complexity: "O(N + K) where N is the number of tracking clients and K the number of tracked keys.",
        since: SINCE,
        arity: 1,
        args: &[],
    },
    CommandDoc {
        name: "trackinfo.list",
        summary: "Lists tracking clients one per line, in CLIENT LIST's name=value format",
        complexity: "O(N) where N is the number of tracking clients",
        since: SINCE,
        arity: -1,
        args: &[
            Arg::integer("id").token("ID").optional().multiple(),
            // as CLIENT KILL's `TYPE <normal|master|...>`: a oneof of lowercase pure tokens
            Arg::one_of(
                "mode",
                "MODE",
                &[
                    Arg::word("default"),
                    Arg::word("optin"),
                    Arg::word("optout"),
                    Arg::word("bcast"),
                ],
            )
            .optional(),
            Arg::one_of(
                "delivery",
                "DELIVERY",
                &[
                    Arg::word("self"),
                    Arg::word("redirect"),
                    Arg::word("dropped"),
                ],
            )
            .optional(),
        ],
    },
];

// The pages' reader, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/common/frontmatter.rs"]
#[allow(dead_code)] // the integration tests use the rest
mod frontmatter;

#[cfg(test)]
mod tests {
    use super::frontmatter::{self, Page, Yaml};
    use super::*;

    fn pages() -> Vec<Page> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands");
        frontmatter::read_pages(&dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The argument tree as the pages write it.
    fn as_yaml(args: &[Arg]) -> Yaml {
        Yaml::List(
            args.iter()
                .map(|a| {
                    let mut m = vec![
                        ("name".to_string(), Yaml::Str(a.name.to_string())),
                        ("type".to_string(), Yaml::Str(a.kind.name().to_string())),
                    ];
                    if let Some(t) = a.token {
                        m.push(("token".to_string(), Yaml::Str(t.to_string())));
                    }
                    if a.optional {
                        m.push(("optional".to_string(), Yaml::Bool(true)));
                    }
                    if a.multiple {
                        m.push(("multiple".to_string(), Yaml::Bool(true)));
                    }
                    if !a.subargs.is_empty() {
                        m.push(("arguments".to_string(), as_yaml(a.subargs)));
                    }
                    Yaml::Map(m)
                })
                .collect(),
        )
    }

    #[test]
    fn every_page_has_an_entry_and_every_entry_a_page() {
        let mut documented: Vec<String> = pages().iter().map(|p| p.command.clone()).collect();
        let mut described: Vec<String> = COMMANDS.iter().map(|c| c.name.to_string()).collect();
        documented.sort();
        described.sort();
        assert_eq!(documented, described);
    }

    #[test]
    fn entries_say_what_their_pages_front_matter_says() {
        for page in pages() {
            let doc = COMMANDS.iter().find(|c| c.name == page.command).unwrap();
            let str_of = |k: &str| page.str(k).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(doc.summary, str_of("summary"), "{}", page.file);
            assert_eq!(doc.complexity, str_of("complexity"), "{}", page.file);
            assert_eq!(doc.since, str_of("since"), "{}", page.file);
            assert_eq!(
                i64::from(doc.arity),
                page.int("arity").unwrap_or_else(|e| panic!("{e}")),
                "{}",
                page.file
            );
            let args = page.get("arguments").cloned().unwrap_or(Yaml::List(vec![]));
            assert_eq!(as_yaml(doc.args), args, "{}: arguments", page.file);
        }
    }

    #[test]
    fn strings_have_no_nul_the_server_would_cut_them_at() {
        fn check(args: &[Arg]) {
            for a in args {
                assert!(!a.name.contains('\0') && !a.token.unwrap_or("").contains('\0'));
                check(a.subargs);
            }
        }
        for c in COMMANDS {
            for s in [c.name, c.summary, c.complexity, c.since] {
                assert!(!s.contains('\0'), "{s}");
            }
            check(c.args);
        }
    }

    #[test]
    fn only_oneof_and_block_have_subargs_and_they_always_do() {
        fn check(args: &[Arg]) {
            for a in args {
                let compound = matches!(a.kind, ArgType::OneOf | ArgType::Block);
                assert_eq!(compound, !a.subargs.is_empty(), "{}", a.name);
                assert!(
                    a.kind != ArgType::PureToken || a.token.is_some(),
                    "{}",
                    a.name
                );
                check(a.subargs);
            }
        }
        for c in COMMANDS {
            check(c.args);
        }
    }
}
