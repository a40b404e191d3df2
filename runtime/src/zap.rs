//! ZAP (rfc.zeromq.org/spec/27), the ZeroMQ authentication protocol: who
//! may connect to a server, decided per ZAP domain. libzmq asks the handler
//! bound at `inproc://zeromq.zap.01` in its context; this module runs that
//! handler, once per process (the process has one context, [`crate::reactor`]),
//! on a thread of its own, and dispatches each request to the policy
//! installed for its domain:
//!
//! * [`Policy::Null`]: anyone (NULL mechanism with a domain set);
//! * [`Policy::Plain`]: a username and password from a passwords file, in
//!   the format CZMQ's `zauth` reads (`user=password` lines, `#` comments);
//! * [`Policy::Curve`]: clients whose CURVE public key is on an allow-list
//!   (CZMQ's `zauth` reads it from a directory of public certificates);
//!   [`Policy::CurveAny`]: any CURVE client.
//!   CURVE needs a libzmq built with libsodium ([`curve_available`]; ours
//!   is): where it is missing, asking for it is an error, never a silent
//!   fallback to plain text.
//!
//! A request for a domain with no policy is refused (status 400): a server
//! that asked for authentication never lets everyone in by mistake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Who may connect in one ZAP domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Anyone.
    Null,
    /// These usernames, with these passwords.
    Plain(HashMap<String, String>),
    /// Clients with these CURVE public keys (Z85).
    Curve(std::collections::HashSet<String>),
    /// Any CURVE client: the handshake proves it knows the server's public
    /// key, and the link is encrypted, but clients are not authenticated
    /// (CZMQ's `zauth` `CURVE ALLOW_ANY`).
    CurveAny,
}

/// Why a policy could not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZapError {
    /// The passwords file could not be read.
    #[error("passwords file {file}: {reason}")]
    Passwords {
        /// The file.
        file: PathBuf,
        /// What is wrong, with its line where it has one.
        reason: String,
    },
    /// The handler could not be bound.
    #[error("cannot start the ZAP handler: {0}")]
    Handler(String),
    /// CURVE is not in the linked libzmq.
    #[error("CURVE security needs a libzmq built with libsodium; this one has no CURVE (zmq_has(\"curve\") is false)")]
    NoCurve,
}

/// Largest passwords file read: it is input too.
const MAX_PASSWORDS: u64 = 1 << 20;

/// Whether the linked libzmq can do CURVE.
pub fn curve_available() -> bool {
    zmq::has("curve").unwrap_or(false)
}

/// Read a passwords file in zauth's format: `user=password` per line;
/// blank lines and `#` comments are skipped.
pub fn load_passwords(file: &Path) -> Result<HashMap<String, String>, ZapError> {
    let fail = |reason: String| ZapError::Passwords {
        file: file.to_owned(),
        reason,
    };
    let text = crate::zpl::read_small_file(file, MAX_PASSWORDS).map_err(fail)?;
    let mut users = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once('=') else {
            return Err(fail(format!("line {}: expected user=password", number + 1)));
        };
        users.insert(user.trim().to_owned(), password.trim().to_owned());
    }
    Ok(users)
}

type Policies = Mutex<HashMap<String, Policy>>;

fn policies() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(Policies::default)
}

/// Install `policy` for `domain` (replacing any), starting the process's
/// ZAP handler on first use.
pub fn install(domain: &str, policy: Policy) -> Result<(), ZapError> {
    start_handler()?;
    policies()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(domain.to_owned(), policy);
    Ok(())
}

fn start_handler() -> Result<(), ZapError> {
    static STARTED: OnceLock<Result<(), ZapError>> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let handler =
                crate::reactor::socket(zmq::REP).map_err(|e| ZapError::Handler(e.to_string()))?;
            handler
                .bind("inproc://zeromq.zap.01")
                .map_err(|e| ZapError::Handler(e.to_string()))?;
            std::thread::Builder::new()
                .name("zproto-zap".into())
                .spawn(move || serve(&handler))
                .map_err(|e| ZapError::Handler(e.to_string()))?;
            Ok(())
        })
        .clone()
}

/// Answer requests for as long as the process lives.
fn serve(handler: &zmq::Socket) {
    // Refusals are logged at most ten a second: a peer retrying with a
    // wrong key must not flood the log.
    let mut throttle = crate::throttle::Throttle::default();
    loop {
        let request = match handler.recv_multipart(0) {
            Ok(request) => request,
            Err(zmq::Error::EINTR) => continue,
            Err(e) => {
                tracing::error!("ZAP handler stopped: {e}");
                return;
            }
        };
        let (reply, refused) = answer(&request);
        if let Some(why) = refused {
            if let Some(suppressed) = throttle.allow(std::time::Instant::now()) {
                let address =
                    String::from_utf8_lossy(request.get(3).map_or(&[][..], Vec::as_slice));
                let domain = String::from_utf8_lossy(request.get(2).map_or(&[][..], Vec::as_slice));
                tracing::warn!(
                    "peer {address} refused (ZAP domain \"{domain}\"): {why}{}",
                    if suppressed > 0 {
                        format!(" ({suppressed} more refusals not logged)")
                    } else {
                        String::new()
                    }
                );
            }
        }
        if let Err(e) = handler.send_multipart(reply, 0) {
            tracing::warn!("ZAP reply not sent: {e}");
        }
    }
}

/// The reply to one request (version, request id, status code and text,
/// user id, metadata), and why the peer was refused, if it was.
fn answer(request: &[Vec<u8>]) -> (Vec<Vec<u8>>, Option<String>) {
    let frame = |i: usize| request.get(i).map(Vec::as_slice).unwrap_or_default();
    let request_id = frame(1).to_vec();
    let reply = |code: &str, text: &str, user: &str| {
        vec![
            b"1.0".to_vec(),
            request_id.clone(),
            code.as_bytes().to_vec(),
            text.as_bytes().to_vec(),
            user.as_bytes().to_vec(),
            Vec::new(),
        ]
    };
    let refuse = |code: &str, text: &str, why: String| (reply(code, text, ""), Some(why));
    if frame(0) != b"1.0" {
        return refuse(
            "500",
            "unsupported ZAP version",
            "unsupported ZAP version".into(),
        );
    }
    let domain = String::from_utf8_lossy(frame(2)).into_owned();
    let mechanism = frame(5);
    // Decided under the lock, on the policy in place: nothing is copied
    // per request.
    let policies = policies()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match (policies.get(&domain), mechanism) {
        (Some(Policy::Null), b"NULL") => (reply("200", "OK", ""), None),
        (Some(Policy::Plain(users)), b"PLAIN") => {
            let user = String::from_utf8_lossy(frame(6));
            let known = users.get(user.as_ref());
            if known.is_some_and(|password| same_secret(password.as_bytes(), frame(7))) {
                (reply("200", "OK", &user), None)
            } else {
                refuse(
                    "400",
                    "invalid username or password",
                    format!(
                        "PLAIN user \"{}\": wrong user name or password",
                        user.escape_debug()
                    ),
                )
            }
        }
        (Some(Policy::Curve(allowed)), b"CURVE") => {
            // The client's public key, 32 bytes, as Z85 to compare.
            let key = zmq::z85_encode(frame(6)).unwrap_or_default();
            if frame(6).len() == 32 && allowed.contains(&key) {
                (reply("200", "OK", &key), None)
            } else {
                refuse(
                    "400",
                    "public key not allowed",
                    format!("CURVE key {key} is not on the allow-list"),
                )
            }
        }
        (Some(Policy::CurveAny), b"CURVE") => {
            let key = zmq::z85_encode(frame(6)).unwrap_or_default();
            (reply("200", "OK", &key), None)
        }
        (None, _) => refuse(
            "400",
            "no policy for this ZAP domain",
            "no policy for this ZAP domain".into(),
        ),
        (Some(_), _) => refuse(
            "400",
            "mechanism not allowed in this ZAP domain",
            format!(
                "mechanism {} not allowed here",
                String::from_utf8_lossy(mechanism)
            ),
        ),
    }
}

/// Compare secrets in time that depends on their lengths only, not on
/// where they first differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_files_as_zauth_reads_them() {
        let file = std::env::temp_dir().join(format!("zap-passwords-{}", std::process::id()));
        std::fs::write(&file, "# comment\nreader=secret\n\nwriter = other\n").unwrap();
        let users = load_passwords(&file).unwrap();
        assert_eq!(users.get("reader").map(String::as_str), Some("secret"));
        assert_eq!(users.get("writer").map(String::as_str), Some("other"));
        std::fs::write(&file, "reader=secret\nnonsense\n").unwrap();
        let err = load_passwords(&file).unwrap_err().to_string();
        assert!(err.ends_with("line 2: expected user=password"), "{err}");
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn requests_are_answered_by_their_domains_policy() {
        let mut users = HashMap::new();
        users.insert("reader".to_owned(), "secret".to_owned());
        policies()
            .lock()
            .unwrap()
            .insert("zap-test-plain".into(), Policy::Plain(users));
        let request = |domain: &str, mechanism: &str, creds: &[&str]| {
            let mut frames: Vec<Vec<u8>> = ["1.0", "7", domain, "127.0.0.1", "", mechanism]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
            frames.extend(creds.iter().map(|s| s.as_bytes().to_vec()));
            String::from_utf8(answer(&frames).0[2].clone()).unwrap()
        };
        assert_eq!(
            request("zap-test-plain", "PLAIN", &["reader", "secret"]),
            "200"
        );
        assert_eq!(
            request("zap-test-plain", "PLAIN", &["reader", "wrong"]),
            "400"
        );
        assert_eq!(request("zap-test-plain", "NULL", &[]), "400");
        assert_eq!(request("zap-test-unknown", "NULL", &[]), "400");
        assert_eq!(answer(&[b"2.0".to_vec()]).0[2], b"500");

        let keys = zmq::CurveKeyPair::new().unwrap();
        let allowed = zmq::z85_encode(&keys.public_key).unwrap();
        policies().lock().unwrap().insert(
            "zap-test-curve".into(),
            Policy::Curve([allowed].into_iter().collect()),
        );
        let curve = |key: &[u8]| {
            let mut frames: Vec<Vec<u8>> = ["1.0", "8", "zap-test-curve", "127.0.0.1", "", "CURVE"]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect();
            frames.push(key.to_vec());
            answer(&frames).0[2].clone()
        };
        assert_eq!(curve(&keys.public_key), b"200");
        let other = zmq::CurveKeyPair::new().unwrap();
        assert_eq!(curve(&other.public_key), b"400");
        assert_eq!(curve(b"short"), b"400");
    }
}
