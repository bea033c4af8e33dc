//! Who watches an incident, across replicas. Each console process knows the streams it serves;
//! on PostgreSQL it also writes them to `incident_watchers` (again on every heartbeat, so a
//! replica that dies drops out of the list) and tells the other replicas, whose views then list
//! everyone.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;

use crate::presence::PresenceHub;
use crate::storage::replicas::{HEARTBEAT, REPLICA_TIMEOUT};
use crate::storage::{ChangeRelay, Topic, begin_write};

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Keeps this process's watchers of `incident_id` in the table, until the process ends.
pub(super) fn share(
    pool: AnyPool,
    relay: ChangeRelay,
    instance: String,
    incident_id: String,
    hub: PresenceHub,
) {
    tokio::spawn(async move {
        let mut changes = hub.subscribe();
        let mut changed = false;
        loop {
            match write(&pool, &instance, &incident_id, &hub.usernames()).await {
                // The other replicas re-read the list once it is written.
                Ok(()) if changed => relay.publish(Topic::Incident, &incident_id),
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(incident = %incident_id, error = %e, "cannot share who watches the incident")
                }
            }
            tokio::select! {
                next = changes.changed() => {
                    if next.is_err() {
                        return;
                    }
                    changed = true;
                }
                () = tokio::time::sleep(HEARTBEAT) => changed = false,
            }
        }
    });
}

async fn write(
    pool: &AnyPool,
    instance: &str,
    incident_id: &str,
    usernames: &[String],
) -> Result<(), sqlx::Error> {
    let mut tx = begin_write(pool, crate::storage::WriteLock::Recovery).await?;
    sqlx::query("DELETE FROM incident_watchers WHERE incident_id = $1 AND instance = $2")
        .bind(incident_id)
        .bind(instance)
        .execute(&mut *tx)
        .await?;
    let now = wall_ms();
    for name in usernames {
        sqlx::query(
            "INSERT INTO incident_watchers (incident_id, instance, username, seen_at_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(incident_id)
        .bind(instance)
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Who watches through the other, live replicas.
pub(super) async fn elsewhere(
    pool: &AnyPool,
    instance: &str,
    incident_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT username FROM incident_watchers \
         WHERE incident_id = $1 AND instance <> $2 AND seen_at_ms >= $3",
    )
    .bind(incident_id)
    .bind(instance)
    .bind(wall_ms().saturating_sub(i64::try_from(REPLICA_TIMEOUT.as_millis()).unwrap_or(0)))
    .fetch_all(pool)
    .await
}
