//! `vbngctl`: operator CLI for vbng-cp (sessions, user planes, lab demo).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vbng_cp::api::model::{RateView, SessionPatch, SessionView, UserPlaneView};
use vbng_cp::ctl::{rate, sessions_table, user_planes_table};

/// vbngctl: talk to a running vbng-cp over its REST API.
#[derive(Debug, Parser)]
#[command(name = "vbngctl", version)]
struct Cli {
    /// Base URL of the vbng-cp REST API.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    api: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List subscriber sessions.
    Sessions {
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List user planes and their association state.
    UserPlanes {
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a session (PFCP deletion and lease removal).
    SessionDelete {
        /// Session id (see `vbngctl sessions`).
        id: u64,
    },
    /// Change a session's peak rates live (PFCP Update QER); a 0 lifts the
    /// limit in that direction.
    SessionRate {
        /// Session id (see `vbngctl sessions`).
        id: u64,
        /// Uplink (subscriber -> core) rate, kbit/s.
        #[arg(long, required_unless_present = "unlimited")]
        up_kbps: Option<u64>,
        /// Downlink (core -> subscriber) rate, kbit/s.
        #[arg(long, required_unless_present = "unlimited")]
        down_kbps: Option<u64>,
        /// Remove the rate limit in both directions.
        #[arg(long, conflicts_with_all = ["up_kbps", "down_kbps"])]
        unlimited: bool,
    },
    /// Give a session another user plane ACL live (PFCP Update PDR), or
    /// none.
    SessionFilter {
        /// Session id (see `vbngctl sessions`).
        id: u64,
        /// ACL name (from the user plane's ACL file).
        #[arg(required_unless_present = "none")]
        name: Option<String>,
        /// Remove the session's ACL.
        #[arg(long, conflicts_with = "name")]
        none: bool,
    },
    /// Run the namespace lab demo.
    Demo {
        /// Keep the lab running after the demo.
        #[arg(long)]
        keep: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbngctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let base = cli.api.trim_end_matches('/');
    match &cli.cmd {
        Cmd::Sessions { json } => {
            let sessions: Vec<SessionView> = get_json(&format!("{base}/sessions"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&sessions)?);
            } else {
                print!("{}", sessions_table(&sessions, vbng_cp::unix_now()));
            }
        }
        Cmd::UserPlanes { json } => {
            let ups: Vec<UserPlaneView> = get_json(&format!("{base}/user-planes"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&ups)?);
            } else {
                print!("{}", user_planes_table(&ups));
            }
        }
        Cmd::SessionDelete { id } => {
            let url = format!("{base}/sessions/{id}");
            match ureq::delete(&url).call() {
                Ok(_) => println!("session {id} deleted"),
                Err(ureq::Error::StatusCode(404)) => anyhow::bail!("no session with id {id}"),
                Err(e) => return Err(anyhow::anyhow!("DELETE {url}: {e}")),
            }
        }
        Cmd::SessionRate {
            id,
            up_kbps,
            down_kbps,
            unlimited,
        } => {
            let patch = SessionPatch {
                rate: Some(match (*unlimited, up_kbps, down_kbps) {
                    (false, Some(up), Some(down)) => Some(RateView {
                        up_kbps: *up,
                        down_kbps: *down,
                    }),
                    // clap requires both rates unless --unlimited.
                    _ => None,
                }),
                filter_id: None,
            };
            let view = patch_session(base, *id, &patch, "rate")?;
            println!("session {id} rate {}", rate(view.rate));
        }
        Cmd::SessionFilter { id, name, none } => {
            let patch = SessionPatch {
                rate: None,
                // clap requires a name unless --none.
                filter_id: Some(name.clone().filter(|_| !*none)),
            };
            let view = patch_session(base, *id, &patch, "ACL")?;
            let filter = view.aaa.and_then(|a| a.filter_id);
            println!("session {id} ACL {}", filter.as_deref().unwrap_or("-"));
        }
        Cmd::Demo { keep } => {
            vbng_cp::lab::run_demo(&vbng_cp::lab::DemoOptions { keep: *keep })?;
        }
    }
    Ok(())
}

/// Send `patch` to session `id` and return its updated view; on a refusal
/// the error says that the session's `what` is unchanged, and why.
fn patch_session(
    base: &str,
    id: u64,
    patch: &SessionPatch,
    what: &str,
) -> anyhow::Result<SessionView> {
    let url = format!("{base}/sessions/{id}");
    let mut resp = ureq::patch(&url)
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(patch)
        .map_err(|e| anyhow::anyhow!("PATCH {url}: {e} (is vbng-cp running? see --api)"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        let reason = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or(body);
        anyhow::bail!("{what} of session {id} unchanged: {reason} (HTTP {status})");
    }
    resp.body_mut()
        .read_json()
        .map_err(|e| anyhow::anyhow!("PATCH {url}: bad JSON: {e}"))
}

fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> anyhow::Result<T> {
    let mut resp = ureq::get(url)
        .call()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e} (is vbng-cp running? see --api)"))?;
    resp.body_mut()
        .read_json::<T>()
        .map_err(|e| anyhow::anyhow!("GET {url}: bad JSON: {e}"))
}
