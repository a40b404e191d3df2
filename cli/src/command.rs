//! The text form of the node's command API, as CZMQ's zgossip actor takes it
//! on its pipe, one command per line: `VERBOSE`, `SET path value`,
//! `BIND endpoint`, `PORT`, `CONNECT endpoint`, `ANNOUNCE endpoint service`
//! (or `PUBLISH key value`), `UNPUBLISH endpoint`, `STATUS`, `$TERM`, and
//! the CURVE commands of its draft API, `SET PUBLICKEY key`, `SET SECRETKEY
//! key`, `ZAP DOMAIN domain`, `CONNECT endpoint key`; and ours, `STATS` (every
//! counter, as `name=value` pairs) and `TUPLES` (every tuple, a
//! `TUPLE endpoint service` line each, escaped, then `TUPLES count`) and
//! `PEERS` (a `PEER session|remote name state up|down` line each, then
//! `PEERS count`).

use zgossip::text::{Escaped, EscapedWord};
use zgossip::Error;
use zgossip::Node;
use zgossip::PeerKind;

/// Every text command: its syntax, and what it does (`zgossip node --help`
/// lists them).
pub const COMMANDS: &[(&str, &str)] = &[
    ("BIND endpoint", "accept peers on endpoint"),
    ("PORT", "the port of the last tcp bind: PORT n"),
    ("CONNECT endpoint", "connect to the node at endpoint"),
    (
        "CONNECT endpoint key",
        "connect over CURVE to a server with that public key (needs --cert)",
    ),
    (
        "ANNOUNCE endpoint service",
        "announce a tuple; the service is the rest of the line",
    ),
    (
        "PUBLISH endpoint service",
        "the same as ANNOUNCE (CZMQ's name)",
    ),
    (
        "UNPUBLISH endpoint",
        "remove our tuple at endpoint from every node",
    ),
    (
        "SET path value",
        "a setting, e.g. SET tuples/lease 30000 (see docs/zgossip.md)",
    ),
    ("ZAP DOMAIN domain", "the ZAP domain for CURVE peers"),
    (
        "VERBOSE",
        "log every state, event and action of the server sessions",
    ),
    ("STATUS", "how many tuples the node knows: STATUS n"),
    ("STATS", "every counter: STATS name=value ..."),
    (
        "TUPLES",
        "every tuple: a TUPLE endpoint service line each, then TUPLES n",
    ),
    (
        "PEERS",
        "every session and remote: a PEER kind name state up|down line each, then PEERS n",
    ),
    ("$TERM", "stop the node"),
];

/// [`COMMANDS`] as a help section.
pub fn help() -> String {
    let width = COMMANDS
        .iter()
        .map(|(syntax, _)| syntax.len())
        .max()
        .unwrap_or(0);
    let mut text = String::from("Text commands (standard input, one per line):\n");
    for (syntax, what) in COMMANDS {
        text.push_str(&format!("  {syntax:width$}  {what}\n"));
    }
    text
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextCommand {
    /// `VERBOSE`.
    Verbose,
    /// `SET path value`.
    Set(String, String),
    /// `BIND endpoint`.
    Bind(String),
    /// `PORT`.
    Port,
    /// `CONNECT endpoint`.
    Connect(String),
    /// `CONNECT endpoint key`: over CURVE, to a server with that public key
    /// (CZMQ's draft API's form; needs the node's own certificate).
    ConnectCurve(String, String),
    /// `ANNOUNCE endpoint service [ttl]`, or `PUBLISH key value`.
    Announce(String, String),
    /// `UNPUBLISH endpoint`.
    Unpublish(String),
    /// `ZAP DOMAIN domain`.
    ZapDomain(String),
    /// `STATUS`.
    Status,
    /// `STATS`.
    Stats,
    /// `TUPLES`.
    Tuples,
    /// `PEERS`.
    Peers,
    /// `$TERM`.
    Term,
}

/// A line that is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Unknown command word.
    #[error("unknown command \"{0}\" (known: VERBOSE, SET, BIND, PORT, CONNECT, ANNOUNCE, PUBLISH, UNPUBLISH, ZAP DOMAIN, STATUS, STATS, TUPLES, PEERS, $TERM)")]
    Unknown(String),
    /// Wrong number of arguments.
    #[error("{command} takes {expected}")]
    Arguments {
        /// The command.
        command: &'static str,
        /// What it takes.
        expected: &'static str,
    },
    /// A ttl given with ANNOUNCE: a tuple's life is the node's
    /// `tuples/lease`, and a ttl that meant something else would be
    /// silently wrong.
    #[error("ANNOUNCE: a ttl per tuple (\"{0}\") is not supported: every tuple of this node lives for its tuples/lease (SET tuples/lease MS)")]
    Ttl(String),
}

impl TextCommand {
    /// Parse one line. `ANNOUNCE endpoint service ttl` (exactly three
    /// words, the last a number: CZMQ's form with a ttl) is refused, for
    /// a tuple's life is `tuples/lease`; otherwise the service is the rest
    /// of the line, spaces included.
    pub fn parse(line: &str) -> Result<Option<Self>, ParseError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let args: Vec<&str> = rest.split_whitespace().collect();
        let one = |command: &'static str| match args.as_slice() {
            [a] => Ok((*a).to_owned()),
            _ => Err(ParseError::Arguments {
                command,
                expected: "one argument, an endpoint",
            }),
        };
        let none = |command: &'static str, c: Self| {
            if args.is_empty() {
                Ok(c)
            } else {
                Err(ParseError::Arguments {
                    command,
                    expected: "no arguments",
                })
            }
        };
        let command = match word.to_ascii_uppercase().as_str() {
            "VERBOSE" => none("VERBOSE", Self::Verbose)?,
            "PORT" => none("PORT", Self::Port)?,
            "STATUS" => none("STATUS", Self::Status)?,
            "STATS" => none("STATS", Self::Stats)?,
            "TUPLES" => none("TUPLES", Self::Tuples)?,
            "PEERS" => none("PEERS", Self::Peers)?,
            "$TERM" => none("$TERM", Self::Term)?,
            "BIND" => Self::Bind(one("BIND")?),
            "UNPUBLISH" => Self::Unpublish(one("UNPUBLISH")?),
            "ZAP" => match args.as_slice() {
                [what, domain] if what.eq_ignore_ascii_case("DOMAIN") => {
                    Self::ZapDomain((*domain).to_owned())
                }
                _ => {
                    return Err(ParseError::Arguments {
                        command: "ZAP",
                        expected: "DOMAIN and a domain name",
                    })
                }
            },
            "CONNECT" => match args.as_slice() {
                [endpoint, key] => Self::ConnectCurve((*endpoint).to_owned(), (*key).to_owned()),
                [endpoint] => Self::Connect((*endpoint).to_owned()),
                _ => {
                    return Err(ParseError::Arguments {
                        command: "CONNECT",
                        expected: "an endpoint, and the server's public key for CURVE",
                    })
                }
            },
            "SET" => match args.as_slice() {
                [path, value] => Self::Set((*path).to_owned(), (*value).to_owned()),
                _ => {
                    return Err(ParseError::Arguments {
                        command: "SET",
                        expected: "a path and a value",
                    })
                }
            },
            "ANNOUNCE" | "PUBLISH" => {
                let Some((endpoint, service)) = rest.split_once(char::is_whitespace) else {
                    return Err(ParseError::Arguments {
                        command: "ANNOUNCE",
                        expected: "an endpoint, a service and an optional ttl",
                    });
                };
                let service = service.trim();
                if let Some((_, ttl)) = service.rsplit_once(char::is_whitespace) {
                    if args.len() == 3 && ttl.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(ParseError::Ttl(ttl.to_owned()));
                    }
                }
                Self::Announce(endpoint.to_owned(), service.to_owned())
            }
            _ => return Err(ParseError::Unknown(word.to_owned())),
        };
        Ok(Some(command))
    }

    /// Carry the command out on `node`; the reply line, if the command has one.
    pub fn execute(&self, node: &Node) -> Result<Option<String>, Error> {
        match self {
            Self::Verbose => node.verbose().map(|()| None),
            Self::Set(path, value) => node.set(path, value).map(|()| None),
            Self::Bind(endpoint) => node.bind(endpoint).map(|()| None),
            Self::Port => node.port().map(|p| Some(format!("PORT {p}"))),
            Self::Connect(endpoint) => node.connect(endpoint).map(|()| None),
            Self::ConnectCurve(endpoint, key) => node.connect_curve(endpoint, key).map(|()| None),
            Self::Announce(endpoint, service) => node.announce(endpoint, service).map(|()| None),
            Self::Unpublish(endpoint) => node.unpublish(endpoint).map(|()| None),
            Self::ZapDomain(domain) => node.zap_domain(domain).map(|()| None),
            Self::Status => node.status().map(|n| Some(format!("STATUS {n}"))),
            Self::Stats => node.stats().map(|s| Some(format!("STATS {s}"))),
            Self::Tuples => node.tuples().map(|tuples| {
                let mut reply = String::new();
                for (endpoint, service) in &tuples {
                    // One word, then the rest of the line, as ANNOUNCE reads them.
                    reply.push_str(&format!(
                        "TUPLE {} {}\n",
                        EscapedWord(endpoint),
                        Escaped(service)
                    ));
                }
                reply.push_str(&format!("TUPLES {}", tuples.len()));
                Some(reply)
            }),
            Self::Peers => node.peers().map(|peers| {
                let mut reply = String::new();
                for peer in &peers {
                    let kind = match peer.kind {
                        PeerKind::Session => "session",
                        PeerKind::Remote => "remote",
                    };
                    let up = if peer.up { "up" } else { "down" };
                    let name = EscapedWord(&peer.name);
                    reply.push_str(&format!("PEER {kind} {name} {} {up}\n", peer.state));
                }
                reply.push_str(&format!("PEERS {}", peers.len()));
                Some(reply)
            }),
            Self::Term => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<TextCommand>, ParseError> {
        TextCommand::parse(line)
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse("BIND tcp://*:5670"),
            Ok(Some(TextCommand::Bind("tcp://*:5670".into())))
        );
        assert_eq!(parse("  status "), Ok(Some(TextCommand::Status)));
        assert_eq!(parse("$TERM"), Ok(Some(TextCommand::Term)));
        assert_eq!(
            parse("SET server/timeout 500"),
            Ok(Some(TextCommand::Set(
                "server/timeout".into(),
                "500".into()
            )))
        );
        assert_eq!(
            parse("ANNOUNCE tcp://a:1 printer on floor 2"),
            Ok(Some(TextCommand::Announce(
                "tcp://a:1".into(),
                "printer on floor 2".into()
            )))
        );
        assert_eq!(
            parse("PUBLISH tcp://a:1 printer 5000"),
            Err(ParseError::Ttl("5000".into()))
        );
        assert_eq!(
            parse("ANNOUNCE tcp://a:1 printer on floor 5000"),
            Ok(Some(TextCommand::Announce(
                "tcp://a:1".into(),
                "printer on floor 5000".into()
            )))
        );
        assert_eq!(parse("# a comment"), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn every_listed_command_parses_and_every_command_is_listed() {
        let mut kinds = std::collections::HashSet::new();
        for (syntax, _) in COMMANDS {
            let example = syntax
                .replace("endpoint", "tcp://a:1")
                .replace("key", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID")
                .replace("service", "printer")
                .replace("path", "server/timeout")
                .replace("value", "5")
                .replace("domain", "global");
            let command = parse(&example)
                .unwrap_or_else(|e| panic!("{syntax}: {e}"))
                .unwrap_or_else(|| panic!("{syntax}: no command"));
            kinds.insert(std::mem::discriminant(&command));
        }
        // Every variant of TextCommand (ANNOUNCE and PUBLISH are one).
        assert_eq!(kinds.len(), 14);
        let help = help();
        for (syntax, _) in COMMANDS {
            assert!(help.contains(syntax), "{syntax} missing from\n{help}");
        }
    }

    #[test]
    fn bad_commands_say_why() {
        assert_eq!(parse("FLY away"), Err(ParseError::Unknown("FLY".into())));
        assert_eq!(parse("stats"), Ok(Some(TextCommand::Stats)));
        assert_eq!(parse("TUPLES"), Ok(Some(TextCommand::Tuples)));
        assert_eq!(
            parse("CONNECT tcp://a:1 Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"),
            Ok(Some(TextCommand::ConnectCurve(
                "tcp://a:1".into(),
                "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID".into()
            )))
        );
        assert_eq!(parse("peers"), Ok(Some(TextCommand::Peers)));
        assert_eq!(
            parse("unpublish tcp://a:1"),
            Ok(Some(TextCommand::Unpublish("tcp://a:1".into())))
        );
        assert!(parse("UNPUBLISH").is_err());
        assert_eq!(
            parse("ZAP DOMAIN global"),
            Ok(Some(TextCommand::ZapDomain("global".into())))
        );
        assert!(parse("ZAP global").is_err());
        assert!(parse("TUPLES all").is_err());
        let err = parse("BIND").unwrap_err().to_string();
        assert_eq!(err, "BIND takes one argument, an endpoint");
        assert!(parse("ANNOUNCE tcp://a:1").is_err());
        assert!(parse("SET server/timeout").is_err());
        assert!(parse("STATUS now").is_err());
        assert!(parse("ANNOUNCE tcp://a:1 svc 99999999999").is_err());
    }
}
