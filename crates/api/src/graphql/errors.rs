//! GraphQL errors with a machine-readable `code` extension.

use async_graphql::ErrorExtensions;

/// Every error a resolver returns. The code goes to `extensions.code`; internal failures are
/// logged and reported without their details.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sign in first: send `Authorization: Bearer <token>` from the login mutation")]
    Unauthenticated,
    #[error("this needs the admin role")]
    Forbidden,
    #[error("no {0} with that id (or it is not yours to see)")]
    NotFound(&'static str),
    #[error("{0}")]
    BadUserInput(String),
    #[error("too many failed sign-ins; try again in {0} s")]
    RateLimited(u64),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error; it has been logged")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::BadUserInput(_) => "BAD_USER_INPUT",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<cardstream_store::Error> for ApiError {
    fn from(err: cardstream_store::Error) -> Self {
        match err {
            cardstream_store::Error::Conflict(message) => ApiError::Conflict(message),
            cardstream_store::Error::NotFound(what) => ApiError::NotFound(what),
            other => {
                tracing::error!(error = %other, "database error in a resolver");
                ApiError::Internal(other.to_string())
            }
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let code = self.code();
        let retry = match self {
            ApiError::RateLimited(seconds) => Some(*seconds),
            _ => None,
        };
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", code);
            if let Some(seconds) = retry {
                extensions.set("retryAfterSeconds", seconds);
            }
        })
    }
}

/// Result type of the helpers resolvers call; resolvers turn it into GraphQL errors with
/// `async_graphql::ResultExt::extend`.
pub type ApiResult<T> = Result<T, ApiError>;
