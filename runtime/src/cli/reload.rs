//! `vflow reload`: ask the running server to load its flows again (or roll
//! back) over its control socket, `DATA_DIR/control.sock` (protocol in
//! `server/control.rs`), and print the outcome.
//!
//! Exit codes: 0 the flows named are active; 1 the server refused (the
//! reason is printed, the old flows stay active); 2 no server runs there, or
//! another usage or I/O error.

use crate::config::Config;
use crate::server::control::SOCKET;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ReloadArgs {
    /// The server's configuration: its `node.data_dir` holds the control
    /// socket (a relative one is taken from the current directory, as
    /// `vflow serve` does). Without it: the defaults (`./var`).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Go back to the flows the last reload replaced (the one way to a lower
    /// bundle serial).
    #[arg(long, conflicts_with = "status")]
    pub rollback: bool,
    /// Only print which flows are active.
    #[arg(long)]
    pub status: bool,
}

/// A reload loads and compiles; a big bundle may take a while.
const REPLY_WITHIN: Duration = Duration::from_secs(120);

pub fn run(args: ReloadArgs) -> ExitCode {
    let config = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    let path = config.node.data_dir.join(SOCKET);
    let request = if args.rollback {
        "rollback"
    } else if args.status {
        "status"
    } else {
        "reload"
    };
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!(
                "error: no vflow server is running on the data directory {} (nothing answers on {}); start one with `vflow serve{}`",
                config.node.data_dir.display(),
                path.display(),
                args.config
                    .as_ref()
                    .map(|c| format!(" --config {}", c.display()))
                    .unwrap_or_default()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (the socket is for the server's user only: run this as that user)"
            } else {
                ""
            };
            eprintln!(
                "error: cannot reach the server at {}: {e}{hint}",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    let reply = stream
        .set_read_timeout(Some(REPLY_WITHIN))
        .and_then(|()| stream.write_all(format!("{request}\n").as_bytes()))
        .and_then(|()| {
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).map(|_| line)
        });
    let line = match reply {
        Ok(l) if !l.trim().is_empty() => l,
        Ok(_) => {
            eprintln!(
                "error: the server at {} closed the connection without a reply (is it stopping?)",
                path.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: no reply from the server at {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let reply: serde_json::Value = match serde_json::from_str(line.trim()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "error: the server at {} sent a reply this vflow does not understand ({e}): {}",
                path.display(),
                line.trim()
            );
            return ExitCode::from(2);
        }
    };
    let text = |k: &str| reply[k].as_str().unwrap_or("").to_string();
    match reply["result"].as_str() {
        Some("ok") => {
            let done = match request {
                "reload" => "reloaded; ",
                "rollback" => "rolled back; ",
                _ => "",
            };
            println!("{done}active: {}", text("active"));
            ExitCode::SUCCESS
        }
        Some("refused") => {
            eprintln!("error: {request} refused: {}", text("reason"));
            eprintln!("still active: {}", text("active"));
            ExitCode::from(1)
        }
        _ => {
            eprintln!("error: the server could not {request}: {}", text("reason"));
            ExitCode::from(2)
        }
    }
}
