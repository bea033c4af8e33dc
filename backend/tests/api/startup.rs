use std::time::Duration;

use talos_dr::config::Config;

use crate::helpers::console_config;

use crate::pki::TestPki;

fn config_for(path: std::path::PathBuf, context: Option<&str>) -> Config {
    let mut config = console_config("prod", path);
    config.poll_interval = Duration::from_secs(1);
    config.call_timeout = Duration::from_secs(1);
    config.clusters[0].context = context.map(str::to_string);
    config
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
        .env_remove("DATABASE_URL")
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

#[tokio::test]
async fn the_first_start_creates_an_admin_and_prints_its_password_once() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("talosconfig");
    std::fs::write(
        &path,
        TestPki::new().talosconfig("prod", &["127.0.0.1".into()], &[]),
    )
    .expect("write");
    let data_dir = dir.path().join("data");
    let start = || {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_talos-dr"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .arg("--cluster")
            .arg(format!("prod={}", path.display()))
            .env_remove("TALOS_DR_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command.spawn().expect("serve starts")
    };
    let read_until_listening = |mut child: tokio::process::Child| async move {
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let mut err_lines = tokio::io::BufReader::new(stderr).lines();
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = err_lines.next_line().await.expect("read") {
                if line.contains("console listening") {
                    break;
                }
            }
        })
        .await
        .expect("the console starts listening");
        child.kill().await.expect("stop");
        let mut out = String::new();
        let mut out_lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = out_lines.next_line().await {
            out.push_str(&line);
            out.push('\n');
        }
        out
    };

    let first = read_until_listening(start()).await;
    let second = read_until_listening(start()).await;

    let password = first
        .trim()
        .strip_prefix("talos-dr: created the first user: admin / ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("first start prints the admin password: {first:?}"))
        .to_string();
    assert!(
        second.is_empty(),
        "a second start creates nobody: {second:?}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&data_dir)
        .expect("data dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the data directory is private");
    let storage = talos_dr::Storage::open(&data_dir).await.expect("open");
    let admin = storage
        .users
        .find("admin")
        .await
        .expect("query")
        .expect("admin exists");
    assert_eq!(admin.roles, vec![talos_dr_shared::Role::Admin]);
    assert!(
        talos_dr::auth::password::verify_password(password, Some(admin.password_hash))
            .await
            .expect("verify")
    );
}

#[tokio::test]
async fn the_binary_refuses_a_database_it_cannot_use_naming_it_without_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("talosconfig");
    std::fs::write(
        &path,
        TestPki::new().talosconfig("prod", &["127.0.0.1".into()], &[]),
    )
    .expect("write");
    let cluster = format!("prod={}", path.display());
    let data_dir = dir.path().join("data");
    let data_dir = data_dir.to_str().expect("utf-8 path");
    let common = [
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        &cluster,
        "--data-dir",
        data_dir,
    ];

    // Nothing listens there: the console names the database, never its password.
    let mut args = common.to_vec();
    args.extend([
        "--database-url",
        "postgres://talos:s3cret@127.0.110.9:1/console",
    ]);
    let stderr = serve_and_fail(&args).await;
    assert!(
        stderr.contains("database postgres://talos:***@127.0.110.9:1/console: cannot open it"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let mut args = common.to_vec();
    args.extend(["--database-url", "mysql://talos@db/console"]);
    let stderr = serve_and_fail(&args).await;
    assert!(
        stderr.contains("--database-url (DATABASE_URL): scheme \"mysql\" is not supported"),
        "{stderr}"
    );
}
