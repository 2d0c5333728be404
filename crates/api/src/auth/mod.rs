//! Who is asking: passwords, signed tokens, login rate limits, and the viewer every resolver
//! checks access against.

mod passwords;
mod rate_limit;
mod tokens;
mod viewer;

pub(crate) use passwords::Passwords;
pub use passwords::{hash_password, verify_password};
pub(crate) use rate_limit::LoginLimiter;
pub use tokens::Tokens;
pub(crate) use viewer::Viewer;
