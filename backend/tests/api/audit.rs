//! The audit trail: what gets recorded, listing and export, and the hash chain that shows a
//! changed row.

use std::time::Duration;

use reqwest::Method;
use talos_dr::audit::ChainReport;
use talos_dr_shared::{AuditEntry, Role};

use crate::fake::FakeTalos;
use crate::helpers::{TEST_PASSWORD, TestApp, spawn_app};

async fn entries(app: &TestApp, query: &str) -> serde_json::Value {
    let response = app.tester().get(&format!("/api/audit{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

fn parse(list: &serde_json::Value) -> Vec<AuditEntry> {
    serde_json::from_value(list["entries"].clone()).expect("entries")
}

/// The console's command line on `app`'s database (`--data-dir` given by the caller; a
/// PostgreSQL database through DATABASE_URL).
fn command_on(app: &TestApp) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_talos-dr"));
    match app.database_url() {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command
}

/// Lets a test tamper with the trail the way someone with the database could.
async fn drop_append_only_guard(app: &TestApp, sqlite_trigger: &str) {
    let sql = match app.database_url() {
        // One PostgreSQL trigger guards updates and deletes.
        Some(_) => "DROP TRIGGER audit_log_no_update ON audit_log".to_string(),
        None => format!("DROP TRIGGER {sqlite_trigger}"),
    };
    sqlx::query(&sql)
        .execute(&app.storage.pool)
        .await
        .expect("drop");
}

async fn talos_dr(app: &TestApp, args: &[&str]) -> std::process::Output {
    let command = command_on(app)
        .args(args)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(30), command)
        .await
        .expect("the command finishes")
        .expect("the binary runs")
}

#[tokio::test]
async fn sign_ins_failures_sign_outs_and_changes_are_recorded() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.add_user("alice", &[Role::Operator]).await;
    let alice = app.sign_in("alice", TEST_PASSWORD).await;
    app.anonymous()
        .login("alice", "not her password at all")
        .await;
    alice
        .send(Method::DELETE, "/api/session")
        .send()
        .await
        .expect("sent");
    app.tester()
        .send(Method::POST, "/api/users")
        .json(&serde_json::json!({"username": "bob", "roles": ["viewer", "approver"]}))
        .send()
        .await
        .expect("sent");

    let all = parse(&entries(&app, "").await);

    let actions: Vec<(&str, &str, &str)> = all
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("login", "tester", "ok"),
            ("login", "alice", "ok"),
            (
                "login_failed",
                "alice",
                "refused: wrong username or password"
            ),
            ("logout", "alice", "ok"),
            ("user_create", "tester", "ok"),
        ]
    );
    let create = &all[0];
    assert_eq!(create.target.as_deref(), Some("bob"));
    assert_eq!(create.parameters["roles"], "viewer,approver");
    assert_eq!(create.roles, Role::ALL.to_vec());
    assert_eq!(create.client.as_deref(), Some("127.0.0.1"));
    assert!(
        all.iter()
            .all(|e| !e.parameters.values().any(|v| v.contains(TEST_PASSWORD)))
    );
    for pair in all.windows(2) {
        assert_eq!(
            pair[1].hash, pair[0].prev_hash,
            "each entry names the one before"
        );
    }

    let failed = parse(&entries(&app, "?action=login_failed").await);
    assert_eq!(failed.len(), 1);
    let by_alice = parse(&entries(&app, "?actor=alice").await);
    assert_eq!(by_alice.len(), 3);
    let future = parse(&entries(&app, "?since=2999-01-01T00:00:00Z").await);
    assert!(future.is_empty());
}

#[tokio::test]
async fn listing_pages_and_export_has_every_entry() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    for _ in 0..4 {
        app.anonymous()
            .login("tester", "wrong password again")
            .await;
    }

    let first = entries(&app, "?limit=2").await;
    let before = first["meta"]["next_before"].as_i64().expect("a next page");
    let second = entries(&app, &format!("?limit=2&before={before}")).await;
    let bad = app.tester().get("/api/audit?since=yesterday").await;
    let export = app.tester().get("/api/audit/export").await;

    let seqs: Vec<i64> = parse(&first)
        .iter()
        .chain(parse(&second).iter())
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![5, 4, 3, 2]);
    assert_eq!(bad.status(), 400);
    let message = bad.text().await.expect("body");
    assert!(message.contains("\\\"since\\\""), "{message}");
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let text = export.text().await.expect("body");
    let lines: Vec<AuditEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("an entry per line"))
        .collect();
    assert_eq!(
        lines.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
}

#[tokio::test]
async fn a_changed_row_breaks_the_chain_at_that_entry() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    for _ in 0..3 {
        app.anonymous().login("nobody", "some password here").await;
    }
    let data_dir = app.data_dir.path().to_str().expect("utf8 path").to_string();
    assert_eq!(
        app.storage.audit.verify().await.expect("verifies"),
        ChainReport::Intact { entries: 4 }
    );
    let intact = talos_dr(&app, &["audit", "verify", "--data-dir", &data_dir]).await;
    assert!(intact.status.success());
    assert_eq!(
        String::from_utf8_lossy(&intact.stdout).trim(),
        "audit trail intact: 4 entries, hash chain verified"
    );

    // The table refuses changes; someone with the database file can still drop the guard.
    let refused = sqlx::query("UPDATE audit_log SET outcome = 'ok' WHERE seq = 3")
        .execute(&app.storage.pool)
        .await;
    assert!(refused.is_err(), "the trigger refuses updates");
    drop_append_only_guard(&app, "audit_log_no_update").await;
    sqlx::query("UPDATE audit_log SET actor = 'tester' WHERE seq = 3")
        .execute(&app.storage.pool)
        .await
        .expect("update");

    let report = app.storage.audit.verify().await.expect("verifies");
    let broken = talos_dr(&app, &["audit", "verify", "--data-dir", &data_dir]).await;

    assert!(
        matches!(report, ChainReport::Broken { seq: 3, .. }),
        "{report:?}"
    );
    assert!(!broken.status.success());
    let stdout = String::from_utf8_lossy(&broken.stdout);
    assert!(
        stdout.starts_with("audit trail BROKEN at entry 3: "),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_removed_row_is_named_too() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    for _ in 0..3 {
        app.anonymous().login("nobody", "some password here").await;
    }
    drop_append_only_guard(&app, "audit_log_no_delete").await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&app.storage.pool)
        .await
        .expect("delete");

    let report = app.storage.audit.verify().await.expect("verifies");

    assert!(
        matches!(&report, ChainReport::Broken { seq: 2, problem } if problem.contains("missing")),
        "{report:?}"
    );
}

#[tokio::test]
async fn user_add_prints_a_password_that_signs_in() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let data_dir = app.data_dir.path().to_str().expect("utf8 path").to_string();

    let added = talos_dr(
        &app,
        &[
            "user",
            "add",
            "erin",
            "--role",
            "approver",
            "--role",
            "viewer",
            "--data-dir",
            &data_dir,
        ],
    )
    .await;
    let duplicate = talos_dr(
        &app,
        &[
            "user",
            "add",
            "erin",
            "--role",
            "viewer",
            "--data-dir",
            &data_dir,
        ],
    )
    .await;
    let bad_role = talos_dr(
        &app,
        &[
            "user",
            "add",
            "frank",
            "--role",
            "root",
            "--data-dir",
            &data_dir,
        ],
    )
    .await;

    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let password = String::from_utf8_lossy(&added.stdout).trim().to_string();
    assert_eq!(password.len(), 24);
    let erin = app.sign_in("erin", &password).await;
    assert_eq!(
        erin.get("/api/audit").await.status(),
        200,
        "approvers read the trail"
    );
    assert!(!duplicate.status.success());
    assert!(
        String::from_utf8_lossy(&duplicate.stderr).contains("a user named \"erin\" already exists")
    );
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("\"root\" is not a role"));
    let trail = app
        .storage
        .audit
        .list(&talos_dr::audit::AuditFilter {
            action: Some("user_create".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(trail[0].target.as_deref(), Some("erin"));
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin() {
    use tokio::io::AsyncWriteExt as _;
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let data_dir = app.data_dir.path().to_str().expect("utf8 path").to_string();
    let mut child = command_on(&app)
        .args([
            "user",
            "add",
            "gina",
            "--role",
            "operator",
            "--password-stdin",
            "--data-dir",
            &data_dir,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"gina's own long password\n")
        .await
        .expect("write");
    drop(stdin);
    let output = child.wait_with_output().await.expect("finishes");

    assert!(output.status.success());
    assert!(
        output.stdout.is_empty(),
        "no password is printed when one was given"
    );
    app.sign_in("gina", "gina's own long password").await;
}
