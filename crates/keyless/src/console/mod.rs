//! `keyless console`: a local web console for operators.
//!
//! A small HTTP server on loopback serves an embedded single-page app ([`assets`]) and a
//! JSON proxy ([`api`]) that calls the Keyless management API and vaults with the
//! operator's own credentials ([`upstream`]: the admin file or the signed-in account,
//! found as the other management commands find them). The browser never sees a bearer
//! token; it proves it was opened from the printed URL with a per-launch secret, and
//! [`server`] refuses requests from other origins, hosts and local users without it.
//! The threat model is in `docs/design/console.md`.

mod api;
mod assets;
mod server;
mod upstream;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::Args;

use crate::process::shutdown_signal;

/// Options of `keyless console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Address to listen on: a loopback address (port 0 picks a free port; the ready
    /// line tells which). Other addresses are refused: the console acts with the
    /// operator's credentials.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Do not open a browser; only print the URL.
    #[arg(long)]
    pub no_open: bool,
    /// Admin credential file written by `keyless serve`
    /// [default: $KEYLESS_DATA_DIR/admin.json, else ./keyless-data/admin.json when it
    /// exists, else the signed-in account of `keyless login`].
    #[arg(long, env = "KEYLESS_ADMIN_FILE", value_name = "PATH")]
    pub admin_file: Option<PathBuf>,
    /// Subscription to show [default: the admin file's or the account's].
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,
}

/// Bytes of randomness in the launch secret (256 bits).
const SECRET_BYTES: usize = 32;

/// Runs `keyless console` until interrupted.
pub async fn run(args: ConsoleArgs) -> Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen {} is not a loopback address: the console acts with your credentials, \
             so it only listens on 127.0.0.1 or ::1 (reach it from elsewhere through an SSH \
             tunnel, e.g. ssh -L 8080:127.0.0.1:8080)",
            args.listen
        );
    }
    let upstream = upstream::Upstream::open(args.admin_file.as_deref(), args.subscription)
        .await
        .context("finding credentials for the console")?;
    let secret = launch_secret()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let state = Arc::new(server::Console::new(addr, secret.clone(), upstream));
    let router = server::router(state);
    let url = format!("http://{addr}/#{secret}");
    let shutdown = shutdown_signal()?;
    println!("keyless console: ready at {url}");
    // The ready line is what scripts and tests wait for.
    let _ = std::io::stdout().flush();
    let launcher = if args.no_open {
        None
    } else {
        open_browser(&url)
    };
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the console");
    if let Some(dir) = launcher {
        let _ = std::fs::remove_dir_all(dir);
    }
    served
}

/// 32 bytes from the OS RNG (aws-lc-rs), base64url without padding.
fn launch_secret() -> Result<String> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; SECRET_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the operating system's random number generator failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Opens the console in the user's browser. The URL (with its secret) is not put on a
/// command line, where every local user can read it in `ps`: it goes into a private
/// (0700 dir, 0600 file) launcher page that redirects, and the browser gets that file's
/// path. Returns the launcher's directory, removed at exit. Failing to open a browser is
/// not an error: the URL is printed.
fn open_browser(url: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("keyless-console-{}", uuid::Uuid::new_v4()));
    let page = dir.join("open.html");
    let written = crate::process::create_private_dir(&dir).and_then(|()| {
        write_private(
            &page,
            &format!(
                "<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
                 <meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>Keyless console</title>\
                 <a href=\"{url}\">Open the Keyless console</a>\n"
            ),
        )
    });
    if let Err(e) = written {
        eprintln!("keyless console: not opening a browser ({e:#}); open the URL above");
        return None;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(&page)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("keyless console: could not run {opener} ({e}); open the URL above");
    }
    Some(dir)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_url_safe() {
        let (Ok(a), Ok(b)) = (launch_secret(), launch_secret()) else {
            unreachable!("the RNG works in tests")
        };
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
