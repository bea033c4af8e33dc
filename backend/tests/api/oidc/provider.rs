//! A real OpenID provider (`oidc-provider` from npm, tests/oidc/provider.mjs) on loopback, the
//! console configured to use it, and a browser-like walk through the sign-in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;

use reqwest::Url;
use serde_json::{Value, json};
use talos_dr::auth::oidc::{OidcProvider, OidcSettings};
use talos_dr::config::Secret;
use talos_dr::{AccessSettings, AppState, Storage};
use talos_dr_shared::Role;
use talos_dr_shared::sign_in::LocalSignIn;
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::helpers::PATIENCE;

pub const CLIENT_ID: &str = "talos-dr";
pub const CLIENT_SECRET: &str = "a client secret for tests only";
pub const PROVIDER_NAME: &str = "Test SSO";

/// The provider process; killed when dropped.
pub struct TestProvider {
    pub issuer: String,
    /// Where the provider itself listens (the issuer's address unless a proxy stands in front).
    pub listening: String,
    _child: Child,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Starts the provider with `clients` (`{client_id, client_secret, redirect_uris}`) and
/// `users` (`{"name": {"groups": [...]}}`).
pub async fn start_provider(
    clients: Value,
    users: Value,
    groups_in_id_token: bool,
) -> TestProvider {
    start_provider_as(clients, users, groups_in_id_token, None).await
}

/// As [`start_provider`], calling itself `issuer` (the address of a proxy in front of it).
pub async fn start_provider_as(
    clients: Value,
    users: Value,
    groups_in_id_token: bool,
    issuer: Option<&str>,
) -> TestProvider {
    let script = repo_root().join("tests/oidc/provider.mjs");
    assert!(
        repo_root().join("node_modules/oidc-provider").is_dir(),
        "npm package oidc-provider is missing: run `npm ci` at the repository root"
    );
    let config = json!({
        "clients": clients,
        "users": users,
        "groups_in_id_token": groups_in_id_token,
        "issuer": issuer,
    });
    let mut child = Command::new("node")
        .arg(&script)
        .env("OIDC_TEST_PROVIDER", config.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // The provider's own warnings, only when asked for (like the console's logs).
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true)
        .spawn()
        .expect("node starts the OpenID provider");
    let stdout = child.stdout.take().expect("provider stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("the provider starts in time")
        .expect("provider output")
        .expect("the provider prints its issuer");
    let started: Value = serde_json::from_str(&line).expect("issuer line is JSON");
    // Keep reading: a closed pipe would kill the provider at its next line of output.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    TestProvider {
        issuer: started["issuer"].as_str().expect("issuer").to_string(),
        listening: started["listening"]
            .as_str()
            .expect("listening")
            .to_string(),
        _child: child,
    }
}

/// The console's settings for `issuer`: sre-oncall → operator, platform-admins → admin,
/// release-approvers → approver.
pub fn settings(issuer: &str, redirect_url: &str, client_id: &str) -> OidcSettings {
    OidcSettings {
        issuer: issuer.to_string(),
        client_id: client_id.to_string(),
        client_secret: Secret::new(CLIENT_SECRET),
        redirect_url: redirect_url.to_string(),
        provider_name: PROVIDER_NAME.to_string(),
        scopes: ["openid", "profile", "email", "groups"]
            .map(String::from)
            .to_vec(),
        groups_claim: "groups".to_string(),
        roles: BTreeMap::from([
            ("sre-oncall".to_string(), BTreeSet::from([Role::Operator])),
            ("platform-admins".to_string(), BTreeSet::from([Role::Admin])),
            (
                "release-approvers".to_string(),
                BTreeSet::from([Role::Approver]),
            ),
        ]),
        local_sign_in: LocalSignIn::Everyone,
        break_glass_accounts: BTreeSet::new(),
    }
}

pub fn test_users() -> Value {
    json!({
        "olive": {"groups": ["sre-oncall"]},
        "ada": {"groups": ["platform-admins", "coffee-club"]},
        "mallory": {"groups": ["marketing"]},
        "nogroups": {"groups": []},
    })
}

/// The console, with OIDC sign-in through a freshly started provider.
pub struct OidcApp {
    pub address: String,
    pub storage: Storage,
    pub provider: TestProvider,
    _data_dir: TempDir,
    server: JoinHandle<()>,
}

impl Drop for OidcApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn callback_url(address: &str) -> String {
    format!("{address}/api/auth/oidc/callback")
}

/// Binds the console first (the provider must know its callback URL), then starts the
/// provider, discovers it, and serves.
pub async fn spawn_oidc_app(
    groups_in_id_token: bool,
    adjust: impl FnOnce(&mut OidcSettings),
) -> OidcApp {
    let listener = bind_console().await;
    let callback = callback_url(&console_address(&listener));
    let provider =
        start_provider(console_client(&callback), test_users(), groups_in_id_token).await;
    serve_console(listener, provider, adjust).await
}

pub async fn bind_console() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port")
}

pub fn console_address(listener: &tokio::net::TcpListener) -> String {
    format!("http://{}", listener.local_addr().expect("local addr"))
}

/// The console as the provider's registered client.
pub fn console_client(callback: &str) -> Value {
    json!([{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [callback]}])
}

/// Discovers `provider` and serves the console on `listener`.
pub async fn serve_console(
    listener: tokio::net::TcpListener,
    provider: TestProvider,
    adjust: impl FnOnce(&mut OidcSettings),
) -> OidcApp {
    let address = console_address(&listener);
    let callback = callback_url(&address);
    let mut oidc_settings = settings(&provider.issuer, &callback, CLIENT_ID);
    adjust(&mut oidc_settings);
    let oidc = OidcProvider::discover(oidc_settings)
        .await
        .expect("the provider is discovered");
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let storage = crate::helpers::open_storage(data_dir.path()).await;
    let state =
        AppState::new(Vec::new(), storage.clone(), AccessSettings::default()).with_oidc(oidc);
    let server = tokio::spawn(async move {
        talos_dr::run(listener, state)
            .await
            .expect("the console serves");
    });
    OidcApp {
        address,
        storage,
        provider,
        _data_dir: data_dir,
        server,
    }
}

/// A browser: keeps cookies for the console and the provider, follows redirects only when told.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

pub fn location(response: &reqwest::Response, base: &Url) -> Url {
    let value = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("a redirect from {base}, got {}", response.status()))
        .to_str()
        .expect("ascii location");
    base.join(value).expect("location is a URL")
}

/// Where a walk through redirects ended.
pub enum Walk {
    /// A page that is not a redirect.
    Page(Url, reqwest::Response),
    /// The next hop goes to the console (not requested yet).
    ToConsole(Url),
}

/// Follows redirects from `url` like a browser until a page, or until the next hop would leave
/// the provider for `console`.
pub async fn walk(http: &reqwest::Client, mut url: Url, console: &str) -> Walk {
    for _ in 0..10 {
        if url.as_str().starts_with(console) {
            return Walk::ToConsole(url);
        }
        let response = http.get(url.clone()).send().await.expect("request sent");
        if !response.status().is_redirection() {
            return Walk::Page(url, response);
        }
        url = location(&response, &url);
    }
    panic!("too many redirects");
}

/// Starts sign-in at `start` (an authorization URL), signs in at the provider as `user`, and
/// returns the callback URL the provider sends the browser to.
pub async fn sign_in_at_provider(
    http: &reqwest::Client,
    start: Url,
    console: &str,
    user: &str,
) -> Url {
    let Walk::Page(interaction, page) = walk(http, start, console).await else {
        panic!("the provider should ask who signs in");
    };
    assert_eq!(page.status(), 200, "interaction page at {interaction}");
    assert!(
        interaction.path().starts_with("/interaction/"),
        "{interaction}"
    );
    let form_url = Url::parse(&format!("{interaction}/login")).expect("url");
    let response = http
        .post(form_url.clone())
        .form(&[("login", user)])
        .send()
        .await
        .expect("login posted");
    assert!(
        response.status().is_redirection(),
        "login as {user}: {}",
        response.status()
    );
    match walk(http, location(&response, &form_url), console).await {
        Walk::ToConsole(callback) => callback,
        Walk::Page(url, page) => panic!("stuck at {url}: {}", page.status()),
    }
}
