//! Live events between console replicas. Every replica keeps its own hubs (the incident
//! streams, the snapshot transfers); on PostgreSQL a change made on one replica is also sent with
//! NOTIFY, and every other replica's listener passes it to its own hubs, so a browser sees the
//! same incident whichever replica serves it. On SQLite there is one console and nothing to send.

use sqlx::AnyPool;
use sqlx::postgres::{PgListener, PgPool};

/// What changed; each topic is one NOTIFY channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// An incident (key: its id).
    Incident,
    /// A cluster's snapshot history (key: the cluster).
    SnapshotHistory,
    /// The snapshot transfers one replica runs for a cluster (key: their JSON, which names the
    /// replica and the cluster; kept well under NOTIFY's 8000-byte payload limit by the sender).
    SnapshotTransfers,
    /// Who looks at a cluster's live health through one replica changed (key: the cluster);
    /// the others re-read the shared list.
    ClusterViewers,
}

impl Topic {
    const ALL: [Topic; 4] = [
        Topic::Incident,
        Topic::SnapshotHistory,
        Topic::SnapshotTransfers,
        Topic::ClusterViewers,
    ];

    fn channel(self) -> &'static str {
        match self {
            Topic::Incident => "talos_dr_incident",
            Topic::SnapshotHistory => "talos_dr_snapshot_history",
            Topic::SnapshotTransfers => "talos_dr_snapshot_transfers",
            Topic::ClusterViewers => "talos_dr_cluster_viewers",
        }
    }

    fn from_channel(channel: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.channel() == channel)
    }
}

/// Sends changes to the other replicas. Cheap to clone; does nothing on SQLite.
#[derive(Debug, Clone)]
pub struct ChangeRelay {
    pool: Option<AnyPool>,
    instance: String,
}

impl ChangeRelay {
    pub(super) fn new(pool: Option<AnyPool>, instance: String) -> Self {
        Self { pool, instance }
    }

    /// Tells the other replicas; a failure is logged (their browsers catch up at the next change
    /// or reconnect: the state itself is in the database).
    pub fn publish(&self, topic: Topic, key: &str) {
        let Some(pool) = self.pool.clone() else {
            return;
        };
        let payload = format!("{}\n{key}", self.instance);
        tokio::spawn(async move {
            let sent = sqlx::query("SELECT 1 FROM pg_notify($1, $2)")
                .bind(topic.channel())
                .bind(&payload)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(channel = topic.channel(), error = %e, "cannot tell the other console replicas");
            }
        });
    }
}

/// Listens for the other replicas' changes until the task is aborted, handing each to `apply`.
/// PgListener reconnects on its own; `apply(None)` after a reconnect means "anything may have
/// changed meanwhile".
pub(super) fn listen(
    pool: PgPool,
    instance: String,
    apply: impl Fn(Option<(Topic, &str)>) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for the other console replicas; trying again");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    continue;
                }
            };
            let channels: Vec<&str> = Topic::ALL.iter().map(|t| t.channel()).collect();
            if let Err(e) = listener.listen_all(channels).await {
                tracing::warn!(error = %e, "cannot listen for the other console replicas; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
            apply(None);
            loop {
                match listener.try_recv().await {
                    Ok(Some(note)) => {
                        let Some(topic) = Topic::from_channel(note.channel()) else {
                            continue;
                        };
                        let Some((from, key)) = note.payload().split_once('\n') else {
                            continue;
                        };
                        if from != instance {
                            apply(Some((topic, key)));
                        }
                    }
                    // The connection was lost and is re-established on the next call.
                    Ok(None) => apply(None),
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the connection that hears the other console replicas");
                        break;
                    }
                }
            }
        }
    })
}
