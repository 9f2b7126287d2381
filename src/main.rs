//! The `keymint` command: a thin clap layer over the library.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keymint::config::{Config, LogFormat};
use keymint::keys::Purpose;
use keymint::state::{App, StartError};

#[derive(Parser)]
#[command(name = "keymint", version, about = "An RS256 identity provider", after_help = keymint::config::ENV_HELP)]
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

#[derive(Subcommand)]
enum ClientsCmd {
    /// Register a client; prints its secret once.
    Create {
        /// A human-readable name.
        #[arg(long)]
        name: String,
        /// Allowed grant type (repeatable): password, refresh_token, client_credentials.
        #[arg(long = "grant", required = true)]
        grant_types: Vec<String>,
        /// Allowed scope (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// `aud` of its access tokens (default: KEYMINT_AUDIENCE).
        #[arg(long)]
        audience: Option<String>,
    },
    /// List clients (never their secrets).
    List,
    /// Delete a client and revoke its tokens.
    Delete { client_id: String },
}

#[derive(Subcommand)]
enum UsersCmd {
    /// Create a user; the password is read from standard input.
    Create {
        username: String,
        /// A role (repeatable), e.g. --role admin.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input (required: passwords
        /// never go on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Replace a user's roles.
    SetRoles {
        username: String,
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Disable a user and end their sessions (never the last enabled admin).
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Set a user's password (read from standard input) and end their sessions.
    SetPassword {
        username: String,
        /// Read the password from the first line of standard input (required).
        #[arg(long)]
        password_stdin: bool,
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
    init_logging(config.log_format);
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

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn other(e: impl std::fmt::Display) -> StartError {
    StartError::Other(e.to_string())
}

fn print_json(v: &impl serde::Serialize) -> Result<(), StartError> {
    println!("{}", serde_json::to_string_pretty(v).map_err(other)?);
    Ok(())
}

async fn run(cmd: Command, config: Config) -> Result<(), StartError> {
    match cmd {
        Command::Openapi => print_json(&keymint::openapi_document()),
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
    let bound = listener.local_addr().map_err(other)?;
    println!("keymint listening on http://{bound}");
    let ring = app.keys.ring();
    tracing::info!(%bound, issuer = %app.config.issuer, published = ?ring.published_kids(), "keymint listening");
    let listeners = keymint::server::Listeners {
        api: listener,
        metrics,
    };
    keymint::server::serve_all(Arc::new(app), listeners, keymint::server::shutdown_signal())
        .await
        .map_err(other)
}

async fn keys(cmd: KeysCmd, app: App) -> Result<(), StartError> {
    let now = app.now();
    match cmd {
        KeysCmd::List => print_json(&app.keys.list().await.map_err(other)?),
        KeysCmd::Rotate { purpose } => {
            let purposes: Vec<Purpose> = match purpose.as_deref().and_then(Purpose::parse) {
                Some(p) => vec![p],
                None => Purpose::ALL.to_vec(),
            };
            print_json(
                &keymint::jobs::rotate(&app, &purposes, "cli", now)
                    .await
                    .map_err(other)?,
            )
        }
        KeysCmd::Revoke { kid } => {
            let info = app.keys.revoke(&kid, now).await.map_err(other)?;
            audit_cli(
                &app,
                "key.revoke",
                None,
                serde_json::json!({"kid": kid}),
                now,
            )
            .await;
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

async fn users(cmd: UsersCmd, app: App) -> Result<(), StartError> {
    let now = app.now();
    let by_name = |name: String| {
        let store = app.users.clone();
        async move {
            store
                .by_username(&name)
                .await
                .map_err(other)?
                .map(|c| c.user)
                .ok_or_else(|| other(format!("no user named {name:?}")))
        }
    };
    match cmd {
        UsersCmd::Create {
            username,
            roles,
            password_stdin,
        } => {
            if !password_stdin {
                return Err(other(
                    "pass --password-stdin and the password on standard input",
                ));
            }
            let password = read_password()?;
            let user = app
                .users
                .create(&username, &password, &roles, now)
                .await
                .map_err(|e| other(e.message))?;
            audit_cli(
                &app,
                "user.create",
                Some(&user.id),
                serde_json::Value::Null,
                now,
            )
            .await;
            print_json(&user)
        }
        UsersCmd::List => print_json(&app.users.list().await.map_err(other)?),
        UsersCmd::SetRoles { username, roles } => {
            let user = by_name(username).await?;
            let user = app
                .users
                .set_roles(&user.id, &roles, now)
                .await
                .map_err(|e| other(e.message))?;
            audit_cli(
                &app,
                "user.update",
                Some(&user.id),
                serde_json::json!({"roles": user.roles}),
                now,
            )
            .await;
            print_json(&user)
        }
        UsersCmd::Disable { username } => {
            let user = by_name(username).await?;
            let user = app
                .users
                .set_disabled(&user.id, true, now)
                .await
                .map_err(|e| other(e.message))?;
            // As over HTTP: a disabled user's sessions end now, on every instance.
            app.sessions
                .revoke_user_sessions(&user.id, "user disabled", now)
                .await
                .map_err(other)?;
            audit_cli(
                &app,
                "user.disable",
                Some(&user.id),
                serde_json::Value::Null,
                now,
            )
            .await;
            print_json(&user)
        }
        UsersCmd::Enable { username } => {
            let user = by_name(username).await?;
            let user = app
                .users
                .set_disabled(&user.id, false, now)
                .await
                .map_err(|e| other(e.message))?;
            audit_cli(
                &app,
                "user.update",
                Some(&user.id),
                serde_json::json!({"disabled": false}),
                now,
            )
            .await;
            print_json(&user)
        }
        UsersCmd::SetPassword {
            username,
            password_stdin,
        } => {
            if !password_stdin {
                return Err(other(
                    "pass --password-stdin and the password on standard input",
                ));
            }
            let password = read_password()?;
            let user = by_name(username).await?;
            let user = app
                .users
                .set_password(&user.id, &password, now)
                .await
                .map_err(|e| other(e.message))?;
            // As over HTTP: a new password ends every session.
            let revoked = app
                .sessions
                .revoke_user_sessions(&user.id, "password changed", now)
                .await
                .map_err(other)?;
            audit_cli(
                &app,
                "user.update",
                Some(&user.id),
                serde_json::json!({"password_changed": true, "revoked_sessions": revoked}),
                now,
            )
            .await;
            print_json(&user)
        }
    }
}

/// Record an administrative action taken through the CLI.
async fn audit_cli(
    app: &App,
    kind: &str,
    subject: Option<&str>,
    detail: serde_json::Value,
    now: i64,
) {
    let mut e = keymint::audit::Event::new(kind, "ok")
        .actor(Some("cli"))
        .subject(subject);
    if !detail.is_null() {
        e = e.detail(detail);
    }
    keymint::audit::record(&app.db, e, now).await
}

/// The first line of standard input, without its line ending.
fn read_password() -> Result<String, StartError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(other)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

async fn clients(cmd: ClientsCmd, app: App) -> Result<(), StartError> {
    let now = app.now();
    match cmd {
        ClientsCmd::Create {
            name,
            grant_types,
            scopes,
            audience,
        } => {
            let req = keymint::clients::NewClient {
                name,
                grant_types,
                scopes,
                audience,
            };
            let (client, secret) = app
                .clients
                .create(&req, now)
                .await
                .map_err(|e| other(e.message))?;
            audit_cli(
                &app,
                "client.create",
                Some(&client.client_id),
                serde_json::Value::Null,
                now,
            )
            .await;
            let mut v = serde_json::to_value(&client).map_err(other)?;
            v["client_secret"] = serde_json::Value::String(secret);
            print_json(&v)
        }
        ClientsCmd::List => print_json(&app.clients.list().await.map_err(other)?),
        ClientsCmd::Delete { client_id } => {
            if !app.clients.delete(&client_id).await.map_err(other)? {
                return Err(other(format!("no client {client_id:?}")));
            }
            app.sessions
                .revoke_client(&client_id, "client deleted", now)
                .await
                .map_err(other)?;
            audit_cli(
                &app,
                "client.delete",
                Some(&client_id),
                serde_json::Value::Null,
                now,
            )
            .await;
            eprintln!("deleted {client_id}");
            Ok(())
        }
    }
}
