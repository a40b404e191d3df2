//! `mshell`: upstream's command-line client, on our generated client.
//!
//! ```text
//! mshell [-v] [-n] [-e endpoint] [-p username password] stream subject [body]
//! ```
//!
//! With a body, publishes it to the stream under the subject; without,
//! prints every message of the stream whose subject matches the pattern,
//! as `Content=... subject=...`. PLAIN as `mshell`/`mshell` unless `-n`;
//! the default endpoint is `tcp://127.0.0.1:9999`, as upstream's.

use std::process::ExitCode;
use std::time::Duration;

use malamute::client::MlmClient;
use malamute::mlm_proto::MlmProto;

const WAIT: Duration = Duration::from_secs(5);

/// The arguments, parsed as upstream parses them: flags in this order,
/// then two or three words.
struct Args {
    verbose: bool,
    null_auth: bool,
    endpoint: String,
    username: String,
    password: String,
    stream: String,
    subject: String,
    body: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Option<Args> {
    let mut next = args.next();
    let flag = |name: &str, next: &mut Option<String>, args: &mut dyn Iterator<Item = String>| {
        if next.as_deref() == Some(name) {
            *next = args.next();
            true
        } else {
            false
        }
    };
    let verbose = flag("-v", &mut next, &mut args);
    let null_auth = flag("-n", &mut next, &mut args);
    let mut endpoint = "tcp://127.0.0.1:9999".to_owned();
    if flag("-e", &mut next, &mut args) {
        endpoint = next.take()?;
        next = args.next();
    }
    let (mut username, mut password) = ("mshell".to_owned(), "mshell".to_owned());
    if flag("-p", &mut next, &mut args) {
        username = next.take()?;
        password = args.next()?;
        next = args.next();
    }
    let stream = next.filter(|s| s != "-h")?;
    let subject = args.next()?;
    Some(Args {
        verbose,
        null_auth,
        endpoint,
        username,
        password,
        stream,
        subject,
        body: args.next(),
    })
}

fn main() -> ExitCode {
    let Some(args) = parse(std::env::args().skip(1)) else {
        println!(
            "syntax: mshell [-v] [-n] [-e endpoint] [-p username password] stream subject [body]"
        );
        return ExitCode::SUCCESS;
    };
    let mut client = match MlmClient::with_defaults() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("mshell: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = client.set_verbose(args.verbose);
    if !args.null_auth {
        let _ = client.set_plain_auth(&args.username, &args.password, WAIT);
    }
    // Upstream waits a second for the broker.
    if let Err(e) = client.connect(&args.endpoint, 1000, "", WAIT) {
        // Upstream exits 0 here; a script deserves to know.
        eprintln!("mshell: server not reachable at {}: {e}", args.endpoint);
        return ExitCode::FAILURE;
    }
    match &args.body {
        Some(body) => {
            let sent = client
                .set_producer(&args.stream, WAIT)
                .map_err(|e| e.to_string())
                .and_then(|_| {
                    client
                        .send_text(&args.subject, &[body])
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = sent {
                eprintln!("mshell: {e}");
                return ExitCode::FAILURE;
            }
        }
        None => {
            if let Err(e) = client.set_consumer(&args.stream, &args.subject, WAIT) {
                eprintln!("mshell: {e}");
                return ExitCode::FAILURE;
            }
            loop {
                match client.recv(Duration::from_secs(3600)) {
                    Ok(MlmProto::StreamDeliver(m)) => {
                        let content = m
                            .content
                            .first()
                            .map(|f| String::from_utf8_lossy(f).into_owned())
                            .unwrap_or_default();
                        println!("Content={content} subject={}", m.subject);
                    }
                    Ok(_) => {}
                    Err(zproto_runtime::client_host::ClientError::Timeout(_)) => {}
                    Err(_) => break,
                }
            }
        }
    }
    // Dropping the client says goodbye (its destructor method).
    ExitCode::SUCCESS
}
