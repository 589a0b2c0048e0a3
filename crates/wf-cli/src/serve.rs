//! `wf serve`: the web monitor ([`wf_monitor`]) over the store, until interrupted.

use std::io::Write;

use wf_monitor::{MonitorConfig, StoreSource};

use crate::Failure;
use crate::cli::{ServeArgs, Target};

/// Serves until the process is stopped; prints the address to open first.
pub(crate) fn serve(target: &Target, args: &ServeArgs) -> Result<String, Failure> {
    let source = match target {
        Target::File(dir) => StoreSource::File(dir.clone()),
        Target::Redis(url) => StoreSource::Redis(url.clone()),
    };
    let token = args.token.as_deref().filter(|t| !t.is_empty());
    let mut config = MonitorConfig::new(source).for_bind(args.bind.ip());
    if let Some(t) = token {
        config = config.token(t);
    }
    if !args.bind.ip().is_loopback() && token.is_none() {
        eprintln!(
            "warning: wf serve listens on {} without authentication: anyone who can reach \
             this address can read every workflow and retry, cancel or purge them; give \
             --token <TOKEN> (or WF_MONITOR_TOKEN), or bind to 127.0.0.1",
            args.bind
        );
    }
    let failed = |what: &str, e: &dyn std::fmt::Display| Failure::Runtime(format!("{what}: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| failed("cannot start the monitor's runtime", &e))?;
    runtime.block_on(async {
        // Checks the store before listening: a mistyped path fails here, not on every page.
        let router = wf_monitor::router(config).map_err(|e| Failure::Runtime(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| failed(&format!("cannot listen on {}", args.bind), &e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| failed("cannot read the listening address", &e))?;
        let host = match addr.ip().is_unspecified() {
            true => format!("127.0.0.1:{}", addr.port()),
            false => addr.to_string(),
        };
        let query = token.map_or_else(String::new, |t| {
            format!("?token={}", wf_monitor::url_value(t))
        });
        // The address goes out at once (scripts and tests wait for it); a closed stdout does
        // not stop the monitor.
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "wf monitor of {target}: http://{host}/{query}");
        let _ = stdout.flush();
        drop(stdout);
        axum_serve(listener, router).await
    })?;
    Ok(String::new())
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: wf_monitor::Router,
) -> Result<(), Failure> {
    wf_monitor::serve_router(listener, router)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))
}
