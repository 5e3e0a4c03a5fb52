//! Where a client's invalidation messages go, as tracking.c sendTrackingMessage decides it.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Tracking is off.
    Off,
    /// RESP3 without REDIRECT: push messages on the connection itself.
    SelfPush,
    /// The redirect target is connected and can receive (RESP3, or RESP2 in Pub/Sub mode).
    Redirect,
    /// The server discards them: RESP2 without REDIRECT, a RESP2 target not in Pub/Sub mode, or
    /// a redirect target that is gone.
    Dropped,
}

impl Delivery {
    pub fn name(self) -> &'static str {
        match self {
            Delivery::Off => "off",
            Delivery::SelfPush => "self",
            Delivery::Redirect => "redirect",
            Delivery::Dropped => "dropped",
        }
    }
}

/// A connection as far as delivery cares: its protocol and whether it is in Pub/Sub mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receiver {
    pub resp: i64,
    pub pubsub: bool,
}

/// `redirect` is the reported redirect (0 for none); `target` is the redirect target, `None`
/// when no connection has that id.
pub fn route(on: bool, redirect: i64, own: Receiver, target: Option<Receiver>) -> Delivery {
    if !on {
        return Delivery::Off;
    }
    if redirect == 0 {
        // "RESP2 does not support push messages in the same connection."
        return if own.resp > 2 {
            Delivery::SelfPush
        } else {
            Delivery::Dropped
        };
    }
    match target {
        Some(t) if t.resp > 2 || t.pubsub => Delivery::Redirect,
        _ => Delivery::Dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R2: Receiver = Receiver {
        resp: 2,
        pubsub: false,
    };
    const R2_SUB: Receiver = Receiver {
        resp: 2,
        pubsub: true,
    };
    const R3: Receiver = Receiver {
        resp: 3,
        pubsub: false,
    };

    #[test]
    fn off_clients_deliver_nothing() {
        assert_eq!(route(false, 5, R3, Some(R3)), Delivery::Off);
    }

    #[test]
    fn without_redirect_only_resp3_receives_pushes() {
        assert_eq!(route(true, 0, R3, None), Delivery::SelfPush);
        assert_eq!(route(true, 0, R2, None), Delivery::Dropped);
    }

    #[test]
    fn a_redirect_target_must_be_resp3_or_subscribed() {
        assert_eq!(route(true, 9, R2, Some(R3)), Delivery::Redirect);
        assert_eq!(route(true, 9, R2, Some(R2_SUB)), Delivery::Redirect);
        assert_eq!(route(true, 9, R3, Some(R2)), Delivery::Dropped);
    }

    #[test]
    fn a_vanished_redirect_target_drops_everything() {
        assert_eq!(route(true, 9, R3, None), Delivery::Dropped);
    }
}
