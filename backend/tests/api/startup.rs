use std::time::Duration;

use talos_dr::config::{ClusterConfig, Config};

use crate::pki::TestPki;

fn config_for(path: std::path::PathBuf, context: Option<&str>) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        poll_interval: Duration::from_secs(1),
        call_timeout: Duration::from_secs(1),
        clusters: vec![ClusterConfig {
            name: "prod".into(),
            talosconfig: path,
            context: context.map(str::to_string),
            nodes: None,
        }],
    }
}

#[tokio::test]
async fn a_bad_talosconfig_stops_the_start_and_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("talosconfig");
    let pki = TestPki::new();
    let text = pki.talosconfig("prod", &["127.0.0.1".into()], &[]);
    let key_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("key:"))
        .expect("key line")
        .to_string();
    std::fs::write(
        &path,
        text.replace(&key_line, "        key: '*not base64*'"),
    )
    .expect("write");

    let err = talos_dr::watch_clusters(&config_for(path.clone(), None)).expect_err("start refused");

    assert_eq!(
        err.to_string(),
        format!(
            "talosconfig {}: context \"prod\": field \"key\": not valid base64",
            path.display()
        )
    );
}

#[tokio::test]
async fn bad_node_names_stop_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("talosconfig");
    std::fs::write(
        &path,
        TestPki::new().talosconfig("prod", &["127.0.0.1".into()], &[]),
    )
    .expect("write");
    let mut config = config_for(path, None);
    config.clusters[0].nodes = Some(vec!["10.0.0.1:50000".into()]);

    let err = talos_dr::watch_clusters(&config).expect_err("start refused");

    assert!(
        err.to_string()
            .starts_with("cluster \"prod\": node \"10.0.0.1:50000\": "),
        "{err}"
    );
}

async fn serve_and_fail(args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_talos-dr"));
    command
        .arg("serve")
        .args(args)
        .env_remove("TALOS_DR_CONFIG")
        .env_remove("TALOS_DR_LISTEN")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .expect("the console exits instead of starting")
        .expect("the binary runs");
    assert!(!output.status.success(), "the console must refuse to start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn the_binary_refuses_to_start_on_a_missing_talosconfig() {
    let stderr = serve_and_fail(&[
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        "prod=/nonexistent/talosconfig",
    ])
    .await;

    assert!(
        stderr.contains("talosconfig /nonexistent/talosconfig: cannot read it"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_binary_refuses_an_unknown_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("talosconfig");
    std::fs::write(
        &path,
        TestPki::new().talosconfig("prod", &["127.0.0.1".into()], &[]),
    )
    .expect("write");
    let cluster = format!("prod={}#staging", path.display());

    let stderr = serve_and_fail(&["--listen", "127.0.0.1:0", "--cluster", &cluster]).await;

    assert!(
        stderr.contains(&format!(
            "talosconfig {}: context \"staging\": no such context; the file has: prod",
            path.display()
        )),
        "{stderr}"
    );
}
