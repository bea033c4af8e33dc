//! Tests of configuration layering and validation (file, environment, flags).

use super::*;

fn file(yaml: &str) -> ConfigFile {
    serde_yaml::from_str(yaml).expect("test yaml parses")
}

#[test]
fn cluster_flag_forms() {
    let c: ClusterConfig = "prod=/etc/talos/config#admin".parse().expect("parses");
    assert_eq!(c.name, "prod");
    assert_eq!(c.talosconfig, PathBuf::from("/etc/talos/config"));
    assert_eq!(c.context.as_deref(), Some("admin"));
    let c: ClusterConfig = "lab=cfg".parse().expect("parses");
    assert_eq!(c.context, None);
    for bad in ["prod", "=x", "prod=", "prod=x#"] {
        assert!(
            bad.parse::<ClusterConfig>().is_err(),
            "{bad} should be refused"
        );
    }
}

#[test]
fn defaults_then_file_then_flags() {
    let args = ServeArgs {
        clusters: vec!["a=x".parse().expect("parses")],
        ..Default::default()
    };
    let c = Config::from_layers(None, &args).expect("loads");
    assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(c.poll_interval, Duration::from_secs(1));

    let f = file(
        "listen: 127.0.0.1:9000\npoll_interval: 500ms\nclusters:\n  - name: b\n    talosconfig: y\n    nodes: [10.0.0.1]\n",
    );
    let args = ServeArgs {
        listen: Some("127.0.0.1:9100".parse().expect("addr")),
        clusters: vec!["a=x".parse().expect("parses")],
        ..Default::default()
    };
    let c = Config::from_layers(Some((Path::new("f.yaml"), f)), &args).expect("loads");
    assert_eq!(c.listen.port(), 9100);
    assert_eq!(c.poll_interval, Duration::from_millis(500));
    assert_eq!(c.clusters.len(), 2);
    assert_eq!(
        c.clusters[0].nodes.as_deref(),
        Some(&["10.0.0.1".to_string()][..])
    );
}

#[test]
fn bad_settings_name_the_field() {
    let f = file("poll_interval: soon\nclusters: [{name: a, talosconfig: x}]\n");
    let err = Config::from_layers(Some((Path::new("/etc/c.yaml"), f)), &ServeArgs::default())
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "config file /etc/c.yaml: field \"poll_interval\": \"soon\" is not a duration like 2s, 500ms or 1m"
    );
    assert!(matches!(
        Config::from_layers(None, &ServeArgs::default()),
        Err(ConfigError::NoClusters)
    ));
    let args = ServeArgs {
        clusters: vec!["a=x".parse().expect("p"), "a=y".parse().expect("p")],
        ..Default::default()
    };
    assert!(
        matches!(Config::from_layers(None, &args), Err(ConfigError::DuplicateCluster(n)) if n == "a")
    );
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "listn: 1.2.3.4:5\n").expect("write");
    let err = read_file(&path).expect_err("refused");
    assert!(err.to_string().contains("unknown field `listn`"), "{err}");
    let missing = read_file(&dir.path().join("nope.yaml")).expect_err("refused");
    assert!(missing.to_string().starts_with("config file "), "{missing}");
}

#[test]
fn access_settings_come_from_the_file_and_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").expect("write");
    let f = file(&format!(
        "data_dir: /var/lib/talos-dr\nsecure_cookies: true\nmetrics_token_file: {}\nclusters: [{{name: a, talosconfig: x, talosconfigs: {{reader: {{talosconfig: r}}}}}}]\n",
        token.display()
    ));
    let c =
        Config::from_layers(Some((Path::new("c.yaml"), f)), &ServeArgs::default()).expect("loads");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/talos-dr"));
    assert!(c.secure_cookies);
    assert_eq!(c.metrics_token.as_ref().map(Secret::expose), Some("s3cret"));
    assert_eq!(format!("{:?}", c.metrics_token), "Some(Secret(..))");
    assert_eq!(
        c.clusters[0].talosconfigs[&TalosRole::Reader].talosconfig,
        PathBuf::from("r")
    );
    let defaults = Config::from_layers(
        None,
        &ServeArgs {
            clusters: vec!["a=x".parse().expect("parses")],
            ..Default::default()
        },
    )
    .expect("loads");
    assert_eq!(defaults.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert!(!defaults.secure_cookies);
    assert!(defaults.metrics_token.is_none());
}

#[test]
fn credential_flags_attach_to_their_cluster() {
    let args = ServeArgs {
        clusters: vec!["prod=/etc/all".parse().expect("parses")],
        credentials: vec![
            "prod:reader=/etc/reader#ro".parse().expect("parses"),
            "prod:etcd_backup=/etc/backup".parse().expect("parses"),
        ],
        ..Default::default()
    };
    let c = Config::from_layers(None, &args).expect("loads");
    let creds = &c.clusters[0].talosconfigs;
    assert_eq!(creds[&TalosRole::Reader].context.as_deref(), Some("ro"));
    assert_eq!(
        creds[&TalosRole::EtcdBackup].talosconfig,
        PathBuf::from("/etc/backup")
    );
    assert!("prod:root=/x".parse::<CredentialFlag>().is_err());
    let args = ServeArgs {
        clusters: vec!["prod=/etc/all".parse().expect("parses")],
        credentials: vec!["lab:admin=/etc/a".parse().expect("parses")],
        ..Default::default()
    };
    assert!(matches!(
        Config::from_layers(None, &args),
        Err(ConfigError::CredentialForUnknownCluster(n)) if n == "lab"
    ));
}

#[test]
fn recovery_settings_come_from_the_file_and_flags() {
    let f = file("recovery:\n  approvals_required: 2\n  approval_ttl: 5m\n  break_glass: false\n");
    let c = RecoveryConfig::from_layers(Some((Path::new("c.yaml"), f)), &ServeArgs::default())
        .expect("loads");
    assert_eq!(c.approvals_required, 2);
    assert_eq!(c.approval_ttl, Duration::from_secs(300));
    assert!(!c.break_glass_allowed);
    assert_eq!(c.wait_deadline, Duration::from_secs(600));
    let args = ServeArgs {
        break_glass: Some(true),
        recovery_wait_deadline: Some(Duration::from_secs(30)),
        ..Default::default()
    };
    let f = file("recovery: {approvals_required: 2}\n");
    let c = RecoveryConfig::from_layers(Some((Path::new("c.yaml"), f)), &args).expect("loads");
    assert!(c.break_glass_allowed);
    assert_eq!(c.wait_deadline, Duration::from_secs(30));
    let f = file("recovery: {approval_ttl: soon}\n");
    let err = RecoveryConfig::from_layers(Some((Path::new("c.yaml"), f)), &ServeArgs::default())
        .expect_err("refused");
    assert!(
        err.to_string().contains("field \"recovery.approval_ttl\""),
        "{err}"
    );
    let f = file("recovery: {approvals_required: 0}\n");
    assert!(matches!(
        RecoveryConfig::from_layers(Some((Path::new("c.yaml"), f)), &ServeArgs::default()),
        Err(ConfigError::NoApprovals)
    ));
    assert_eq!(
        RecoveryConfig::from_layers(None, &ServeArgs::default()).expect("defaults"),
        RecoveryConfig::default()
    );
}

#[test]
fn oidc_settings_come_from_the_file_and_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").expect("write");
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        format!(
            "clusters: [{{name: a, talosconfig: x}}]\noidc:\n  issuer: https://id.example\n  client_id: dr\n  client_secret_file: {}\n  redirect_url: https://dr.example/api/auth/oidc/callback\n  roles: {{sre: [operator]}}\n",
            secret.display()
        ),
    )
    .expect("write");
    let mut args = ServeArgs {
        config: Some(path.clone()),
        ..Default::default()
    };
    args.oidc.oidc_provider_name = Some("Corp".into());
    let oidc = load_oidc(&args).expect("loads").expect("on");
    assert_eq!(oidc.issuer, "https://id.example");
    assert_eq!(oidc.client_secret.expose(), "s3cret");
    assert_eq!(oidc.provider_name, "Corp");
    assert!(
        Config::load(&args).is_ok(),
        "the main config accepts the oidc section"
    );
    std::fs::write(&path, "oidc: {issuer: https://id.example, client_id: dr}\n").expect("write");
    let err = load_oidc(&args).expect_err("refused");
    assert!(
        err.to_string()
            .starts_with(&format!("config file {}: oidc", path.display())),
        "{err}"
    );
    assert_eq!(load_oidc(&ServeArgs::default()).expect("off"), None);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
    assert!(parse_duration("0s").is_err());
    assert!(parse_duration("2").is_err());
    assert!(parse_duration("fast").is_err());
}
