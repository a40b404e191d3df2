//! `zgossip node --config FILE`: a node's settings, binds, connections and
//! announcements in ZPL, the format CZMQ's `LOAD` reads (parsed by the one
//! ZPL parser of `zproto_runtime::zpl`, the server host's too).
//!
//! ```text
//! server
//!     timeout = 5000            # any SET path: server/..., remote/..., limits/...
//! zgossip
//!     bind
//!         endpoint = tcp://*:5670
//!     connect
//!         endpoint = tcp://10.0.0.1:5670
//!     announce
//!         tuple
//!             endpoint = tcp://10.0.0.5:9000
//!             service = printer
//! ```
//!
//! Every value under `zgossip/` other than these is an error, as is any
//! setting the node refuses; each error names its line.

use std::path::Path;

use zproto_runtime::zpl::{self, Zpl, ZplNode};

use zgossip::Node;

/// Largest config file read: a file is hostile input too.
pub const MAX_CONFIG: u64 = 1 << 20;

/// A config file's problem, with its line (0 when the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// What a config file says, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeConfig {
    /// `SET` paths and values, each with its line.
    pub settings: Vec<(String, String, usize)>,
    /// Endpoints to bind, with lines.
    pub bind: Vec<(String, usize)>,
    /// Endpoints to connect to, with lines.
    pub connect: Vec<(String, usize)>,
    /// Tuples to announce (endpoint, service), with lines.
    pub announce: Vec<(String, String, usize)>,
}

impl NodeConfig {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = zpl::read_small_file(path, MAX_CONFIG).map_err(|message| ConfigError {
            file: file.clone(),
            line: 0,
            message,
        })?;
        Self::parse(&text).map_err(|(line, message)| ConfigError {
            file,
            line,
            message,
        })
    }

    /// Parse ZPL text; an error is (line, message).
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let doc = Zpl::parse(text).map_err(|e| (e.line, format!("{}: {}", e.column, e.message)))?;
        let mut config = NodeConfig::default();
        for root in &doc.roots {
            if root.name == "zgossip" {
                config.read_node_section(root)?;
            } else {
                collect_settings(root, &root.name, &mut config.settings);
            }
        }
        Ok(config)
    }

    fn read_node_section(&mut self, section: &ZplNode) -> Result<(), (usize, String)> {
        if section.value.is_some() {
            return Err((section.line, "zgossip takes sections, not a value".into()));
        }
        for part in &section.children {
            match part.name.as_str() {
                "bind" | "connect" => {
                    for endpoint in &part.children {
                        let value = endpoint_value(endpoint, &part.name)?;
                        let list = if part.name == "bind" {
                            &mut self.bind
                        } else {
                            &mut self.connect
                        };
                        list.push((value, endpoint.line));
                    }
                }
                "announce" => {
                    for tuple in &part.children {
                        if tuple.name != "tuple" {
                            return Err((
                                tuple.line,
                                format!("announce holds tuple sections, found \"{}\"", tuple.name),
                            ));
                        }
                        let field = |name: &str| {
                            tuple
                                .children
                                .iter()
                                .find(|c| c.name == name)
                                .and_then(|c| c.value.clone())
                                .filter(|v| !v.is_empty())
                        };
                        let (Some(endpoint), Some(service)) = (field("endpoint"), field("service"))
                        else {
                            return Err((
                                tuple.line,
                                "a tuple needs an endpoint and a service".into(),
                            ));
                        };
                        self.announce.push((endpoint, service, tuple.line));
                    }
                }
                other => {
                    return Err((
                        part.line,
                        format!(
                            "zgossip has bind, connect and announce sections, found \"{other}\""
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Apply to `node`: settings, then binds, connections, announcements,
    /// each error with its line.
    pub fn apply(&self, node: &Node, file: &str) -> Result<(), ConfigError> {
        let located = |line: usize, message: String| ConfigError {
            file: file.to_owned(),
            line,
            message,
        };
        for (path, value, line) in &self.settings {
            node.set(path, value)
                .map_err(|e| located(*line, e.to_string()))?;
        }
        for (endpoint, line) in &self.bind {
            node.bind(endpoint)
                .map_err(|e| located(*line, e.to_string()))?;
        }
        for (endpoint, line) in &self.connect {
            node.connect(endpoint)
                .map_err(|e| located(*line, e.to_string()))?;
        }
        for (endpoint, service, line) in &self.announce {
            node.announce(endpoint, service)
                .map_err(|e| located(*line, e.to_string()))?;
        }
        Ok(())
    }
}

fn endpoint_value(node: &ZplNode, section: &str) -> Result<String, (usize, String)> {
    match (node.name.as_str(), &node.value) {
        ("endpoint", Some(value)) if !value.is_empty() => Ok(value.clone()),
        ("endpoint", _) => Err((node.line, "endpoint needs a value".into())),
        (other, _) => Err((
            node.line,
            format!("{section} holds endpoint values, found \"{other}\""),
        )),
    }
}

/// Every value under `node` as a SET path.
fn collect_settings(node: &ZplNode, path: &str, out: &mut Vec<(String, String, usize)>) {
    if let Some(value) = &node.value {
        out.push((path.to_owned(), value.clone(), node.line));
    }
    for child in &node.children {
        collect_settings(child, &format!("{path}/{}", child.name), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_sections_and_tuples_are_read_in_order() {
        let config = NodeConfig::parse(
            "server\n    timeout = 5000\nlimits\n    tuples = 100\n\
             zgossip\n    bind\n        endpoint = tcp://*:5670\n        endpoint = ipc:///tmp/x\n\
             \x20   connect\n        endpoint = tcp://10.0.0.1:5670\n\
             \x20   announce\n        tuple\n            endpoint = tcp://10.0.0.5:9000\n            service = printer\n",
        )
        .expect("parses");
        assert_eq!(
            config.settings,
            [
                ("server/timeout".to_owned(), "5000".to_owned(), 2),
                ("limits/tuples".to_owned(), "100".to_owned(), 4)
            ]
        );
        assert_eq!(
            config.bind,
            [
                ("tcp://*:5670".to_owned(), 7),
                ("ipc:///tmp/x".to_owned(), 8)
            ]
        );
        assert_eq!(config.connect, [("tcp://10.0.0.1:5670".to_owned(), 10)]);
        assert_eq!(
            config.announce,
            [("tcp://10.0.0.5:9000".to_owned(), "printer".to_owned(), 12)]
        );
    }

    #[test]
    fn bad_files_get_located_errors() {
        for (text, line, words) in [
            ("server\n   timeout = 1\n", 2, "indentation"),
            (
                "zgossip\n    listen\n        endpoint = x\n",
                2,
                "found \"listen\"",
            ),
            (
                "zgossip\n    bind\n        port = 5\n",
                3,
                "endpoint values",
            ),
            ("zgossip\n    bind\n        endpoint\n", 3, "needs a value"),
            (
                "zgossip\n    announce\n        tuple\n            endpoint = tcp://a:1\n",
                3,
                "endpoint and a service",
            ),
            ("zgossip = 1\n", 1, "not a value"),
        ] {
            let (at, message) = NodeConfig::parse(text).expect_err(text);
            assert_eq!(at, line, "{text:?}: {message}");
            assert!(message.contains(words), "{text:?}: {message}");
        }
    }
}
