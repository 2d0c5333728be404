//! Stripe's string enums. Stripe adds values over time, so every enum keeps values it does not
//! know as `Other(String)` instead of failing to parse, and round-trips them unchanged.

/// Declares a string enum with known variants and an `Other(String)` catch-all.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version of cardstream does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok($name::from(s.as_ref()))
            }
        }
    };
}

string_enum!(
    /// `issuing.authorization.status`.
    AuthorizationStatus {
        Pending => "pending",
        Closed => "closed",
        Reversed => "reversed",
        Expired => "expired",
    }
);

string_enum!(
    /// `issuing.transaction.type`.
    TransactionType {
        Capture => "capture",
        Refund => "refund",
    }
);

string_enum!(
    /// `issuing.card.status`.
    CardStatus {
        Active => "active",
        Inactive => "inactive",
        Canceled => "canceled",
    }
);

string_enum!(
    /// `issuing.cardholder.status`.
    CardholderStatus {
        Active => "active",
        Inactive => "inactive",
        Blocked => "blocked",
    }
);

string_enum!(
    /// `issuing.dispute.status`.
    DisputeStatus {
        Unsubmitted => "unsubmitted",
        Submitted => "submitted",
        Won => "won",
        Lost => "lost",
        Expired => "expired",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_round_trip() {
        let s: CardStatus = serde_json::from_str("\"frozen\"").unwrap();
        assert_eq!(s, CardStatus::Other("frozen".into()));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"frozen\"");
        let s: CardStatus = serde_json::from_str("\"active\"").unwrap();
        assert_eq!(s, CardStatus::Active);
    }
}
