//! `wf`: the inspector of wf stores.
//!
//! Lists workflows, shows a workflow as a tree of invocations, an invocation's journal, a
//! workflow's data and counts by status, retries failed invocations, purges finished workflows
//! (or lists what a purge would remove), sends events to waiting workflows and exports
//! workflows for replay checks. Reads take a lock-free snapshot of the store
//! ([`wf_store::FileStore::snapshot`]), so they work while workers run.
//! Run `wf --help` for the commands.

mod admin;
mod cli;
mod commands;
mod data;
mod fmt;
mod journal;
mod open;
mod repair;
mod serve;
mod show;
mod steer;
mod workflows;
/// Stored values as text: the web monitor's heuristic, shared.
mod value {
    pub(crate) use wf_monitor::value::{HEURISTIC, clip, render};
}

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::Cli;

/// Why a command failed, and so which exit code it gives.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments (exit code 2).
    Usage(String),
    /// The command could not be carried out (exit code 1).
    Runtime(String),
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime(_) => ExitCode::from(1),
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Usage(m) | Failure::Runtime(m) => m,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_failure(&e),
    };
    match commands::run(&cli) {
        Ok(printed) => {
            for note in &printed.notes {
                // Notes are best effort: a closed stderr loses them, not the output.
                let _ = writeln!(std::io::stderr(), "note: {note}");
            }
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`wf workflows | head`) is not an error worth reporting.
            match stdout
                .write_all(printed.stdout.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the output: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(f) => {
            eprintln!("error: {}", f.message());
            f.exit_code()
        }
    }
}

/// Help and version go to stdout as clap renders them; argument errors become one line on
/// stderr (the error and clap's tips) with exit code 2.
fn clap_failure(e: &clap::Error) -> ExitCode {
    let text = e.render().to_string();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            match text.ends_with('\n') {
                true => print!("{text}"),
                false => println!("{text}"),
            }
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{text}");
            ExitCode::from(2)
        }
        _ => {
            let mut parts: Vec<&str> = Vec::new();
            for line in text.lines().map(str::trim) {
                if line.is_empty()
                    || line.starts_with("Usage:")
                    || line.starts_with("For more information")
                {
                    continue;
                }
                if parts.is_empty() || line.starts_with("tip:") {
                    parts.push(line.trim_start_matches("error: "));
                }
            }
            eprintln!("error: {} (see --help)", parts.join("; "));
            ExitCode::from(2)
        }
    }
}
