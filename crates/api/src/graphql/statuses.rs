//! Stripe's statuses and kinds as GraphQL enums. Stripe adds values over time: one this API
//! does not know yet is `OTHER`, and the object's `raw…` field carries what Stripe sent (the
//! database keeps the raw value, so a later release maps it without a replay).

use async_graphql::Enum;

macro_rules! stripe_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[doc = $vdoc:literal])* $variant:ident = $raw:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
        pub enum $name {
            $($(#[doc = $vdoc])* $variant,)+
            /// A value this API does not know yet; the object's raw field holds Stripe's.
            Other,
        }

        impl $name {
            pub fn from_stripe(raw: &str) -> Self {
                match raw {
                    $($raw => $name::$variant,)+
                    _ => $name::Other,
                }
            }
        }
    };
}

stripe_enum! {
    /// A card's status.
    CardStatus {
        /// It can be used.
        Active = "active",
        /// Authorizations are declined until it is activated.
        Inactive = "inactive",
        /// For good.
        Canceled = "canceled",
    }
}

stripe_enum! {
    /// A cardholder's status.
    CardholderStatus {
        Active = "active",
        Inactive = "inactive",
        /// Stripe blocked them (e.g. after too many disputes); their cards decline.
        Blocked = "blocked",
    }
}

stripe_enum! {
    /// Where an authorization stands at Stripe.
    AuthorizationStatus {
        /// Funds are held; it may still be captured.
        Pending = "pending",
        /// Captured, or declined.
        Closed = "closed",
        /// Released by the merchant.
        Reversed = "reversed",
        /// Released after its hold ran out.
        Expired = "expired",
    }
}

stripe_enum! {
    /// Where a dispute stands.
    DisputeStatus {
        Unsubmitted = "unsubmitted",
        Submitted = "submitted",
        Won = "won",
        Lost = "lost",
        Expired = "expired",
    }
}

stripe_enum! {
    /// What a transaction did to the card.
    TransactionKind {
        /// A purchase: spend goes up.
        Capture = "capture",
        /// Money back: spend goes down.
        Refund = "refund",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_other_and_known_ones_map() {
        assert_eq!(CardStatus::from_stripe("canceled"), CardStatus::Canceled);
        assert_eq!(CardStatus::from_stripe("lost_in_space"), CardStatus::Other);
        assert_eq!(
            TransactionKind::from_stripe("refund"),
            TransactionKind::Refund
        );
        assert_eq!(DisputeStatus::from_stripe(""), DisputeStatus::Other);
    }
}
