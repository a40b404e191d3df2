//! CURVE certificates in CZMQ's zcert file format, so that keys made with
//! CZMQ's tools load here and ours load there.
//!
//! A certificate is two ZPL files: `NAME` holds the public key, for anyone;
//! `NAME_secret` holds both keys and is written readable by its owner only.
//!
//! ```text
//! #   ZeroMQ CURVE Public Certificate
//! metadata
//! curve
//!     public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//! ```
//!
//! (the secret file adds `secret-key = "..."` under `curve`). Keys are Z85
//! text, 40 characters for 32 bytes.

use std::path::{Path, PathBuf};

use crate::zpl::Zpl;

/// A CURVE key pair, or a public key alone.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The public key, Z85 (40 characters).
    pub public: String,
    /// The secret key, Z85, if this is a secret certificate.
    pub secret: Option<String>,
}

impl std::fmt::Debug for Certificate {
    // Never print a secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("public", &self.public)
            .field("secret", &self.secret.as_ref().map(|_| "(secret)"))
            .finish()
    }
}

/// Why a certificate could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// libzmq could not make keys (built without CURVE).
    #[error("cannot generate CURVE keys: {0}")]
    Generate(zmq::Error),
    /// A file could not be read or written.
    #[error("certificate {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A public certificate where a secret one is needed, or a server key
    /// that is not a CURVE key.
    #[error("{0}")]
    Keys(&'static str),
    /// A file is not a certificate.
    #[error("certificate {path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// A cert file is small: refuse to read anything large.
const MAX_FILE: u64 = 64 * 1024;

/// Whether `key` is a Z85 CURVE key: 40 characters that decode to 32 bytes.
fn is_key(key: &str) -> bool {
    key.len() == 40 && zmq::z85_decode(key).is_ok_and(|bytes| bytes.len() == 32)
}

/// The secret file of the certificate at `path`: `path` + `_secret`.
pub fn secret_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("_secret");
    PathBuf::from(name)
}

/// The most entries an allow-list directory may hold.
pub const MAX_ALLOW_ENTRIES: usize = 100_000;

/// The public keys of every certificate in `dir` (its `_secret` files
/// left out): an allow-list, as CZMQ's zauth reads one. Each file is read
/// as [`Certificate::load`] reads one; a directory of more than
/// [`MAX_ALLOW_ENTRIES`] entries is refused.
pub fn public_keys_in(dir: &Path) -> Result<std::collections::HashSet<String>, CertError> {
    let unreadable = |reason: String| CertError::File {
        path: dir.to_owned(),
        reason,
    };
    let mut keys = std::collections::HashSet::new();
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(e.to_string()))?;
    for (n, entry) in entries.enumerate() {
        if n >= MAX_ALLOW_ENTRIES {
            return Err(unreadable(format!("more than {MAX_ALLOW_ENTRIES} entries")));
        }
        let path = entry.map_err(|e| unreadable(e.to_string()))?.path();
        // Directories are skipped; anything else must be a certificate
        // (a device or a FIFO is refused by the bounded read, not skipped).
        if path.is_dir() || path.to_string_lossy().ends_with("_secret") {
            continue;
        }
        keys.insert(Certificate::load(&path)?.public);
    }
    Ok(keys)
}

impl Certificate {
    /// A new key pair.
    pub fn generate() -> Result<Self, CertError> {
        let pair = zmq::CurveKeyPair::new().map_err(CertError::Generate)?;
        let z85 =
            |key: &[u8]| zmq::z85_encode(key).map_err(|_| CertError::Generate(zmq::Error::EINVAL));
        Ok(Self {
            public: z85(&pair.public_key)?,
            secret: Some(z85(&pair.secret_key)?),
        })
    }

    /// The certificate at `path`: its public key, and the secret one if
    /// `path` is a secret file (or has a `_secret` file beside it that can
    /// be read), as CZMQ's `zcert_load` does.
    pub fn load(path: &Path) -> Result<Self, CertError> {
        let secret_file = if path.to_string_lossy().ends_with("_secret") {
            Some(path.to_owned())
        } else {
            Some(secret_path(path)).filter(|p| p.exists())
        };
        match secret_file {
            Some(file) => Self::read(&file, true),
            None => Self::read(path, false),
        }
    }

    fn read(path: &Path, secret: bool) -> Result<Self, CertError> {
        let file_error = |reason: String| CertError::File {
            path: path.to_owned(),
            reason,
        };
        let invalid = |problem: String| CertError::Invalid {
            path: path.to_owned(),
            problem,
        };
        let text = crate::zpl::read_small_file(path, MAX_FILE).map_err(file_error)?;
        let zpl = Zpl::parse(&text).map_err(|e| invalid(e.to_string()))?;
        let key = |name: &str| -> Result<String, CertError> {
            let value = zpl
                .get(&format!("curve/{name}"))
                .ok_or_else(|| invalid(format!("no curve/{name}")))?;
            if is_key(value) {
                Ok(value.to_owned())
            } else {
                Err(invalid(format!(
                    "curve/{name} is not a Z85 key of 40 characters"
                )))
            }
        };
        Ok(Self {
            public: key("public-key")?,
            secret: if secret {
                Some(key("secret-key")?)
            } else {
                None
            },
        })
    }

    /// The keys a client connects with to the CURVE server whose public
    /// key is `server_key` (Z85): ours, which must include the secret one.
    pub fn curve_client(
        &self,
        server_key: &str,
    ) -> Result<crate::credentials::CurveClient, CertError> {
        if !is_key(server_key) {
            return Err(CertError::Keys("the server key is not a Z85 CURVE key"));
        }
        let secret = self.secret.clone().ok_or(CertError::Keys(
            "a public certificate has no secret key to connect with",
        ))?;
        Ok(crate::credentials::CurveClient {
            server_key: server_key.to_owned(),
            public_key: self.public.clone(),
            secret_key: secret,
        })
    }

    /// Write the public certificate to `path` and, if this one has its
    /// secret key, the secret certificate to `path_secret`, readable by its
    /// owner only.
    pub fn save(&self, path: &Path) -> Result<(), CertError> {
        let write = |file: &Path, text: String, private: bool| {
            let error = |e: std::io::Error| CertError::File {
                path: file.to_owned(),
                reason: e.to_string(),
            };
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            if private {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            use std::io::Write;
            options
                .open(file)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(error)
        };
        let public = format!(
            "#   ZeroMQ CURVE Public Certificate (written by zproto-rs)\n\
             #   Exchange securely, or verify its contents after exchange.\n\
             \n\
             metadata\n\
             curve\n    public-key = \"{}\"\n",
            self.public
        );
        write(path, public, false)?;
        if let Some(secret) = &self.secret {
            let text = format!(
                "#   ZeroMQ CURVE **Secret** Certificate (written by zproto-rs)\n\
                 #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\
                 \n\
                 metadata\n\
                 curve\n    public-key = \"{}\"\n    secret-key = \"{secret}\"\n",
                self.public
            );
            write(&secret_path(path), text, true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_saves_and_loads_in_both_halves() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("node.cert");
        let cert = Certificate::generate().expect("keys");
        cert.save(&path).expect("saved");
        assert_eq!(
            Certificate::load(&path).expect("loads"),
            cert,
            "with its secret file"
        );
        assert_eq!(Certificate::load(&secret_path(&path)).expect("loads"), cert);
        std::fs::remove_file(secret_path(&path)).expect("remove");
        let public = Certificate::load(&path).expect("loads");
        assert_eq!(public.public, cert.public);
        assert_eq!(public.secret, None);
        assert!(!format!("{cert:?}").contains(cert.secret.as_deref().unwrap_or("?")));
    }

    #[test]
    fn czmqs_format_loads_and_bad_files_say_why() {
        let dir = tempfile::tempdir().expect("temp dir");
        // As CZMQ's zcert_save writes it (with metadata).
        let czmq = "#   ****  Generated on 2026-11-23 10:00:00 by CZMQ  ****\n\
                    #   ZeroMQ CURVE **Secret** Certificate\n\
                    #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\
                    \n\
                    metadata\n    name = \"alpha\"\n\
                    curve\n    public-key = \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"\n\
                    \x20   secret-key = \"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs\"\n";
        let path = dir.path().join("alpha.cert_secret");
        std::fs::write(&path, czmq).expect("write");
        let cert = Certificate::load(&path).expect("CZMQ's format");
        assert_eq!(cert.public, "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID");
        assert!(cert.secret.is_some());

        let bad = dir.path().join("bad.cert");
        std::fs::write(&bad, "curve\n    public-key = \"short\"\n").expect("write");
        let err = Certificate::load(&bad).unwrap_err().to_string();
        assert!(err.contains("curve/public-key is not a Z85 key"), "{err}");
        std::fs::write(&bad, "metadata\n").expect("write");
        let err = Certificate::load(&bad).unwrap_err().to_string();
        assert!(err.contains("no curve/public-key"), "{err}");
        let err = Certificate::load(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, CertError::File { .. }), "{err}");
    }
}
