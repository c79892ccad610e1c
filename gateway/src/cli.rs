//! The command line: `serve`, `check`, `demo`. `main.rs` only calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::server::{Gateway, ShutdownOutcome, StartError};
use crate::{check, demo, telemetry};

/// Penghubung: Sistem Penghubung Layanan (service integration gateway) for regional governments.
#[derive(Debug, Parser)]
#[command(name = "penghubung", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (penghubung.toml); without it the embedded default is used.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate the config and every document; print all problems; exit 1 if any.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Start the gateway with demo OPD services on loopback and print commands to try it.
    Demo {
        /// Where the demo writes its config, documents and demo.env.
        #[arg(long, default_value = "penghubung-demo")]
        workdir: PathBuf,
        /// Gateway listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

/// Parses the command line, runs the command, returns the exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check::report(&check::check(config.as_deref())),
        Command::Serve { config } => {
            let config = match config {
                Some(path) => match Config::load(&path) {
                    Ok(c) => c,
                    Err(problems) => return check::report(&problems),
                },
                None => Config::embedded_default(&std::env::current_dir().unwrap_or_default()),
            };
            telemetry::init_logging(&config.log);
            runtime(config.server.worker_threads).block_on(async move {
                match Gateway::start(config).await {
                    Ok(gateway) => exit_code(gateway.run_until_signal().await),
                    Err(e) => start_failed(e),
                }
            })
        }
        Command::Demo { workdir, listen } => runtime(0).block_on(demo::run(workdir, listen)),
    }
}

fn runtime(worker_threads: usize) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if worker_threads > 0 {
        builder.worker_threads(worker_threads);
    }
    builder
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

pub(crate) fn exit_code(outcome: ShutdownOutcome) -> i32 {
    match outcome {
        ShutdownOutcome::Drained => 0,
        ShutdownOutcome::DeadlineReached => 2,
    }
}

pub(crate) fn start_failed(error: StartError) -> i32 {
    if let StartError::Documents(problems) = &error {
        for p in problems {
            eprintln!("{p}");
        }
    }
    eprintln!("penghubung: cannot start: {error}");
    1
}
