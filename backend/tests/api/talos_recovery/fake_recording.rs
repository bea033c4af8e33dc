//! The fake Talos cluster records every recovery call and follows its scripts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use talos_dr::talos::{ApplyMode, BootstrapOptions, TalosApi, TalosError, TalosRecoveryApi};
use talos_dr_shared::ServiceState;

use super::lab::{byte_stream, wipe};
use crate::fake::{self, FakeTalos, RecoveryCallKind, Script};

#[tokio::test]
async fn the_fake_records_recovery_calls_and_follows_scripts() {
    let fake = FakeTalos::healthy_cluster(2);
    let (one, two) = (fake::node_name(1), fake::node_name(2));
    let first_boot = fake.boot_id_of(&one);

    assert!(fake.reset(&one, &wipe(&[])).await.is_err());
    assert!(
        fake.recovery_calls().is_empty(),
        "refused before sending, like the client"
    );
    fake.after_call(|fake, call| {
        if call.kind() == RecoveryCallKind::Reset {
            fake.etcd_preparing(call.node());
        }
    });
    fake.reset(&one, &wipe(&["EPHEMERAL"]))
        .await
        .expect("reset");
    assert_ne!(fake.boot_id(&one).await.expect("boot id"), first_boot);
    let etcd = fake
        .etcd_service(&one)
        .await
        .expect("service")
        .expect("etcd");
    assert_eq!(
        etcd.state,
        ServiceState::Preparing,
        "the after_call hook ran"
    );

    let sent = Arc::new(AtomicU64::new(0));
    let report = sent.clone();
    fake.etcd_recover(
        &one,
        byte_stream(vec![9u8; 2500]),
        Box::new(move |n| report.store(n, Ordering::SeqCst)),
    )
    .await
    .expect("upload");
    assert_eq!(sent.load(Ordering::SeqCst), 2500);
    fake.script(
        &one,
        RecoveryCallKind::Bootstrap,
        Script::FailOnce(TalosError::Refused("not ready".into())),
    );
    assert_eq!(
        fake.bootstrap(
            &one,
            BootstrapOptions {
                recover_etcd: true,
                recover_skip_hash_check: false
            }
        )
        .await,
        Err(TalosError::Refused("not ready".into()))
    );
    fake.bootstrap(
        &one,
        BootstrapOptions {
            recover_etcd: true,
            recover_skip_hash_check: false,
        },
    )
    .await
    .expect("the failure was for one call");
    fake.apply_configuration(&two, b"machine: {}".to_vec(), ApplyMode::Staged)
        .await
        .expect("apply");
    fake.script(&two, RecoveryCallKind::Reboot, Script::Hang);
    let hung = tokio::time::timeout(Duration::from_millis(200), fake.reboot(&two)).await;
    assert!(hung.is_err(), "a hanging call never answers");
    fake.clear_script(&two, RecoveryCallKind::Reboot);
    fake.script(
        &two,
        RecoveryCallKind::Dmesg,
        Script::Fail(TalosError::Timeout),
    );
    assert!(fake.dmesg(&two, false, 10).await.is_err());

    let changes: Vec<(RecoveryCallKind, String)> = fake
        .state_changes()
        .iter()
        .map(|c| (c.kind(), c.node().to_string()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (RecoveryCallKind::Reset, one.clone()),
            (RecoveryCallKind::EtcdRecover, one.clone()),
            (RecoveryCallKind::Bootstrap, one.clone()),
            (RecoveryCallKind::Bootstrap, one.clone()),
            (RecoveryCallKind::ApplyConfiguration, two.clone()),
            (RecoveryCallKind::Reboot, two.clone()),
        ],
        "every call, failed and hung ones included, in order"
    );
    assert!(matches!(
        &fake.state_changes()[1],
        fake::RecoveryCall::EtcdRecover { bytes, .. } if bytes.len() == 2500
    ));
    assert!(matches!(
        &fake.state_changes()[0],
        fake::RecoveryCall::Reset { options, .. } if options.wipe_labels == vec!["EPHEMERAL".to_string()] && !options.graceful
    ));
    assert_eq!(fake.count(&one, RecoveryCallKind::Bootstrap), 2);

    fake.push_kernel_log(&one, "old line");
    let mut log = fake.dmesg(&one, true, 1).await.expect("followed");
    fake.push_kernel_log(&one, "[talos] recovering etcd from snapshot");
    fake.push_kernel_log(&two, "another node's line");
    let first = log.next().await.expect("line").expect("ok").text;
    let second = log.next().await.expect("line").expect("ok").text;
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("old line", "[talos] recovering etcd from snapshot")
    );
    assert_eq!(fake.count(&one, RecoveryCallKind::Dmesg), 1);
}
