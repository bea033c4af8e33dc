//! Who watches an incident, across replicas: the incident's streams here, shared through
//! [`crate::presence::shared`] (the same list the cluster health pages use), and the other
//! replicas' watchers read back when a view is built.

use sqlx::AnyPool;

use crate::presence::PresenceHub;
use crate::presence::shared::{self, Scope, SharedViewers};
use crate::storage::ChangeRelay;

/// Keeps this process's watchers of `incident_id` in the shared list, until the process ends.
pub(super) fn share(
    pool: AnyPool,
    relay: ChangeRelay,
    instance: String,
    incident_id: String,
    hub: PresenceHub,
) {
    // The views read the other replicas' watchers themselves when they are built, so the hub
    // need not mirror them.
    let shared = SharedViewers {
        pool,
        relay,
        instance,
    };
    drop(shared.share(Scope::Incident, incident_id, hub, false));
}

/// Who watches through the other, live replicas.
pub(super) async fn elsewhere(
    pool: &AnyPool,
    instance: &str,
    incident_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    shared::elsewhere(pool, instance, Scope::Incident, incident_id).await
}
