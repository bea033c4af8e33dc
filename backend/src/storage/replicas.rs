//! Which console processes share the database, and work only one of them may do at a time.
//!
//! Each process writes a heartbeat. A recovery step claimed by a process whose heartbeat stopped
//! is taken over by a live one, which judges it from the node; a step claimed by a live process
//! is left alone, so a replica that starts never mistakes another's running step for one cut
//! short by a crash. On SQLite the console is the database's only process: every other name is
//! from an earlier run, and leases always go to the one process.

use std::time::Duration;

use sqlx::AnyPool;

/// How often a process writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A process silent for this long is gone.
pub const REPLICA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Replicas {
    pool: AnyPool,
    instance: String,
    shared: bool,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Replicas {
    pub(super) fn new(pool: AnyPool, instance: String, shared: bool) -> Self {
        Self {
            pool,
            instance,
            shared,
        }
    }

    /// Whether other processes may share the database (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// This process's name (also what `claimed_by` holds).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub async fn beat(&self, now_ms: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO console_replicas (instance, started_at_ms, seen_at_ms) VALUES ($1, $2, $2) \
             ON CONFLICT (instance) DO UPDATE SET seen_at_ms = excluded.seen_at_ms",
        )
        .bind(&self.instance)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        // Names silent for an hour are history; keeping the table small keeps the check cheap.
        sqlx::query("DELETE FROM console_replicas WHERE seen_at_ms < $1")
            .bind(now_ms.saturating_sub(3_600_000))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the process named `instance` is still running.
    pub async fn is_alive(&self, instance: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
        if instance == self.instance {
            return Ok(true);
        }
        if !self.shared {
            return Ok(false);
        }
        let seen: Option<i64> =
            sqlx::query_scalar("SELECT seen_at_ms FROM console_replicas WHERE instance = $1")
                .bind(instance)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seen.is_some_and(|seen| seen >= now_ms.saturating_sub(ms(REPLICA_TIMEOUT))))
    }

    /// Takes or renews the lease `name` for `ttl`; false while another live process holds it.
    pub async fn lease(&self, name: &str, ttl: Duration, now_ms: i64) -> Result<bool, sqlx::Error> {
        if !self.shared {
            return Ok(true);
        }
        let done = sqlx::query(
            "INSERT INTO console_leases (name, holder, expires_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at_ms = excluded.expires_at_ms \
             WHERE console_leases.holder = excluded.holder OR console_leases.expires_at_ms < $4",
        )
        .bind(name)
        .bind(&self.instance)
        .bind(now_ms.saturating_add(ms(ttl)))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up every lease and the heartbeat, so the others take over at once (a clean stop).
    pub async fn leave(&self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM console_leases WHERE holder = $1")
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM console_replicas WHERE instance = $1")
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
