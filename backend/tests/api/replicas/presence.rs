//! Who looks at a cluster's live health, on every replica: a viewer with the health stream open
//! on replica A is listed in the health stream of replica B (and B's on A), and leaves B's list
//! once the stream on A closes.

use talos_dr_shared::{Role, Viewers};

use super::transfers::two_fake_replicas;
use crate::helpers::{SseStream, TEST_PASSWORD};
use crate::recovery::PATIENCE;

const STREAM: &str = "/api/clusters/prod/health/stream";

/// The next viewers list on `stream` that equals `expected`.
async fn until_viewers(stream: &mut SseStream, expected: &[&str], on: &str) {
    let seen = tokio::time::timeout(PATIENCE, async {
        loop {
            let event = stream.next_named("viewers").await;
            let viewers: Viewers = serde_json::from_str(&event.data).expect("data is Viewers");
            if viewers.viewers == expected {
                return;
            }
        }
    })
    .await;
    assert!(seen.is_ok(), "{on} never listed exactly {expected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_on_one_replica_is_listed_on_the_other_until_the_stream_closes() {
    let (a, b) = two_fake_replicas().await;
    let mut on_b = b.open_stream(STREAM).await;
    until_viewers(&mut on_b, &["tester"], "B").await;

    a.add_user("kai", &[Role::Viewer]).await;
    let kai = a.sign_in("kai", TEST_PASSWORD).await;
    let mut on_a = a.open_stream_as(&kai, STREAM).await;
    until_viewers(&mut on_b, &["kai", "tester"], "B").await;
    // And the other way round: A lists the viewer on B.
    until_viewers(&mut on_a, &["kai", "tester"], "A").await;

    drop(on_a);
    until_viewers(&mut on_b, &["tester"], "B after the stream on A closed").await;
}
