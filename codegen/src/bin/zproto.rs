//! `zproto`: check zproto models and generate Rust from them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zproto_codegen::{analyse, Config};

#[derive(Parser)]
#[command(
    name = "zproto",
    version,
    about = "Generate Rust codecs, servers and clients from zproto XML models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate models and write the generated Rust and ABNF grammar.
    Generate {
        /// Model files (XML): codecs, servers, clients.
        #[arg(required = true)]
        models: Vec<PathBuf>,
        /// Output directory.
        #[arg(short, long, default_value = "generated")]
        out: PathBuf,
        /// Do not emit round-trip tests from the models' `<test>` values.
        #[arg(long)]
        no_tests: bool,
        /// Do not write the ABNF grammar.
        #[arg(long)]
        no_abnf: bool,
        /// Also write each state machine's diagram (`<class>.dot`).
        #[arg(long)]
        dot: bool,
    },
    /// Write a handler skeleton for a server or client model, once: an
    /// existing file is never overwritten.
    Skeleton {
        /// Server or client model file (XML).
        model: PathBuf,
        /// Where to write the skeleton (`-`: standard output).
        #[arg(short, long)]
        out: PathBuf,
        /// Module path of the generated engine, as the skeleton uses it
        /// (default: `crate::<class>_engine`, as `Config::include_file`
        /// names it).
        #[arg(long)]
        engine_path: Option<String>,
        /// Module path of the generated codec, as the skeleton uses it.
        #[arg(long)]
        codec_path: Option<String>,
    },
    /// Write the state diagram of a server or client model as Graphviz
    /// `dot` (render it with `dot -Tsvg`).
    Dot {
        /// Server or client model file (XML).
        model: PathBuf,
        /// Where to write it (default: standard output).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Validate models only; print every problem found.
    Check {
        /// Model files (XML): codecs, servers, clients.
        #[arg(required = true)]
        models: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate {
            models,
            out,
            no_tests,
            no_abnf,
            dot,
        } => {
            let result = Config::new()
                .out_dir(&out)
                .emit_tests(!no_tests)
                .emit_abnf(!no_abnf)
                .emit_dot(dot)
                .cargo_directives(false)
                .compile(&models);
            match result {
                Ok(generated) => {
                    for g in generated {
                        for file in &g.files {
                            let state = if g.changed.contains(file) {
                                "wrote"
                            } else {
                                "unchanged"
                            };
                            println!("{state} {}", file.display());
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Skeleton {
            model,
            out,
            engine_path,
            codec_path,
        } => {
            let mut config = Config::new();
            if let Some(path) = codec_path {
                match analyse::analyse_any(&model) {
                    Ok(analyse::Analysed::Server(pair)) => {
                        config.codec_path(pair.0.protocol_class.clone(), path);
                    }
                    Ok(analyse::Analysed::Client(pair)) => {
                        config.codec_path(pair.0.protocol_class.clone(), path);
                    }
                    _ => {}
                }
            }
            if out.as_os_str() == "-" {
                return match config.skeleton(&model, engine_path.as_deref()) {
                    Ok(text) => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::FAILURE
                    }
                };
            }
            let engine_path = match engine_path {
                Some(path) => path,
                None => match analyse::analyse_any(&model) {
                    Ok(analyse::Analysed::Server(pair)) => {
                        format!("crate::{}_engine", pair.0.class)
                    }
                    Ok(analyse::Analysed::Client(pair)) => {
                        format!("crate::{}_engine", pair.0.class)
                    }
                    _ => "crate::engine".to_owned(),
                },
            };
            match config.write_skeleton(&model, &out, &engine_path) {
                Ok(true) => {
                    println!("wrote {}", out.display());
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    println!(
                        "kept {}: it exists, and a skeleton never overwrites",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Dot { model, out } => match analyse::analyse_any(&model) {
            Ok(machine @ (analyse::Analysed::Server(_) | analyse::Analysed::Client(_))) => {
                let text = match &machine {
                    analyse::Analysed::Client(pair) => {
                        zproto_codegen::emit::dot::emit_client(&pair.0)
                    }
                    analyse::Analysed::Server(pair) => zproto_codegen::emit::dot::emit(&pair.0),
                    analyse::Analysed::Codec(_) => String::new(),
                };
                match out {
                    None => {
                        print!("{text}");
                        ExitCode::SUCCESS
                    }
                    Some(path) => match std::fs::write(&path, text) {
                        Ok(()) => {
                            println!("wrote {}", path.display());
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!("cannot write {}: {e}", path.display());
                            ExitCode::FAILURE
                        }
                    },
                }
            }
            Ok(analyse::Analysed::Codec(m)) => {
                eprintln!(
                    "{}: codec {} has no state machine to draw",
                    model.display(),
                    m.class
                );
                ExitCode::FAILURE
            }
            Err(d) => {
                eprintln!("{d}");
                ExitCode::FAILURE
            }
        },
        Command::Check { models } => {
            let mut ok = true;
            for model in &models {
                match analyse::analyse_any(model) {
                    Ok(analyse::Analysed::Codec(m)) => println!(
                        "{}: ok, codec {} with {} messages",
                        model.display(),
                        m.class,
                        m.messages.len()
                    ),
                    Ok(analyse::Analysed::Server(pair)) => println!(
                        "{}: ok, server {} with {} states over {}",
                        model.display(),
                        pair.0.class,
                        pair.0.states.len(),
                        pair.1.class
                    ),
                    Ok(analyse::Analysed::Client(pair)) => println!(
                        "{}: ok, client {} with {} states and {} methods over {}",
                        model.display(),
                        pair.0.class,
                        pair.0.states.len(),
                        pair.0.methods.len(),
                        pair.1.class
                    ),
                    Err(d) => {
                        eprintln!("{d}");
                        ok = false;
                    }
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
