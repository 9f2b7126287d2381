//! The `keymint` command: a thin clap layer over the library.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keymint::config::Config;
use keymint::keys::Purpose;
use keymint::state::{App, StartError};

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

async fn users(cmd: UsersCmd, app: App) -> Result<(), StartError> {
    use keymint::audit::Actor::Cli;
    use keymint::users::{self, UserChange};
    // The same use cases as the admin API, so both doors apply the same rules.
    let fail = |e: keymint::error::Error| other(e.message);
    let id_of = |name: String| {
        let app = &app;
        async move { users::by_name(app, &name).await.map(|u| u.id).map_err(fail) }
    };
    let change = |id: String, change: UserChange| {
        let app = &app;
        async move {
            let (user, _) = users::update(app, Cli, &id, change).await.map_err(fail)?;
            print_json(&user)
        }
    };
    match cmd {
        UsersCmd::Create {
            username,
            roles,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let user = users::create(&app, Cli, &username, &password, &roles)
                .await
                .map_err(fail)?;
            print_json(&user)
        }
        UsersCmd::List => print_json(&app.users.list().await.map_err(other)?),
        UsersCmd::SetRoles { username, roles } => {
            let roles = Some(roles);
            let c = UserChange {
                roles,
                ..Default::default()
            };
            change(id_of(username).await?, c).await
        }
        UsersCmd::Disable { username } => {
            let c = UserChange {
                disabled: Some(true),
                ..Default::default()
            };
            change(id_of(username).await?, c).await
        }
        UsersCmd::Enable { username } => {
            let c = UserChange {
                disabled: Some(false),
                ..Default::default()
            };
            change(id_of(username).await?, c).await
        }
        UsersCmd::SetPassword {
            username,
            password_stdin,
        } => {
            let password = Some(read_password(password_stdin)?);
            let c = UserChange {
                password,
                ..Default::default()
            };
            change(id_of(username).await?, c).await
        }
    }
}

/// The first line of standard input, without its line ending (`--password-stdin` is required:
/// passwords never go on the command line).
fn read_password(password_stdin: bool) -> Result<String, StartError> {
    if !password_stdin {
        return Err(other(
            "pass --password-stdin and the password on standard input",
        ));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(other)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

async fn clients(cmd: ClientsCmd, app: App) -> Result<(), StartError> {
    use keymint::audit::Actor::Cli;
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
            let (client, secret) = keymint::clients::create(&app, Cli, &req)
                .await
                .map_err(|e| other(e.message))?;
            let mut v = serde_json::to_value(&client).map_err(other)?;
            v["client_secret"] = serde_json::Value::String(secret);
            print_json(&v)
        }
        ClientsCmd::List => print_json(&app.clients.list().await.map_err(other)?),
        ClientsCmd::Delete { client_id } => {
            keymint::clients::delete(&app, Cli, &client_id)
                .await
                .map_err(|e| other(e.message))?;
            eprintln!("deleted {client_id}");
            Ok(())
        }
    }
}
