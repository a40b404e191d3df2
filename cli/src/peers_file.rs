//! zmqnet's peers file: the replicas of a cluster, one of which is us.
//!
//! ```json
//! {"info": {"cluster": "demo"},
//!  "replicas": [
//!    {"pid": 1, "name": "alpha", "address": "", "host": "a.example", "ipaddr": "10.0.0.1", "port": 5670},
//!    {"pid": 2, "name": "beta", "host": "b.example", "port": 5670}]}
//! ```
//!
//! `zgossip node --peers FILE --name NAME` (FILE also from `$PEERS_PATH`)
//! binds the port of the replica called NAME (on its IPADDR if the file
//! gives one, else on every interface) and connects to every other replica
//! at `tcp://IPADDR:PORT` (or HOST, or ADDRESS, the first one given). `info` and `pid` are read and left alone.
//! libzmq retries a connection that fails, with backoff (see
//! [`zgossip::RECONNECT_MAX`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What the file says this node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where to accept peers.
    pub bind: String,
    /// The other replicas' endpoints, in file order.
    pub connect: Vec<String>,
}

/// Why a peers file could not be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PeersFileError {
    /// The file could not be read.
    #[error("peers file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: zproto_runtime::file::FileError,
    },
    /// The file is not a peers file (JSON syntax, or a field missing or of
    /// the wrong type), at a line and column.
    #[error("peers file {path}, line {line} column {column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// A replica the file lists is unusable.
    #[error("peers file {path}, replica {index} (\"{name}\"): {problem}")]
    Replica {
        /// The file.
        path: PathBuf,
        /// Its position in `replicas`, from 0.
        index: usize,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// No replica has our name.
    #[error("peers file {path}: no replica is called \"{name}\" (the file has: {known})")]
    UnknownName {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names the file has.
        known: String,
    },
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    #[allow(dead_code)]
    info: serde_json::Value,
    replicas: Vec<Replica>,
}

#[derive(Deserialize)]
struct Replica {
    #[serde(default)]
    #[allow(dead_code)]
    pid: serde_json::Value,
    name: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    ipaddr: Option<String>,
    port: u16,
}

impl Replica {
    /// Where to reach it: the first of ipaddr, host and address given.
    fn host(&self) -> Option<&str> {
        [&self.ipaddr, &self.host, &self.address]
            .into_iter()
            .flatten()
            .map(|h| h.trim())
            .find(|h| !h.is_empty())
    }
}

/// `host` as an endpoint's host part (an IPv6 address in brackets), or
/// `None` if it is not a plain host name or address.
fn checked(host: &str) -> Option<String> {
    if host.is_empty() || host.contains(['/', ' ', '*']) {
        return None;
    }
    if host.contains(':') && !host.starts_with('[') {
        Some(format!("[{host}]"))
    } else {
        Some(host.to_owned())
    }
}

/// The largest peers file read: some 100,000 hosts.
pub const MAX_PEERS_FILE: u64 = 16 << 20;

/// Read `path` (a regular file of at most [`MAX_PEERS_FILE`] bytes) and
/// plan the node called `name`.
pub fn load(path: &Path, name: &str) -> Result<Plan, PeersFileError> {
    let text = zproto_runtime::file::read_text(path, MAX_PEERS_FILE).map_err(|source| {
        PeersFileError::Read {
            path: path.to_owned(),
            source,
        }
    })?;
    parse(&text, path, name)
}

/// [`load`], from the file's text.
pub fn parse(text: &str, path: &Path, name: &str) -> Result<Plan, PeersFileError> {
    let file: File = serde_json::from_str(text).map_err(|e| PeersFileError::Parse {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let problem = |index: usize, replica: &Replica, problem| PeersFileError::Replica {
        path: path.to_owned(),
        index,
        name: replica.name.clone(),
        problem,
    };
    let mut bind = None;
    let mut connect = Vec::new();
    for (index, replica) in file.replicas.iter().enumerate() {
        if replica.port == 0 {
            return Err(problem(
                index,
                replica,
                "port 0 is not a port to bind or reach",
            ));
        }
        if file.replicas[..index]
            .iter()
            .any(|r| r.name == replica.name)
        {
            return Err(problem(index, replica, "a second replica with this name"));
        }
        if replica.name == name {
            let on = match replica.ipaddr.as_deref().map(str::trim) {
                Some(ip) if !ip.is_empty() => checked(ip)
                    .ok_or_else(|| problem(index, replica, "its ipaddr is not an address"))?,
                _ => "*".to_owned(),
            };
            bind = Some(format!("tcp://{on}:{}", replica.port));
            continue;
        }
        let Some(host) = replica.host() else {
            return Err(problem(index, replica, "it has no ipaddr, host or address"));
        };
        let Some(host) = checked(host) else {
            return Err(problem(
                index,
                replica,
                "its host is not a host name or address",
            ));
        };
        connect.push(format!("tcp://{host}:{}", replica.port));
    }
    let Some(bind) = bind else {
        let known: Vec<&str> = file.replicas.iter().map(|r| r.name.as_str()).collect();
        return Err(PeersFileError::UnknownName {
            path: path.to_owned(),
            name: name.to_owned(),
            known: known.join(", "),
        });
    };
    Ok(Plan { bind, connect })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"info": {"cluster": "demo", "version": 1},
        "replicas": [
          {"pid": 101, "name": "alpha", "address": "", "host": "a.example", "ipaddr": "10.0.0.1", "port": 5670},
          {"pid": 102, "name": "beta", "host": "b.example", "port": 5671},
          {"name": "gamma", "ipaddr": "fd00::3", "port": 5672}
        ]}"#;

    fn plan(text: &str, name: &str) -> Result<Plan, PeersFileError> {
        parse(text, Path::new("peers.json"), name)
    }

    #[test]
    fn a_replica_binds_its_port_and_connects_to_the_others() {
        assert_eq!(
            plan(FILE, "beta").unwrap(),
            Plan {
                bind: "tcp://*:5671".into(),
                connect: vec!["tcp://10.0.0.1:5670".into(), "tcp://[fd00::3]:5672".into()],
            }
        );
        let alpha = plan(FILE, "alpha").unwrap();
        assert_eq!(alpha.bind, "tcp://10.0.0.1:5670", "on its own address");
        assert_eq!(alpha.connect[0], "tcp://b.example:5671");
        assert_eq!(plan(FILE, "gamma").unwrap().bind, "tcp://[fd00::3]:5672");
    }

    #[test]
    fn bad_files_get_located_errors() {
        let err = plan(FILE, "delta").unwrap_err().to_string();
        assert_eq!(
            err,
            "peers file peers.json: no replica is called \"delta\" (the file has: alpha, beta, gamma)"
        );
        let err = plan(
            "{\"replicas\": [\n {\"name\": \"a\", \"port\": 70000}]}",
            "a",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("peers file peers.json, line 2 column "),
            "{err}"
        );
        let err = plan("{\"replicas\": [{\"name\": \"a\"}]}", "a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `port`"), "{err}");
        let err = plan("not json", "a").unwrap_err().to_string();
        assert!(
            err.starts_with("peers file peers.json, line 1 column 2"),
            "{err}"
        );
        let twice = r#"{"replicas": [{"name": "a", "port": 1, "host": "x"}, {"name": "a", "port": 2, "host": "y"}]}"#;
        let err = plan(twice, "a").unwrap_err().to_string();
        assert!(err.contains("replica 1 (\"a\"): a second replica"), "{err}");
        let nowhere = r#"{"replicas": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}"#;
        let err = plan(nowhere, "a").unwrap_err().to_string();
        assert!(
            err.contains("replica 1 (\"b\"): it has no ipaddr, host or address"),
            "{err}"
        );
        let forged = r#"{"replicas": [{"name": "a", "port": 1}, {"name": "b", "port": 2, "host": "ipc:///x"}]}"#;
        assert!(plan(forged, "a").is_err());
        let zero = r#"{"replicas": [{"name": "a", "port": 0}]}"#;
        assert!(plan(zero, "a").unwrap_err().to_string().contains("port 0"));
    }
}
