//! The account subcommands (`users`, `clients`): they parse arguments, call the same use
//! cases as the admin API (so both doors apply the same rules) and print JSON.

use std::io::BufRead;

use clap::Subcommand;
use keymint::state::{App, StartError};

use crate::{other, print_json};

#[derive(Subcommand)]
pub enum ClientsCmd {
    /// Register a client; prints its secret once.
    Create {
        /// A human-readable name.
        #[arg(long)]
        name: String,
        /// Allowed grant type (repeatable): password, refresh_token, client_credentials,
        /// authorization_code.
        #[arg(long = "grant", required = true)]
        grant_types: Vec<String>,
        /// Allowed scope (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// `aud` of its access tokens (default: KEYMINT_AUDIENCE).
        #[arg(long)]
        audience: Option<String>,
        /// A redirect URI for the authorization code flow (repeatable; exact match).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return to (repeatable; exact match).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client: no secret (authentication method `none`), PKCE as for everyone.
        #[arg(long)]
        public: bool,
        /// Ask each user's consent once per scope set.
        #[arg(long)]
        consent: bool,
    },
    /// List clients (never their secrets).
    List,
    /// Delete a client and revoke its tokens.
    Delete { client_id: String },
}

#[derive(Subcommand)]
pub enum UsersCmd {
    /// Create a user; the password is read from standard input.
    Create {
        username: String,
        /// A role (repeatable), e.g. --role admin.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Display name (OpenID Connect `name`).
        #[arg(long)]
        name: Option<String>,
        /// Email address (OpenID Connect `email`).
        #[arg(long)]
        email: Option<String>,
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

pub async fn users(cmd: UsersCmd, app: App) -> Result<(), StartError> {
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
            name,
            email,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let profile = users::Profile { name, email };
            let user = users::create(&app, Cli, &username, &password, &roles, profile)
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

pub async fn clients(cmd: ClientsCmd, app: App) -> Result<(), StartError> {
    use keymint::audit::Actor::Cli;
    match cmd {
        ClientsCmd::Create {
            name,
            grant_types,
            scopes,
            audience,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            consent,
        } => {
            let req = keymint::clients::NewClient {
                name,
                grant_types,
                scopes,
                audience,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                consent,
            };
            let (client, secret) = keymint::clients::create(&app, Cli, &req)
                .await
                .map_err(|e| other(e.message))?;
            let mut v = serde_json::to_value(&client).map_err(other)?;
            v["client_secret"] = secret.map_or(serde_json::Value::Null, serde_json::Value::String);
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
