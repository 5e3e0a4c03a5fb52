//! Every error text the module replies with, in the server's wording, plus the server's own
//! CLIENT TRACKING / CLIENT CACHING texts that the rules replay predicts.

pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
pub const NO_SUCH_CLIENT: &str = "ERR No such client";
pub const SYNTAX: &str = "ERR syntax error";
pub const KEYS_UNKNOWN_SENDER: &str = "ERR this server's command filter does not say who sent a command, so tracked keys are unknown (Redis 7.0)";
pub const KEYS_UNKNOWN_PARTIAL: &str = "ERR the keys of this client are unknown: it switched tracking on where the module could not see it (fidelity partial)";
pub const KEYS_UNSURE: &str = "ERR the keys of this client are uncertain: the module may have missed a change to them (its counters say approximate; the server log says why)";
pub const KEYS_TABLE_OFF: &str =
    "ERR the per-key table is switched off (CONFIG SET trackinfo.key-table yes)";
pub const NO_CALLER_ACL: &str = "ERR cannot read the ACL user of this connection";

/// The server's reply to a command the caller's user may not run, for `command` (its lowercase
/// full name). Redis 7.0 does not name the user (server.c processCommand); Redis 7.2+ and Valkey
/// do (acl.c getAclErrorMessage).
pub fn noperm_command(names_user: bool, user: &[u8], command: &str) -> String {
    if names_user {
        let user = String::from_utf8_lossy(user);
        format!("NOPERM User {user} has no permissions to run the '{command}' command")
    } else {
        format!("NOPERM this user has no permissions to run the '{command}' command")
    }
}

/// TRACKINFO.LIST MODE / DELIVERY with an unknown value, followed by ` '<value>'` (as CLIENT LIST
/// TYPE's `Unknown client type '<value>'`).
pub const UNKNOWN_MODE: &str = "ERR Unknown tracking mode";
pub const UNKNOWN_DELIVERY: &str = "ERR Unknown delivery";
/// Redis's CLIENT LIST ID text for an id it cannot read; TRACKINFO.LIST relays the server's own
/// text and falls back on this one.
pub const INVALID_CLIENT_ID: &str = "ERR Invalid client ID";
pub const INTERNAL: &str = "ERR trackinfo internal error, see the server log";

// The server's texts (networking.c clientCommand, tracking.c), without the `ERR ` prefix.
pub const REDIRECT_TWICE: &str = "A client can only redirect to a single other client";
pub const REDIRECT_MISSING: &str = "The client ID you want redirect to does not exist";
pub const PREFIX_WITHOUT_BCAST: &str = "PREFIX option requires BCAST mode to be enabled";
pub const BCAST_SWITCH: &str = "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.";
pub const BCAST_WITH_OPT: &str = "OPTIN and OPTOUT are not compatible with BCAST";
pub const OPTIN_AND_OPTOUT: &str = "You can't specify both OPTIN mode and OPTOUT mode";
pub const OPT_SWITCH: &str = "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.";
pub const CACHING_NOT_TRACKING: &str = "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled";
pub const CACHING_YES_NOT_OPTIN: &str =
    "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.";
pub const CACHING_NO_NOT_OPTOUT: &str =
    "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.";
pub const SERVER_SYNTAX: &str = "syntax error";
pub const SERVER_NOT_INTEGER: &str = "value is not an integer or out of range";

#[cfg(test)]
mod tests {
    use super::noperm_command;

    #[test]
    fn noperm_names_the_user_where_the_server_does() {
        assert_eq!(
            noperm_command(true, b"ops", "trackinfo.list"),
            "NOPERM User ops has no permissions to run the 'trackinfo.list' command"
        );
        assert_eq!(
            noperm_command(false, b"ops", "trackinfo.list"),
            "NOPERM this user has no permissions to run the 'trackinfo.list' command"
        );
    }
}
