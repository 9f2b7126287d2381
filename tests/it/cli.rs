//! The `keymint` binary: configuration errors, and the CLI beside a running server.

use std::process::Command;

use crate::harness::{Backend, Server, Site, run_cli};

fn keymint() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keymint"))
}

#[test]
fn invalid_configuration_exits_2_with_one_line() {
    for (var, value) in [
        ("KEYMINT_ACCESS_TTL", "soon"),
        ("KEYMINT_KEY_BITS", "1000"),
        ("KEYMINT_KEK", "short"),
    ] {
        let out = keymint().arg("migrate").env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(var), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// SPEC section 6: a `kek` file readable by group or others stops start-up with one line naming
/// it (exit 2); a private one is used.
#[test]
fn a_kek_file_others_can_read_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let db = format!("sqlite://{}/k.db", dir.path().display());
    let run = || {
        keymint()
            .args(["keys", "list"])
            .env("KEYMINT_KEYS_DIR", &keys)
            .env("KEYMINT_DATABASE_URL", &db)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kek = keys.join("kek");
    let mode = std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(kek.to_str().unwrap()), "{err}");
}

#[test]
fn help_documents_every_variable() {
    let out = keymint().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "KEYMINT_BIND",
        "KEYMINT_ISSUER",
        "KEYMINT_AUDIENCE",
        "KEYMINT_DATABASE_URL",
        "KEYMINT_KEYS_DIR",
        "KEYMINT_KEK",
        "KEYMINT_KEY_BITS",
        "KEYMINT_ACCESS_TTL",
        "KEYMINT_REFRESH_TTL",
        "KEYMINT_ROTATION_CRON",
        "KEYMINT_CLEANUP_CRON",
        "KEYMINT_JWKS_MAX_AGE",
        "KEYMINT_LEEWAY",
        "KEYMINT_REFRESH_REUSE_GRACE",
        "KEYMINT_BOOTSTRAP_ADMIN",
    ] {
        assert!(help.contains(var), "--help does not mention {var}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_creates_users_while_the_server_runs() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let args = [
        "users",
        "create",
        "quinn",
        "--role",
        "admin",
        "--password-stdin",
    ];
    let out = run_cli(&site, &args, "quinn-password\n").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["roles"], serde_json::json!(["admin"]));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("quinn-password"));

    let t = s.login("quinn", "quinn-password").await;
    assert_eq!(s.get("/auth/me", Some(&t.access_token)).await.status(), 200);

    // Disabling from the CLI ends the user's sessions on the running server too (another
    // admin exists: the last one could not be disabled).
    s.user("keeper", "keeper-password", &["admin"]).await;
    let out = run_cli(&site, &["users", "disable", "quinn"], "").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = std::time::Instant::now();
    loop {
        let st = s.get("/auth/me", Some(&t.access_token)).await.status();
        if st == 401 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "CLI disable did not end the session"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let out = run_cli(&site, &["users", "list"], "").await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("quinn"));
    let out = run_cli(&site, &["users", "create", "x", "--password-stdin"], "").await;
    assert!(!out.status.success(), "an empty password is refused");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_admin_is_created_once() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[("KEYMINT_BOOTSTRAP_ADMIN", "root:root-password")]).await;
    let t = s.login("root", "root-password").await;
    let me: serde_json::Value = s
        .get("/auth/me", Some(&t.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], serde_json::json!(["admin"]));
    s.stop().await;
    // A second start with another password changes nothing: an admin exists.
    let s = Server::start(&site, &[("KEYMINT_BOOTSTRAP_ADMIN", "root:other-password")]).await;
    s.login("root", "root-password").await;
    s.stop().await;
}

/// The CLI registers browser sign-in users and clients as the admin API does (SPEC section 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_registers_oidc_users_and_clients() {
    let site = Site::new(Backend::Sqlite).await;
    site.seed_keys().await;
    let args = [
        "users",
        "create",
        "rhea",
        "--name",
        "Rhea Silvia",
        "--email",
        "rhea@example.com",
        "--password-stdin",
    ];
    let out = run_cli(&site, &args, "rhea-password\n").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (user["name"].as_str(), user["email"].as_str()),
        (Some("Rhea Silvia"), Some("rhea@example.com"))
    );
    let bad = run_cli(
        &site,
        &[
            "users",
            "create",
            "x",
            "--email",
            "no-at-sign",
            "--password-stdin",
        ],
        "x-password\n",
    )
    .await;
    assert!(!bad.status.success(), "an invalid email is refused");

    let args = [
        "clients",
        "create",
        "--name",
        "spa",
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--redirect-uri",
        "http://127.0.0.1:5173/cb",
        "--post-logout-redirect-uri",
        "http://127.0.0.1:5173/",
        "--public",
        "--consent",
    ];
    let out = run_cli(&site, &args, "").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        c["client_secret"],
        serde_json::Value::Null,
        "a public client has no secret"
    );
    assert_eq!(
        (c["public"].as_bool(), c["consent"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        c["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:5173/cb"])
    );
    assert_eq!(
        c["post_logout_redirect_uris"],
        serde_json::json!(["http://127.0.0.1:5173/"])
    );
    let args = [
        "clients",
        "create",
        "--name",
        "x",
        "--grant",
        "client_credentials",
        "--public",
    ];
    let out = run_cli(&site, &args, "").await;
    assert!(
        !out.status.success(),
        "the same rule as the API: no client_credentials for a public client"
    );
}
