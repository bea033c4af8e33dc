//! Starting the real console on a loopback port, and typed calls against it.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use talos_dr::auth::users::add_user;
use talos_dr::health::PollSettings;
use talos_dr::talos::TalosApi;
use talos_dr::{AccessSettings, AppState, Storage, WatchedCluster, watch_cluster};
use talos_dr_shared::{ClusterHealth, ErrorBody, Role, SessionResponse};
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::fake::FakeTalos;

mod sse;
pub use sse::{SseEvent, SseStream};

pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
pub const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// Upper bound for anything a test waits on.
pub const PATIENCE: Duration = Duration::from_secs(10);

static TRACING: LazyLock<()> = LazyLock::new(|| {
    // Silent unless TEST_LOG is set, so failures are not buried in poll logs.
    if std::env::var_os("TEST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter("debug,h2=info,hyper=info,tower=info")
            .with_test_writer()
            .init();
    }
});

/// The password every test user gets.
pub const TEST_PASSWORD: &str = "a long test password";

pub struct TestApp {
    pub address: String,
    /// Signed in as `tester`, who holds every role.
    pub http: reqwest::Client,
    /// The CSRF token of `http`'s session.
    pub csrf: String,
    pub storage: Storage,
    pub data_dir: TempDir,
    server: JoinHandle<()>,
}

/// A browser-like client: keeps cookies, and knows its session's CSRF token once signed in.
pub struct Client {
    pub address: String,
    pub http: reqwest::Client,
    pub csrf: Option<String>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn settings(cluster: &str, nodes: Vec<String>) -> PollSettings {
    PollSettings {
        cluster: cluster.into(),
        nodes,
        interval: POLL_INTERVAL,
        call_timeout: CALL_TIMEOUT,
    }
}

/// The console watching one cluster, `prod`, whose Talos API is `fake`.
pub async fn spawn_app(fake: Arc<FakeTalos>) -> TestApp {
    let nodes = fake.node_names();
    spawn_app_with(vec![watch_cluster(
        settings("prod", nodes),
        fake as Arc<dyn TalosApi>,
    )])
    .await
}

/// The console watching `clusters` on 127.0.0.1 and a free port, with a fresh database, and a
/// client signed in as `tester` (every role).
pub async fn spawn_app_with(clusters: Vec<WatchedCluster>) -> TestApp {
    spawn_app_with_access(clusters, AccessSettings::default()).await
}

pub async fn spawn_app_with_access(
    clusters: Vec<WatchedCluster>,
    access: AccessSettings,
) -> TestApp {
    spawn_app_configured(clusters, access, |state| state).await
}

/// The environment variable naming the test PostgreSQL server (scripts/test.sh starts one).
pub const TEST_DATABASE_URL: &str = "TALOS_DR_TEST_DATABASE_URL";

/// A new, empty database on the test PostgreSQL server, as a URL.
pub async fn fresh_postgres_url() -> String {
    use sqlx::Connection;
    let admin = std::env::var(TEST_DATABASE_URL).unwrap_or_else(|_| {
        panic!(
            "{TEST_DATABASE_URL} must name a PostgreSQL server for these tests: scripts/test.sh starts one \
             (source scripts/lib/postgres.sh; start_postgres 127.0.110.1 55432)"
        )
    });
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("the test PostgreSQL server at {admin} answers: {e}"));
    let name = format!("tdr_{}", talos_dr::recovery::new_id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("a test database is created");
    let mut url = url::Url::parse(&admin).expect("the test server URL parses");
    url.set_path(&name);
    url.to_string()
}

/// The database of one test: SQLite in `data_dir`, or a new PostgreSQL database on the test
/// server when `TALOS_DR_TEST_STORE=postgres` (scripts/test.sh runs part of this suite so).
pub async fn open_storage(data_dir: &std::path::Path) -> Storage {
    let url = match std::env::var("TALOS_DR_TEST_STORE").as_deref() {
        Ok("postgres") => Some(fresh_postgres_url().await),
        _ => None,
    };
    Storage::connect(data_dir, url.as_deref())
        .await
        .expect("database opens")
}

/// As [`spawn_app_with_access`], with `configure` applied to the state before it serves.
pub async fn spawn_app_configured(
    clusters: Vec<WatchedCluster>,
    access: AccessSettings,
    configure: impl FnOnce(AppState) -> AppState,
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let storage = open_storage(data_dir.path()).await;
    spawn_app_on(storage, data_dir, clusters, access, configure).await
}

/// The console on an already opened database (a replica of another console, say).
pub async fn spawn_app_on(
    storage: Storage,
    data_dir: TempDir,
    clusters: Vec<WatchedCluster>,
    access: AccessSettings,
    configure: impl FnOnce(AppState) -> AppState,
) -> TestApp {
    LazyLock::force(&TRACING);
    let state = configure(AppState::new(clusters, storage.clone(), access));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = format!("http://{}", listener.local_addr().expect("local addr"));
    let server = tokio::spawn(async move {
        talos_dr::run(listener, state)
            .await
            .expect("the console serves");
    });
    let mut app = TestApp {
        address,
        http: reqwest::Client::new(),
        csrf: String::new(),
        storage,
        data_dir,
        server,
    };
    if app
        .storage
        .users
        .find("tester")
        .await
        .ok()
        .flatten()
        .is_none()
    {
        app.add_user("tester", &Role::ALL).await;
    }
    let tester = app.sign_in("tester", TEST_PASSWORD).await;
    app.http = tester.http;
    app.csrf = tester.csrf.expect("signed in");
    app
}

impl TestApp {
    /// The PostgreSQL database the app runs on, if it does (test databases have no password,
    /// so the printable URL is the URL).
    pub fn database_url(&self) -> Option<String> {
        (self.storage.kind() == talos_dr::storage::DatabaseKind::Postgres)
            .then(|| self.storage.place().to_string())
    }

    /// Adds a user with `TEST_PASSWORD`.
    pub async fn add_user(&self, name: &str, roles: &[Role]) {
        add_user(&self.storage.users, name, roles, Some(TEST_PASSWORD.into()))
            .await
            .expect("user added");
    }

    /// A fresh client with no session.
    pub fn anonymous(&self) -> Client {
        Client {
            address: self.address.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("http client"),
            csrf: None,
        }
    }

    /// A fresh client signed in as `name`.
    pub async fn sign_in(&self, name: &str, password: &str) -> Client {
        let mut client = self.anonymous();
        let response = client.login(name, password).await;
        assert_eq!(response.status(), 200, "sign-in as {name}");
        let body: SessionResponse = response.json().await.expect("session body");
        client.csrf = Some(body.session.csrf_token);
        client
    }

    /// `tester`'s client.
    pub fn tester(&self) -> Client {
        Client {
            address: self.address.clone(),
            http: self.http.clone(),
            csrf: Some(self.csrf.clone()),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// The JSON error body of a failed call, with its status.
    pub async fn get_error(&self, path: &str) -> (u16, ErrorBody) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (
            status,
            response
                .json()
                .await
                .expect("error body is the error shape"),
        )
    }

    /// Polls the health endpoint until `pred` holds.
    pub async fn wait_for_health(
        &self,
        cluster: &str,
        pred: impl Fn(&ClusterHealth) -> bool,
    ) -> ClusterHealth {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let response = self.get(&format!("/api/clusters/{cluster}/health")).await;
            if response.status() == 200 {
                let body: serde_json::Value = response.json().await.expect("json");
                let health: ClusterHealth =
                    serde_json::from_value(body["health"].clone()).expect("ClusterHealth");
                if pred(&health) {
                    return health;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "health never reached the expected state"
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    pub async fn open_stream(&self, path: &str) -> SseStream {
        self.open_stream_as(&self.tester(), path).await
    }

    pub async fn open_stream_as(&self, client: &Client, path: &str) -> SseStream {
        let response = client.get(path).await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseStream {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }
}

impl Client {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST /api/session` the way the console's own page sends it.
    pub async fn login(&self, name: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/session"))
            .header("Origin", &self.address)
            .json(&serde_json::json!({"username": name, "password": password}))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// A state-changing request as the console's page sends it: same Origin, CSRF header.
    pub fn send(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("Origin", &self.address);
        if let Some(csrf) = &self.csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        request
    }
}

/// A console's settings watching one cluster, `cluster`, through the talosconfig at
/// `talosconfig`: loopback port 0, a 250 ms poll, 2 s per call, nothing else set.
pub fn console_config(cluster: &str, talosconfig: std::path::PathBuf) -> talos_dr::Config {
    talos_dr::Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        poll_interval: Duration::from_millis(250),
        call_timeout: Duration::from_secs(2),
        clusters: vec![talos_dr::config::ClusterConfig {
            name: cluster.into(),
            talosconfig,
            context: None,
            nodes: None,
            talosconfigs: Default::default(),
        }],
        data_dir: "unused-data-dir".into(),
        database_url: None,
        secure_cookies: false,
        metrics_token: None,
    }
}

/// The clusters of a console that watches one emulated cluster, `cluster`, through the
/// talosconfig at `talosconfig` ([`console_config`]); `configure` adjusts the rest.
pub fn emulated_clusters(
    cluster: &str,
    talosconfig: std::path::PathBuf,
    configure: impl FnOnce(&mut talos_dr::Config),
) -> Vec<WatchedCluster> {
    let mut config = console_config(cluster, talosconfig);
    configure(&mut config);
    talos_dr::watch_clusters(&config).expect("the console accepts the emulator's talosconfig")
}
