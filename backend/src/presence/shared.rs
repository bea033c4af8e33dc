//! Who looks at something (an incident, a cluster's live health) across replicas. Each console
//! process knows the streams it serves; on PostgreSQL it also writes them to `console_viewers`
//! (again on every heartbeat, so a replica that dies drops out of the list) and tells the other
//! replicas, which re-read the list and re-send it to their browsers.

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;

use super::PresenceHub;
use crate::storage::replicas::{HEARTBEAT, REPLICA_TIMEOUT};
use crate::storage::{ChangeRelay, Topic};

/// What is being looked at; with the subject's name (an incident id, a cluster) it keys a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Incident,
    ClusterHealth,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Incident => "incident",
            Scope::ClusterHealth => "cluster_health",
        }
    }

    /// How the other replicas hear that the list changed.
    fn topic(self) -> Topic {
        match self {
            Scope::Incident => Topic::Incident,
            Scope::ClusterHealth => Topic::ClusterViewers,
        }
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where a process's viewers are shared.
#[derive(Debug, Clone)]
pub struct SharedViewers {
    pub pool: AnyPool,
    pub relay: ChangeRelay,
    pub instance: String,
}

impl SharedViewers {
    /// Keeps this process's viewers of (`scope`, `subject`) in the table for as long as the
    /// returned task runs. With `mirror`, the hub also learns who looks through the other
    /// replicas ([`PresenceHub::set_elsewhere`]), re-read when they say it changed
    /// ([`PresenceHub::changed_elsewhere`]) and every heartbeat, so a dead replica's viewers go.
    pub fn share(
        self,
        scope: Scope,
        subject: String,
        hub: PresenceHub,
        mirror: bool,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut changes = hub.subscribe();
            let mut changed = false;
            loop {
                match self.write(scope, &subject, &hub.usernames()).await {
                    // The other replicas re-read the list once it is written.
                    Ok(()) if changed => self.relay.publish(scope.topic(), &subject),
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(scope = scope.as_str(), subject = %subject, error = %e, "cannot share who looks")
                    }
                }
                if mirror {
                    match elsewhere(&self.pool, &self.instance, scope, &subject).await {
                        Ok(names) => hub.set_elsewhere(names),
                        Err(e) => {
                            tracing::warn!(scope = scope.as_str(), subject = %subject, error = %e, "cannot read who looks through the other replicas")
                        }
                    }
                }
                tokio::select! {
                    next = changes.changed() => {
                        if next.is_err() {
                            return;
                        }
                        changed = true;
                    }
                    () = hub.reread.notified() => changed = false,
                    () = tokio::time::sleep(HEARTBEAT) => changed = false,
                }
            }
        })
    }

    async fn write(
        &self,
        scope: Scope,
        subject: &str,
        usernames: &[String],
    ) -> Result<(), sqlx::Error> {
        // Each process rewrites only its own rows, so no advisory lock is needed: a viewer list
        // must not wait behind recovery writes (nor hold them up) every heartbeat.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM console_viewers WHERE scope = $1 AND subject = $2 AND instance = $3",
        )
        .bind(scope.as_str())
        .bind(subject)
        .bind(&self.instance)
        .execute(&mut *tx)
        .await?;
        let now = wall_ms();
        for name in usernames {
            sqlx::query(
                "INSERT INTO console_viewers (scope, subject, instance, username, seen_at_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(scope.as_str())
            .bind(subject)
            .bind(&self.instance)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

/// Who looks at (`scope`, `subject`) through the replicas other than `instance` that are alive.
pub async fn elsewhere(
    pool: &AnyPool,
    instance: &str,
    scope: Scope,
    subject: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT username FROM console_viewers \
         WHERE scope = $1 AND subject = $2 AND instance <> $3 AND seen_at_ms >= $4 \
         ORDER BY username",
    )
    .bind(scope.as_str())
    .bind(subject)
    .bind(instance)
    .bind(wall_ms().saturating_sub(i64::try_from(REPLICA_TIMEOUT.as_millis()).unwrap_or(0)))
    .fetch_all(pool)
    .await
}

/// Shares who looks at each cluster's live health and mirrors the other replicas' viewers into
/// each cluster's hub, for as long as the console serves; nothing on SQLite, where the console
/// is alone.
pub fn share_cluster_health(state: &crate::state::AppState) -> Vec<tokio::task::JoinHandle<()>> {
    if state.storage().kind() != crate::storage::DatabaseKind::Postgres {
        return Vec::new();
    }
    state
        .clusters()
        .iter()
        .map(|cluster| {
            let shared = SharedViewers {
                pool: state.storage().pool.clone(),
                relay: state.recovery().relay().clone(),
                instance: state.recovery().instance().to_string(),
            };
            shared.share(
                Scope::ClusterHealth,
                cluster.name.clone(),
                cluster.presence.clone(),
                true,
            )
        })
        .collect()
}
