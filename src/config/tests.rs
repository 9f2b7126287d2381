//! Configuration: defaults, units, errors naming their variable, generated documents.
use super::*;

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_sources(None, &env)
}

#[test]
fn defaults_need_no_configuration() {
    let c = load(&[]).unwrap();
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.issuer, "http://127.0.0.1:8080");
    assert_eq!(c.audience, c.issuer);
    assert_eq!(c.access_ttl, Duration::from_secs(900));
    assert_eq!(c.refresh_ttl, Duration::from_secs(30 * 86400));
    assert_eq!(c.leeway, Duration::from_secs(30));
    assert_eq!(c.key_bits, 2048);
    assert!(c.database_url.starts_with("sqlite:"));
}

#[test]
fn durations_accept_the_documented_units() {
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(
        parse_duration("30d").unwrap(),
        Duration::from_secs(30 * 86400)
    );
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert!(parse_duration("15 minutes").is_err());
    assert!(parse_duration("-5s").is_err());
    assert!(parse_duration("99999999999999999999d").is_err());
}

#[test]
fn bad_values_name_the_variable() {
    let cases: &[(&str, &str)] = &[
        ("KEYMINT_ACCESS_TTL", "soon"),
        ("KEYMINT_KEY_BITS", "1024"),
        ("KEYMINT_BIND", "localhost"),
        ("KEYMINT_KEK", "c2hvcnQ="),
        ("KEYMINT_ISSUER", "ftp://x"),
        ("KEYMINT_ROTATION_CRON", "every tuesday"),
        ("KEYMINT_DATABASE_URL", "mysql://x"),
        ("KEYMINT_BOOTSTRAP_ADMIN", "nocolon"),
        ("KEYMINT_CORS_ORIGINS", "*"),
        ("KEYMINT_CORS_ORIGINS", "https://a.example/path"),
        ("KEYMINT_LOGIN_IP_FAILURES", "0"),
        ("KEYMINT_REQUEST_TIMEOUT", "0s"),
    ];
    for (var, value) in cases {
        let err = load(&[(var, value)]).unwrap_err();
        assert_eq!(err.var, *var, "{value}");
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn the_example_file_is_generated_from_the_table_and_states_the_defaults() {
    let committed = include_str!("../../keymint.example.toml");
    assert_eq!(
        committed,
        example_toml(),
        "keymint.example.toml is stale: run `cargo run -q -- example-config > keymint.example.toml`"
    );
    // Uncommented, every default in it loads to exactly the built-in configuration.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    let uncommented: String = committed
        .lines()
        .filter_map(|l| l.strip_prefix("# ").filter(|l| l.contains(" = \"")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, uncommented).unwrap();
    let from_file = Config::from_sources(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(
        format!("{from_file:?}"),
        format!("{:?}", load(&[]).unwrap())
    );
}

#[test]
fn help_names_every_variable_once() {
    let h = help();
    for s in SETTINGS {
        assert_eq!(
            h.matches(&format!("{} ", s.var())).count(),
            1,
            "{}",
            s.var()
        );
    }
}

#[test]
fn debug_hides_secrets() {
    let c = load(&[
        (
            "KEYMINT_KEK",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
        ("KEYMINT_BOOTSTRAP_ADMIN", "root:s3cret-pass"),
        ("KEYMINT_DATABASE_URL", "postgres://u:pw@h/db"),
    ])
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cret-pass"));
    assert!(!shown.contains("AAECAwQF"));
    assert!(!shown.contains(":pw@"));
}
