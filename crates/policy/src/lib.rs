//! The authorization decision policy.
//!
//! Stripe asks cardstream to approve or decline every authorization and waits at most two
//! seconds. The decision is therefore a pure function of the request and an in-memory
//! [`Policy`]; nothing here waits on I/O. The policy is loaded from a file and/or the
//! environment, or from the row an admin saved ([`StoredPolicy`]), and swapped atomically when
//! it changes ([`PolicyStore`]).

mod decide;
mod policy;
mod reload;
mod stored;
mod watch;

pub use decide::{
    Decision, Limits, NoSpendData, Reason, Request, Rules, Spend, SpendView, check_rules, decide,
    spend_unknown,
};
pub use policy::{FailMode, Policy};
pub use reload::{PolicyArgs, PolicyStore};
pub use stored::StoredPolicy;
pub use watch::watch_file;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the policy file {path} is not valid TOML for a policy: {message}")]
    Parse {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("the policy is invalid: {0}")]
    Invalid(String),
    #[error(
        "the policy saved in the database (version {version}) is not a valid policy: {message}"
    )]
    Stored { version: i64, message: String },
}
