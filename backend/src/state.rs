//! The state every handler shares: the watched clusters, the database, sign-in settings.

use std::fmt;
use std::sync::Arc;

use crate::auth::{LoginLimiter, SessionSettings};
use crate::clusters::ClusterError;
use crate::config::Secret;
use crate::health::HealthHub;
use crate::machine_configs::{ConfigBackupKey, MachineConfigStore};
use crate::presence::PresenceHub;
use crate::recovery::{RecoveryService, RecoverySettings};
use crate::snapshots::history::SnapshotHistory;
use crate::snapshots::{SnapshotService, SnapshotSettings};
use crate::storage::Storage;
use crate::talos::TalosApi;

/// One cluster the console watches.
#[derive(Clone)]
pub struct WatchedCluster {
    pub name: String,
    /// The nodes the poller asks, in the order the configuration lists them.
    pub control_plane_nodes: Vec<String>,
    pub health: HealthHub,
    /// Who has the cluster's live health open right now.
    pub presence: PresenceHub,
    /// The cluster's Talos API with the `reader` credentials, for the health poller and other
    /// reads. Credentials for other Talos roles stay in `talos_credentials`.
    pub talos: Arc<dyn TalosApi>,
    pub talos_credentials: crate::talos::credentials::ClusterCredentials,
    /// The cluster's Talos API with `os:admin` credentials, for recovery steps; `None` when the
    /// configuration gives the console no admin talosconfig (recoveries are then refused).
    pub recovery_talos: Option<Arc<dyn crate::talos::TalosRecoveryApi>>,
}

impl fmt::Debug for WatchedCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedCluster")
            .field("name", &self.name)
            .field("control_plane_nodes", &self.control_plane_nodes)
            .finish_non_exhaustive()
    }
}

/// How the console decides who gets in, beyond the user database.
#[derive(Debug, Clone, Default)]
pub struct AccessSettings {
    pub sessions: SessionSettings,
    /// Bearer token Prometheus sends to `/metrics`; without one, only loopback clients may scrape.
    pub metrics_token: Option<Secret>,
}

#[derive(Debug)]
struct Shared {
    storage: Storage,
    access: AccessSettings,
    limiter: LoginLimiter,
}

/// Cheap to clone; handlers get it through axum's `State`.
#[derive(Debug, Clone)]
pub struct AppState {
    clusters: Arc<Vec<WatchedCluster>>,
    shared: Arc<Shared>,
    snapshots: Arc<SnapshotService>,
    machine_configs: MachineConfigStore,
    /// The OpenID Connect provider users sign in through, when one is configured.
    oidc: Option<Arc<crate::auth::oidc::OidcProvider>>,
    /// Without a key, machine config backups are refused rather than stored in the clear.
    config_backup_key: Option<Arc<ConfigBackupKey>>,
    notifier: crate::notify::Notifier,
    recovery: Arc<RecoveryService>,
}

impl AppState {
    /// Snapshots go to `<data-dir>/snapshots` unless [`AppState::with_snapshots`] says otherwise.
    pub fn new(clusters: Vec<WatchedCluster>, storage: Storage, access: AccessSettings) -> Self {
        let data_dir = storage.data_dir().to_path_buf();
        let snapshots = SnapshotService::new(
            SnapshotSettings::in_data_dir(&data_dir),
            SnapshotHistory::new(storage.pool.clone()),
        );
        let machine_configs =
            MachineConfigStore::new(storage.pool.clone(), data_dir.join("machine-configs"));
        let notifier = crate::notify::Notifier::new(
            storage.pool.clone(),
            crate::notify::NotifySettings::default(),
        );
        let instance = crate::storage::instance_name();
        let recovery = RecoveryService::new(&storage, RecoverySettings::default(), instance);
        snapshots.transfers.relay_to(recovery.relay().clone());
        Self {
            recovery: Arc::new(recovery),
            notifier,
            machine_configs,
            config_backup_key: None,
            oidc: None,
            snapshots: Arc::new(snapshots),
            clusters: Arc::new(clusters),
            shared: Arc::new(Shared {
                storage,
                access,
                limiter: LoginLimiter::default(),
            }),
        }
    }

    pub fn clusters(&self) -> &[WatchedCluster] {
        &self.clusters
    }

    pub fn cluster(&self, name: &str) -> Result<&WatchedCluster, ClusterError> {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ClusterError::NotFound(name.to_string()))
    }

    pub fn storage(&self) -> &Storage {
        &self.shared.storage
    }

    pub fn session_settings(&self) -> SessionSettings {
        self.shared.access.sessions
    }

    pub fn metrics_token(&self) -> Option<&str> {
        self.shared
            .access
            .metrics_token
            .as_ref()
            .map(Secret::expose)
    }

    /// Replaces the snapshot settings (store root, size limit, rehearsal tools).
    pub fn with_snapshots(mut self, settings: SnapshotSettings) -> Self {
        let history = SnapshotHistory::new(self.shared.storage.pool.clone());
        let snapshots = SnapshotService::new(settings, history);
        snapshots.transfers.relay_to(self.recovery.relay().clone());
        self.snapshots = Arc::new(snapshots);
        self
    }

    /// Replaces the snapshot settings and uses `store` (an S3 bucket checked at start).
    pub fn with_snapshot_store(
        mut self,
        settings: SnapshotSettings,
        store: crate::snapshots::SnapshotStore,
    ) -> Self {
        let history = SnapshotHistory::new(self.shared.storage.pool.clone());
        let snapshots = SnapshotService::with_store(settings, history, store);
        snapshots.transfers.relay_to(self.recovery.relay().clone());
        self.snapshots = Arc::new(snapshots);
        self
    }

    pub fn snapshots(&self) -> &SnapshotService {
        &self.snapshots
    }

    /// Turns machine config backups on, sealed with `key`.
    pub fn with_config_backup_key(mut self, key: ConfigBackupKey) -> Self {
        self.config_backup_key = Some(Arc::new(key));
        self
    }

    pub fn config_backup_key(&self) -> Option<&ConfigBackupKey> {
        self.config_backup_key.as_deref()
    }

    pub fn machine_configs(&self) -> &MachineConfigStore {
        &self.machine_configs
    }

    /// Webhook notifications for the watched clusters.
    pub fn notifier(&self) -> &crate::notify::Notifier {
        &self.notifier
    }

    /// Replaces how webhook deliveries are paced (tests retry within milliseconds).
    pub fn with_notify_settings(mut self, settings: crate::notify::NotifySettings) -> Self {
        self.notifier = crate::notify::Notifier::new(self.shared.storage.pool.clone(), settings);
        self
    }

    /// Turns on sign-in through `provider` (discovered at start).
    pub fn with_oidc(mut self, provider: crate::auth::oidc::OidcProvider) -> Self {
        self.oidc = Some(Arc::new(provider));
        self
    }

    pub fn oidc(&self) -> Option<&crate::auth::oidc::OidcProvider> {
        self.oidc.as_deref()
    }

    /// Replaces the recovery settings (approval policy, wait deadlines, crash-test stops, clock).
    pub fn with_recovery(mut self, settings: RecoverySettings) -> Self {
        let instance = self.recovery.instance().to_string();
        self.recovery = Arc::new(RecoveryService::new(
            &self.shared.storage,
            settings,
            instance,
        ));
        self
    }

    pub fn recovery(&self) -> &RecoveryService {
        &self.recovery
    }

    pub fn limiter(&self) -> &LoginLimiter {
        &self.shared.limiter
    }
}
