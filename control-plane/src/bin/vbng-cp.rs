//! `vbng-cp`: the vbng control plane service.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use vbng_cp::config::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line names the flag and the problem.
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("bad flag");
            let first = first.trim_start_matches("error: ");
            eprintln!("vbng-cp: <flags>: {first}; fix: see vbng-cp --help");
            return ExitCode::from(2);
        }
    };
    let cfg = match cli.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vbng-cp: {e}");
            return ExitCode::from(2);
        }
    };
    let subs = match vbng_cp::service::load_subscribers(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vbng-cp: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = cli.log.as_deref().map(EnvFilter::new).unwrap_or_else(|| {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
    });
    // Colour codes only on a terminal: logs redirected to files stay plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vbng-cp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let running = vbng_cp::service::start(cfg, subs).await?;
        vbng_cp::service::shutdown_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbng-cp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
