//! `zproto`: check zproto models and generate Rust from them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zproto_codegen::{analyse, Config};

#[derive(Parser)]
#[command(
    name = "zproto",
    version,
    about = "Generate Rust codecs from zproto XML models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate models and write the generated Rust and ABNF grammar.
    Generate {
        /// Codec model files (XML).
        #[arg(required = true)]
        models: Vec<PathBuf>,
        /// Output directory.
        #[arg(short, long, default_value = "generated")]
        out: PathBuf,
        /// Do not emit round-trip tests from the models' <test> values.
        #[arg(long)]
        no_tests: bool,
        /// Do not write the ABNF grammar.
        #[arg(long)]
        no_abnf: bool,
    },
    /// Validate models only; print every problem found.
    Check {
        /// Codec model files (XML).
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
        } => {
            let result = Config::new()
                .out_dir(&out)
                .emit_tests(!no_tests)
                .emit_abnf(!no_abnf)
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
        Command::Check { models } => {
            let mut ok = true;
            for model in &models {
                match analyse::codec::analyse_file(model) {
                    Ok(m) => println!(
                        "{}: ok, class {} with {} messages",
                        model.display(),
                        m.class,
                        m.messages.len()
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
