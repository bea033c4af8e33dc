//! Fault tests of the staged recovery: the real console binary is killed with SIGKILL before,
//! during and after each reset and the bootstrap, and started again on the same database. The
//! flow must resume, never send a destructive call twice on its own, and end with a healthy
//! three-member cluster holding the snapshot's data; the emulator counts what each node executed.
//!
//! Two full recoveries cover every kill point for both kinds of step:
//!
//! | kill point                      | reset                  | bootstrap              |
//! |---------------------------------|------------------------|------------------------|
//! | approved, not run               | every scenario         | every scenario         |
//! | `after_claim` (Talos not called) | resets flow, node 2    | bootstrap flow         |
//! | call held in the node           | resets flow, node 2    | bootstrap flow         |
//! | `after_call` (sent not written) | resets flow, node 3    | bootstrap flow         |
//! | `after_sent`                    | bootstrap flow, node 1 | resets flow            |
//!
//! Addresses: 127.0.90.x and 127.0.91.x (nodes .2-.4, the console on .200).

mod cluster;
mod console;
mod finish;
mod flow;
mod kills;
mod people;
mod steps;

use talos_dr_shared::recovery::StepKind;

use flow::Recovery;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_resume_after_kills_before_during_and_after_the_call() {
    let mut recovery = Recovery::set_up(90).await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| recovery.cluster.ip(i));

    recovery.killed_before_run(StepKind::ResetNode, n1).await;
    recovery.killed_after_claim(StepKind::ResetNode, n2).await;
    recovery.killed_in_flight(StepKind::ResetNode, n2).await;
    recovery.plain_run(StepKind::ResetNode, n2).await;
    recovery
        .killed_after_the_call(StepKind::ResetNode, n3, "after_call")
        .await;
    recovery
        .killed_after_the_call(StepKind::Bootstrap, n1, "after_sent")
        .await;
    recovery.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_resumes_after_kills_before_during_and_after_the_call() {
    let mut recovery = Recovery::set_up(91).await;
    let [n1, n2, n3] = [0, 1, 2].map(|i| recovery.cluster.ip(i));

    recovery
        .killed_after_the_call(StepKind::ResetNode, n1, "after_sent")
        .await;
    recovery.plain_run(StepKind::ResetNode, n2).await;
    recovery.plain_run(StepKind::ResetNode, n3).await;
    recovery.killed_after_claim(StepKind::Bootstrap, n1).await;
    recovery.killed_in_flight(StepKind::Bootstrap, n1).await;
    recovery
        .killed_after_the_call(StepKind::Bootstrap, n1, "after_call")
        .await;
    recovery.finish().await;
}
