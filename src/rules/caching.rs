//! `CLIENT CACHING yes|no`, and when its one-command window ends.

use super::{is_word, Flags, ServerReply, TrackingState};
use crate::errors;

/// Replays CLIENT CACHING (arity already checked: exactly one argument). `yes`/`no` are
/// compared with strcasecmp, as networking.c does: up to a NUL byte.
pub fn replay(state: &TrackingState, arg: &[u8]) -> (TrackingState, ServerReply) {
    let refuse = |e: &str| (state.clone(), ServerReply::Error(e.to_string()));
    if !state.is_on() {
        return refuse(errors::CACHING_NOT_TRACKING);
    }
    let needed = if is_word(arg, b"yes") {
        (Flags::OPTIN, errors::CACHING_YES_NOT_OPTIN)
    } else if is_word(arg, b"no") {
        (Flags::OPTOUT, errors::CACHING_NO_NOT_OPTOUT)
    } else {
        return refuse(errors::SERVER_SYNTAX);
    };
    if !state.flags.contains(needed.0) {
        return refuse(needed.1);
    }
    let mut next = state.clone();
    next.flags.insert(Flags::CACHING);
    (next, ServerReply::Ok)
}

/// As networking.c resetClient: CACHING survives CLIENT subcommands and MULTI, and is cleared
/// after any other command, including rejected ones and the module's own commands.
/// `client_subcommand` is true when the server resolved the command to a CLIENT subcommand.
pub fn window_survives(client_subcommand: bool, in_multi_after: bool) -> bool {
    client_subcommand || in_multi_after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracking(flags: Flags) -> TrackingState {
        TrackingState {
            flags: Flags::ON | flags,
            ..Default::default()
        }
    }

    #[test]
    fn caching_needs_tracking_first() {
        let (_, r) = replay(&TrackingState::default(), b"yes");
        assert_eq!(r, ServerReply::Error(errors::CACHING_NOT_TRACKING.into()));
    }

    #[test]
    fn caching_yes_needs_optin_and_no_needs_optout() {
        let (s, r) = replay(&tracking(Flags::OPTIN), b"YES");
        assert_eq!(
            (s.flag_names(), r),
            (vec!["on", "optin", "caching-yes"], ServerReply::Ok)
        );
        let (s, r) = replay(&tracking(Flags::OPTOUT), b"no");
        assert_eq!(
            (s.flag_names(), r),
            (vec!["on", "optout", "caching-no"], ServerReply::Ok)
        );
        let (_, r) = replay(&tracking(Flags::OPTOUT), b"yes");
        assert_eq!(r, ServerReply::Error(errors::CACHING_YES_NOT_OPTIN.into()));
        let (_, r) = replay(&tracking(Flags::empty()), b"no");
        assert_eq!(r, ServerReply::Error(errors::CACHING_NO_NOT_OPTOUT.into()));
        let (_, r) = replay(&tracking(Flags::OPTIN), b"maybe");
        assert_eq!(r, ServerReply::Error(errors::SERVER_SYNTAX.into()));
    }

    #[test]
    fn yes_and_no_match_up_to_a_nul_byte_as_strcasecmp_does() {
        let (s, r) = replay(&tracking(Flags::OPTIN), b"yes\0no");
        assert_eq!(
            (s.flag_names(), r),
            (vec!["on", "optin", "caching-yes"], ServerReply::Ok)
        );
        let (_, r) = replay(&tracking(Flags::OPTIN), b"\0yes");
        assert_eq!(r, ServerReply::Error(errors::SERVER_SYNTAX.into()));
    }

    #[test]
    fn window_ends_after_other_commands_outside_multi() {
        assert!(window_survives(true, false));
        assert!(window_survives(false, true));
        assert!(!window_survives(false, false));
    }
}
