//! Who is asking: passwords, signed tokens, login rate limits, the client's address behind
//! proxies, and the viewer every resolver checks access against.

mod passwords;
mod proxies;
mod rate_limit;
mod sessions;
mod tokens;
mod viewer;

pub(crate) use passwords::Passwords;
pub use passwords::{hash_password, verify_password};
pub use proxies::{BadProxyRange, TrustedProxies};
pub(crate) use rate_limit::LoginLimiter;
pub(crate) use sessions::{SessionChange, Sessions};
pub use tokens::Tokens;
pub(crate) use tokens::{Credentials, now_seconds};
pub(crate) use viewer::Viewer;
