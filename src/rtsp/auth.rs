//! RTSP authentication: Basic and Digest (RFC 2617 / RFC 7616, MD5).
// STUB: replaced by the auth brief.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({:?}, ***)", self.username)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The camera asks for credentials and none are configured.
    NoCredentials,
    /// No challenge with a scheme we support.
    Unsupported(String),
    /// The camera refused the credentials we sent.
    Rejected,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::NoCredentials => {
                f.write_str("authentication required but no username/password configured")
            }
            AuthError::Unsupported(s) => write!(f, "authentication scheme not supported: {s}"),
            AuthError::Rejected => f.write_str("authentication failed: wrong username or password"),
        }
    }
}

impl std::error::Error for AuthError {}

pub struct Authenticator {
    _creds: Option<Credentials>,
}

impl Authenticator {
    pub fn new(creds: Option<Credentials>) -> Self {
        Authenticator { _creds: creds }
    }

    /// Takes the `WWW-Authenticate` values of a 401 response.
    pub fn on_unauthorized(&mut self, _challenges: &[&str]) -> Result<(), AuthError> {
        Err(AuthError::Unsupported("stub".into()))
    }

    /// The `Authorization` value for a request, once challenged.
    pub fn authorization(&mut self, _method: &str, _uri: &str) -> Option<String> {
        None
    }
}
