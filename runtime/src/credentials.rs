//! What a client proves to a server: PLAIN credentials and CURVE keys.
//! Sans-IO, shared by the client core (which keeps them for its next
//! connection) and the reactor (which applies them to a socket); their
//! `Debug` never prints a secret.

use std::fmt;

/// CURVE keys for a client's connections: the server's public key (which
/// it must know) and our own pair, each as Z85 text (40 characters).
#[derive(Clone, PartialEq, Eq)]
pub struct CurveClient {
    /// The server's public key, Z85.
    pub server_key: String,
    /// Our public key, Z85.
    pub public_key: String,
    /// Our secret key, Z85.
    pub secret_key: String,
}

impl fmt::Debug for CurveClient {
    // Never print a secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveClient")
            .field("server_key", &self.server_key)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// A username and password for the PLAIN mechanism, as a client gives it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never a password in a log.
        f.debug_struct("PlainCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}
