//! A node replaced after a hardware failure, re-created the way a person does it: the admin
//! downloads the node's machine-config backup from the console, the new machine boots into
//! maintenance mode, the config is applied to it (`talosctl apply-config --insecure`), and the
//! operator marks the step done with how it was re-created.

use std::net::Ipv4Addr;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use talos_api::machine::ApplyConfigurationRequest;
use talos_api::machine::apply_configuration_request::Mode;
use talos_dr_shared::recovery::RecoveryStep;
use talos_emulator::{Emulator, Role as TalosRole};

use super::{Team, post};

const CLUSTER: &str = "emulated";

/// The admin backs up every control-plane node's machine config, as a routine does.
pub(super) async fn back_up_configs(team: &Team) {
    let response = team
        .admin
        .send(
            Method::POST,
            &format!("/api/clusters/{CLUSTER}/machine-configs"),
        )
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
}

/// The machine config backup of `node`, downloaded by the admin.
async fn download_backup(team: &Team, node: &str) -> Vec<u8> {
    let list: serde_json::Value = team
        .admin
        .get(&format!("/api/clusters/{CLUSTER}/machine-configs"))
        .await
        .json()
        .await
        .expect("backup list");
    let id = list["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .find(|b| b["node"] == node)
        .and_then(|b| b["id"].as_str())
        .unwrap_or_else(|| panic!("a backup of {node}: {list}"))
        .to_string();
    let download = team
        .admin
        .get(&format!(
            "/api/clusters/{CLUSTER}/machine-configs/{id}/download"
        ))
        .await;
    assert_eq!(download.status(), 200);
    download.bytes().await.expect("backup body").to_vec()
}

/// Re-creates the step's node from its backup and marks the step done.
pub(super) async fn recreate(
    emulator: &Emulator,
    team: &Team,
    incident: &str,
    step: &RecoveryStep,
) {
    let target = step
        .target
        .as_ref()
        .expect("a re-create step names its node");
    let ip: Ipv4Addr = target.address.parse().expect("an IP address");
    let config = download_backup(team, &target.address).await;
    emulator
        .replace_machine(ip)
        .await
        .expect("a new machine in the node's place");
    let mut client = emulator
        .client(TalosRole::Admin, ip)
        .await
        .expect("the new machine's API answers");
    let applied = client
        .apply_configuration(ApplyConfigurationRequest {
            data: config,
            mode: Mode::Auto as i32,
            dry_run: false,
            try_mode_timeout: None,
        })
        .await
        .expect("the backup applies in maintenance mode")
        .into_inner();
    assert!(
        format!("{applied:?}").contains("reboot"),
        "maintenance mode applies with a reboot: {applied:?}"
    );
    // The machine reboots with the config; the plan's wait then sees it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let marked = post(
        &team.operator,
        &format!("/api/incidents/{incident}/steps/{}/resolve", step.id),
        &json!({"outcome": "done", "reason": "new machine, applied its backup with talosctl apply-config --insecure"}),
    )
    .await;
    assert_eq!(marked.status, 200, "{}", marked.body);
}
