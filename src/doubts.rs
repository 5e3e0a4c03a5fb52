//! Why a client's counters go `approximate`: every cause, in the words the server log gives at
//! verbose level (`trackinfo: client N: counters approximate from now on: <cause>`).
//! docs/design.md lists each one, and a test here checks that it does.

/// An EXEC that also ran CLIENT TRACKING/CACHING: its reads are replayed without their places.
pub const EXEC_WITH_CLIENT_COMMANDS: &str = "reads inside EXEC";
/// A write, inside an EXEC that also ran CLIENT TRACKING/CACHING, of a key its client held: sent
/// or not depending on where it fell among them.
pub const EXEC_WRITE_WHILE_TRACKING_CHANGES: &str =
    "a write inside an EXEC that also changes its tracking";
/// An EXEC of reads when the server's command counter could not be read.
pub const EXEC_NO_COUNTER: &str = "reads inside EXEC with no counter to confirm it ran";
/// The command counter moved by neither 1 nor 1 + the queued commands, or a command the filter
/// saw ran inside the EXEC (a script's).
pub const EXEC_UNCONFIRMED: &str = "an EXEC the server's counters do not confirm";
pub const SCRIPT_READ_WHILE_TRACKING_CHANGED: &str =
    "a script read while its tracking changed in the same EXEC";
pub const PUBSUB_READ: &str = "a read in Pub/Sub mode";
pub const CLUSTER_REFUSAL_UNKNOWN: &str = "a read the server may have refused";
pub const TABLE_DID_NOT_KEEP: &str = "reads the key table did not keep";
pub const UNSEEN_WRITE_UNCONFIRMED: &str = "a write the server's counters cannot confirm";
pub const EXPIRY_OF_READ_UNPLACED: &str = "an expiry of a key it was reading";
pub const EXPIRY_NOLOOP_UNPLACED: &str = "an expiry that NOLOOP may or may not skip";
pub const BCAST_WRITE_IN_SLEEP: &str = "a BCAST write inside the server's before-sleep work";
pub const OWN_EXPIRE_COMMAND: &str = "an expiry its own expire command may or may not have made";
pub const TABLE_DIFFERS: &str = "the server's tracking table differs from the module's";
/// A message counted where the module may not ask the server a protocol it does not know (the
/// command filter), or may not ask at all (a redirect target silent since a module reload).
pub const DELIVERY_UNKNOWN: &str = "a message whose delivery the module could not tell";
/// A write while an EXEC that changes where messages go (queued HELLO, SUBSCRIBE, CLIENT ...)
/// runs, for the EXEC's client or a client redirecting to it: sent before or after the change.
pub const EXEC_CHANGES_DELIVERY: &str = "a message sent while an EXEC changed its delivery";

pub const ALL: [&str; 16] = [
    EXEC_WITH_CLIENT_COMMANDS,
    EXEC_WRITE_WHILE_TRACKING_CHANGES,
    EXEC_NO_COUNTER,
    EXEC_UNCONFIRMED,
    SCRIPT_READ_WHILE_TRACKING_CHANGED,
    PUBSUB_READ,
    CLUSTER_REFUSAL_UNKNOWN,
    TABLE_DID_NOT_KEEP,
    UNSEEN_WRITE_UNCONFIRMED,
    EXPIRY_OF_READ_UNPLACED,
    EXPIRY_NOLOOP_UNPLACED,
    BCAST_WRITE_IN_SLEEP,
    OWN_EXPIRE_COMMAND,
    TABLE_DIFFERS,
    DELIVERY_UNKNOWN,
    EXEC_CHANGES_DELIVERY,
];

#[cfg(test)]
mod tests {
    #[test]
    fn design_md_lists_every_cause_in_the_log_words() {
        let design = include_str!("../docs/design.md");
        for cause in super::ALL {
            assert!(
                design.contains(&format!("`{cause}`")),
                "docs/design.md does not list the cause `{cause}`"
            );
        }
    }
}
