//! Passwords and the admin token: where they come from, the permission rule for
//! their files, and that none of them is ever shown.

use super::*;

/// Asserts that `secret` is nowhere in the error's messages, `Display` or `Debug`.
fn assert_not_shown(err: &ConfigError, secret: &str) {
    let all = format!("{err} {err:?}");
    assert!(!all.contains(secret), "{secret:?} shown: {all}");
}

fn encoder_with(line: &str) -> String {
    format!("[[encoder]]\nid = \"a\"\nurl = \"http://h\"\n{line}\n")
}

#[test]
fn a_password_typed_into_password_env_is_never_shown() {
    for secret in [
        "hunter2",
        "correct horse battery staple",
        "p@ss:w0rd!",
        "S3cr3t-Pa$$",
    ] {
        let text = encoder_with(&format!("password_env = {secret:?}"));
        let err = parse(&text).unwrap_err();
        assert_eq!(err.issues.len(), 1, "{err}");
        assert_eq!(err.issues[0].key, "encoder[0].password_env", "{err}");
        assert_eq!(err.issues[0].line, Some(4), "{err}");
        assert_not_shown(&err, secret);
    }
    let err = parse(&encoder_with("password_env = \"hunter 2\"")).unwrap_err();
    assert!(
        err.issues[0]
            .message
            .starts_with("password_env must name an environment variable"),
        "{err}"
    );
    let err = parse(&encoder_with("password_env = \"hunter2\"")).unwrap_err();
    assert!(err.issues[0].message.contains("is not set"), "{err}");
}

#[test]
fn a_conventional_variable_name_is_shown_so_the_operator_can_fix_it() {
    let err = parse(&encoder_with("password_env = \"HELO_STUDIO_PW\"")).unwrap_err();
    assert_eq!(
        err.issues[0].message, "environment variable HELO_STUDIO_PW is not set",
        "{err}"
    );
}

#[test]
fn no_secret_from_the_file_is_shown_in_any_mistake() {
    let text = r#"[[encoder]]
id = "a"
url = "http://admin:url-secret@10.0.0.1"
[[encoder]]
id = "b"
url = "http://h"
password = 12345678
[[encoder]]
id = "c"
url = "http://i"
password = "inline-secret"
password_env = "HELO_PW"
"#;
    let err = parse(text).unwrap_err();
    assert_eq!(
        err.issues
            .iter()
            .map(|i| i.key.as_str())
            .collect::<Vec<_>>(),
        [
            "encoder[0].url",
            "encoder[1].password",
            "encoder[2].password_env"
        ],
        "{err}"
    );
    assert!(
        err.issues[0].message.contains("credentials in the URL"),
        "{err}"
    );
    for secret in ["url-secret", "12345678", "inline-secret", "from-env"] {
        assert_not_shown(&err, secret);
    }
    // Nor in a syntax error on a password line.
    let err = parse(&encoder_with("password = \"unterminated-secret")).unwrap_err();
    assert_eq!(err.issues[0].key, "encoder[0].password", "{err}");
    assert_not_shown(&err, "unterminated-secret");
    let err = parse(&encoder_with("password = bare-secret")).unwrap_err();
    assert_not_shown(&err, "bare-secret");
}

#[cfg(unix)]
#[test]
fn a_password_file_readable_by_others_is_refused_with_the_fix() {
    let dir = TempDir::new();
    let path = dir.file("pw.txt", "file-secret\n", 0o644);
    let text = encoder_with("password_file = \"pw.txt\"");
    let err = parse_in(&text, dir.path()).unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    let issue = &err.issues[0];
    assert_eq!(
        (issue.key.as_str(), issue.line),
        ("encoder[0].password_file", Some(4))
    );
    assert!(issue.message.contains(&path.display().to_string()), "{err}");
    assert!(issue.message.contains("mode 0644"), "{err}");
    assert!(
        issue
            .message
            .contains(&format!("chmod 600 {}", path.display())),
        "{err}"
    );
    assert_not_shown(&err, "file-secret");
    // Group-readable only is refused too.
    set_mode(&path, 0o640);
    assert!(parse_in(&text, dir.path()).is_err());
    set_mode(&path, 0o400);
    assert!(parse_in(&text, dir.path()).is_ok());
}

#[cfg(unix)]
#[test]
fn allow_insecure_password_files_accepts_them_with_a_warning() {
    let dir = TempDir::new();
    dir.file("pw.txt", "file-secret\n", 0o644);
    let text = format!(
        "allow_insecure_password_files = true\n{}",
        encoder_with("password_file = \"pw.txt\"")
    );
    let cfg = parse_in(&text, dir.path()).unwrap();
    assert_eq!(
        cfg.encoders[0].device.password().map(|p| p.expose()),
        Some("file-secret")
    );
    assert_eq!(cfg.warnings.len(), 1, "{:?}", cfg.warnings);
    let w = &cfg.warnings[0];
    assert_eq!(
        (w.key.as_str(), w.line),
        ("encoder[0].password_file", Some(5))
    );
    assert!(w.message.contains("allow_insecure_password_files"), "{w}");
    let off = text.replace("= true", "= false");
    assert!(parse_in(&off, dir.path()).is_err(), "false is the default");
}

#[test]
fn the_admin_token_comes_from_a_file_or_the_environment() {
    let dir = TempDir::new();
    dir.file("admin.token", "tok-from-file\n", 0o600);
    let enc = encoder_with("");
    let cfg = parse_in(
        &format!("admin_token_file = \"admin.token\"\n{enc}"),
        dir.path(),
    )
    .unwrap();
    let token = cfg.admin.token.as_ref().map(|t| t.expose().to_string());
    assert_eq!(token.as_deref(), Some("tok-from-file"));
    let dbg = format!("{cfg:?}");
    assert!(
        !dbg.contains("tok-from-file") && dbg.contains("AdminToken(<redacted>)"),
        "{dbg}"
    );

    let env = |var: &str| (var == "HELO_ADMIN_TOKEN").then(|| "tok-from-env".to_string());
    let text = format!("admin_token_env = \"HELO_ADMIN_TOKEN\"\n{enc}");
    let cfg = FleetConfig::parse("fleet.toml", &text, &env, None).unwrap();
    assert!(cfg
        .admin
        .token
        .as_ref()
        .is_some_and(|t| t.verify("tok-from-env")));

    let both = format!("admin_token_file = \"admin.token\"\nadmin_token_env = \"X\"\n{enc}");
    let err = parse_in(&both, dir.path()).unwrap_err();
    assert_eq!(err.issues[0].key, "admin_token_env", "{err}");
    assert!(err.issues[0].message.contains("at most one"), "{err}");

    dir.file("spaced.token", "tok with spaces\n", 0o600);
    let err = parse_in(
        &format!("admin_token_file = \"spaced.token\"\n{enc}"),
        dir.path(),
    )
    .unwrap_err();
    assert!(err.issues[0].message.contains("visible ASCII"), "{err}");
    assert_not_shown(&err, "tok with spaces");
}

#[cfg(unix)]
#[test]
fn an_admin_token_file_follows_the_password_file_rule() {
    let dir = TempDir::new();
    let path = dir.file("admin.token", "tok-from-file\n", 0o604);
    let text = format!("admin_token_file = \"admin.token\"\n{}", encoder_with(""));
    let err = parse_in(&text, dir.path()).unwrap_err();
    assert_eq!(err.issues[0].key, "admin_token_file", "{err}");
    assert!(
        err.issues[0]
            .message
            .contains(&format!("chmod 600 {}", path.display())),
        "{err}"
    );
    let allowed = format!("allow_insecure_password_files = true\n{text}");
    let cfg = parse_in(&allowed, dir.path()).unwrap();
    assert_eq!(cfg.warnings[0].key, "admin_token_file");
}

#[test]
fn an_admin_api_off_loopback_needs_a_token() {
    let dir = TempDir::new();
    dir.file("admin.token", "tok\n", 0o600);
    let enc = encoder_with("");
    for listen in ["0.0.0.0:9898", "10.0.0.5:9898", "[::]:9898"] {
        let err = parse_in(&format!("admin_listen = \"{listen}\"\n{enc}"), dir.path()).unwrap_err();
        assert_eq!(err.issues.len(), 1, "{err}");
        let issue = &err.issues[0];
        assert_eq!(
            (issue.key.as_str(), issue.line),
            ("admin_token_file", Some(1)),
            "{err}"
        );
        assert!(
            issue.message.contains("non-loopback address")
                && issue
                    .message
                    .contains("set admin_token_file or admin_token_env"),
            "{err}"
        );
        let with_token =
            format!("admin_listen = \"{listen}\"\nadmin_token_file = \"admin.token\"\n{enc}");
        assert!(parse_in(&with_token, dir.path()).is_ok(), "{listen}");
    }
    for listen in [
        "127.0.0.1:9898",
        "127.3.2.1:0",
        "[::1]:9898",
        "[::ffff:127.0.0.1]:9898",
    ] {
        let cfg = parse_in(&format!("admin_listen = \"{listen}\"\n{enc}"), dir.path());
        assert!(cfg.is_ok_and(|c| c.admin.token.is_none()), "{listen}");
    }
}

#[test]
fn admin_tls_needs_both_files_and_both_readable() {
    let dir = TempDir::new();
    let cert = dir.file("admin.crt", "-----BEGIN CERTIFICATE-----\n", 0o644);
    let key = dir.file("admin.key", "-----BEGIN PRIVATE KEY-----\n", 0o600);
    let enc = encoder_with("");
    let both = format!("admin_tls_cert = \"admin.crt\"\nadmin_tls_key = \"admin.key\"\n{enc}");
    let cfg = parse_in(&both, dir.path()).unwrap();
    assert_eq!(cfg.admin.tls, Some(TlsFiles { cert, key }));

    let err = parse_in(
        &format!("admin_tls_cert = \"admin.crt\"\n{enc}"),
        dir.path(),
    )
    .unwrap_err();
    assert_eq!(err.issues[0].key, "admin_tls_cert", "{err}");
    assert!(
        err.issues[0].message.contains("set admin_tls_key too"),
        "{err}"
    );
    let err = parse_in(&format!("admin_tls_key = \"admin.key\"\n{enc}"), dir.path()).unwrap_err();
    assert!(
        err.issues[0].message.contains("set admin_tls_cert too"),
        "{err}"
    );

    let missing = format!("admin_tls_cert = \"nope.crt\"\nadmin_tls_key = \".\"\n{enc}");
    let err = parse_in(&missing, dir.path()).unwrap_err();
    assert_eq!(
        err.issues
            .iter()
            .map(|i| (i.key.as_str(), i.line))
            .collect::<Vec<_>>(),
        [("admin_tls_cert", Some(1)), ("admin_tls_key", Some(2))],
        "{err}"
    );
    assert!(err.issues[0].message.contains("cannot read"), "{err}");
    assert!(
        err.issues[1].message.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn admin_auth_reads_needs_a_token_and_max_connections_a_sane_number() {
    let dir = TempDir::new();
    dir.file("admin.token", "tok\n", 0o600);
    let enc = encoder_with("");
    let cfg = parse_in(&enc, dir.path()).unwrap();
    assert!(!cfg.admin.auth_reads);
    assert_eq!(cfg.admin.max_connections, DEFAULT_ADMIN_MAX_CONNECTIONS);

    let err = parse_in(&format!("admin_auth_reads = true\n{enc}"), dir.path()).unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    assert_eq!(
        (err.issues[0].key.as_str(), err.issues[0].line),
        ("admin_auth_reads", Some(1)),
        "{err}"
    );
    assert!(
        err.issues[0].message.contains("needs an admin token"),
        "{err}"
    );
    let guarded = format!(
        "admin_token_file = \"admin.token\"\nadmin_auth_reads = true\n\
         admin_max_connections = 32\n{enc}"
    );
    let cfg = parse_in(&guarded, dir.path()).unwrap();
    assert!(cfg.admin.auth_reads && cfg.admin.token.is_some());
    assert_eq!(cfg.admin.max_connections, 32);

    for bad in ["0", "-1", "65537", "\"many\""] {
        let err =
            parse_in(&format!("admin_max_connections = {bad}\n{enc}"), dir.path()).unwrap_err();
        assert_eq!(err.issues.len(), 1, "{bad}: {err}");
        assert_eq!(err.issues[0].key, "admin_max_connections", "{err}");
    }
}
