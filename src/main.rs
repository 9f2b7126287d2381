//! The `keymint` command: a thin clap layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keymint::config::Config;
use keymint::keys::Purpose;
use keymint::state::{App, StartError};

mod cli;
use cli::{ClientsCmd, UsersCmd, clients, users};

#[derive(Parser)]
#[command(name = "keymint", version, about = "An RS256 identity provider", after_help = keymint::config::help())]
struct Cli {
    /// Optional TOML file; environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrates and creates keys first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCmd),
    /// Run one cleanup pass now (expired revocations, refresh tokens, retired keys).
    Cleanup,
    /// Print the OpenAPI document as JSON.
    Openapi,
    /// Print a documented configuration file with every setting at its default.
    ExampleConfig,
}

#[derive(Subcommand)]
enum KeysCmd {
    /// List every key with its state and times.
    List,
    /// Rotate now: next → active, active → retired, new next.
    Rotate {
        /// Rotate only this purpose (access or refresh); default both.
        #[arg(long, value_parser = ["access", "refresh"])]
        purpose: Option<String>,
    },
    /// Revoke a compromised key at once.
    Revoke { kid: String },
    /// Print public keys: the JWKS, or one key as JWK or PEM.
    Export {
        /// Only this key.
        #[arg(long)]
        kid: Option<String>,
        /// SPKI PEM instead of JWK (needs --kid).
        #[arg(long, requires = "kid")]
        pem: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keymint: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    keymint::logging::init(config.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keymint: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartError::Config(msg)) => {
            eprintln!("keymint: invalid configuration: {msg}");
            ExitCode::from(2)
        }
        Err(StartError::Other(msg)) => {
            eprintln!("keymint: {msg}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn other(e: impl std::fmt::Display) -> StartError {
    StartError::Other(e.to_string())
}

pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<(), StartError> {
    println!("{}", serde_json::to_string_pretty(v).map_err(other)?);
    Ok(())
}

async fn run(cmd: Command, config: Config) -> Result<(), StartError> {
    match cmd {
        Command::Openapi => print_json(&keymint::openapi_document()),
        Command::ExampleConfig => {
            print!("{}", keymint::config::example_toml());
            Ok(())
        }
        Command::Migrate => {
            let db = keymint::db::connect(&config.database_url)
                .await
                .map_err(other)?;
            keymint::db::migrate(&db).await.map_err(other)?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Serve => serve(config).await,
        Command::Cleanup => {
            let app = App::open(config).await?;
            print_json(
                &keymint::cleanup::run(&app, app.now())
                    .await
                    .map_err(other)?,
            )
        }
        Command::Keys(k) => keys(k, App::open(config).await?).await,
        Command::Users(u) => users(u, App::open(config).await?).await,
        Command::Clients(c) => clients(c, App::open(config).await?).await,
    }
}

async fn serve(config: Config) -> Result<(), StartError> {
    let bind = config.bind;
    let app = App::open(config).await?;
    app.bootstrap(app.now()).await.map_err(other)?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| StartError::Config(format!("KEYMINT_BIND: cannot listen on {bind}: {e}")))?;
    let metrics = match app.config.metrics_bind {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            StartError::Config(format!(
                "KEYMINT_METRICS_BIND: cannot listen on {addr}: {e}"
            ))
        })?),
        None => None,
    };
    // The addresses actually bound (port 0 picks a free one), on stdout for scripts and tests.
    if let Some(m) = metrics.as_ref().and_then(|m| m.local_addr().ok()) {
        println!("keymint metrics on http://{m}/metrics");
    }
    let tls = keymint::server::tls::Tls::configured(&app.config).map_err(StartError::Config)?;
    let bound = listener.local_addr().map_err(other)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("keymint listening on {scheme}://{bound}");
    let ring = app.keys.ring();
    tracing::info!(%bound, issuer = %app.config.issuer, published = ?ring.published_kids(), "keymint listening");
    let listeners = keymint::server::Listeners {
        api: listener,
        metrics,
        tls,
    };
    keymint::server::serve_all(Arc::new(app), listeners, keymint::server::shutdown_signal())
        .await
        .map_err(other)
}

async fn keys(cmd: KeysCmd, app: App) -> Result<(), StartError> {
    use keymint::audit::Actor::Cli;
    match cmd {
        KeysCmd::List => print_json(&app.keys.list().await.map_err(other)?),
        KeysCmd::Rotate { purpose } => {
            let purposes: Vec<Purpose> = match purpose.as_deref().and_then(Purpose::parse) {
                Some(p) => vec![p],
                None => Purpose::ALL.to_vec(),
            };
            print_json(
                &keymint::keys::admin::rotate(&app, Cli, &purposes)
                    .await
                    .map_err(other)?,
            )
        }
        KeysCmd::Revoke { kid } => {
            let info = keymint::keys::admin::revoke(&app, Cli, &kid)
                .await
                .map_err(other)?;
            print_json(&info)
        }
        KeysCmd::Export { kid: None, .. } => {
            let ring = app.keys.ring();
            let doc: serde_json::Value = serde_json::from_slice(ring.jwks().0).map_err(other)?;
            print_json(&doc)
        }
        KeysCmd::Export {
            kid: Some(kid),
            pem,
        } => {
            let (_, jwk) = app.keys.public(&kid).await.map_err(other)?;
            if pem {
                print!(
                    "{}",
                    keymint::keys::material::public_pem(&jwk.n, &jwk.e).map_err(other)?
                );
                Ok(())
            } else {
                print_json(&jwk)
            }
        }
    }
}
