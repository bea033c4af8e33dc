//! OIDC sign-in against a real OpenID provider on loopback: group-to-role mapping, no access
//! without a mapped group, tampered tokens refused, discovery failure stops the start, and
//! local passwords limited to break-glass accounts.

mod id_tokens;
mod provider;
mod tamper;

use reqwest::{Method, Url};
use serde_json::json;
use talos_dr::auth::oidc::OidcProvider;
use talos_dr_shared::sign_in::{LocalSignIn, SignInMethod, SignInOptions};
use talos_dr_shared::{AuditEntry, ErrorBody, Role, SessionResponse};

use crate::fake::FakeTalos;
use crate::helpers::{TEST_PASSWORD, spawn_app};
use id_tokens::real_id_token;
use provider::{
    CLIENT_ID, OidcApp, PROVIDER_NAME, Walk, browser, callback_url, location, sign_in_at_provider,
    spawn_oidc_app, start_provider, test_users, walk,
};

/// Signs in through the provider as `user`; returns the browser and where the callback sent it.
async fn oidc_sign_in(app: &OidcApp, user: &str) -> (reqwest::Client, String) {
    let http = browser();
    let start = Url::parse(&format!(
        "{}/api/auth/oidc/login?next=/clusters/prod",
        app.address
    ))
    .expect("url");
    let response = http.get(start.clone()).send().await.expect("login started");
    assert_eq!(response.status(), 303);
    let pending = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("talos_dr_oidc="))
        .expect("the pending sign-in cookie")
        .to_string();
    assert!(
        pending.contains("HttpOnly") && pending.contains("SameSite=Lax"),
        "{pending}"
    );
    let authorize = location(&response, &start);
    assert!(
        authorize.as_str().starts_with(&app.provider.issuer),
        "{authorize}"
    );
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], callback_url(&app.address));
    for param in ["state", "nonce", "code_challenge"] {
        assert!(query[param].len() >= 43, "{param}");
    }
    let callback = sign_in_at_provider(&http, authorize, &app.address, user).await;
    assert_eq!(callback.path(), "/api/auth/oidc/callback");
    let response = http.get(callback.clone()).send().await.expect("callback");
    assert_eq!(response.status(), 303, "callback answers with a redirect");
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("talos_dr_oidc=;") || c.starts_with("talos_dr_oidc=; "));
    assert!(cleared, "the pending sign-in cookie is cleared");
    let next = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    (http, next)
}

async fn session_of(app: &OidcApp, http: &reqwest::Client) -> reqwest::Response {
    http.get(format!("{}/api/session", app.address))
        .send()
        .await
        .expect("session asked")
}

async fn audit_entries(app: &OidcApp) -> Vec<AuditEntry> {
    app.storage.audit.page(0, 1000).await.expect("audit trail")
}

#[tokio::test]
async fn provider_groups_map_to_roles() {
    let app = spawn_oidc_app(true, |_| {}).await;

    let (olive, next) = oidc_sign_in(&app, "olive").await;
    assert_eq!(
        next, "/clusters/prod",
        "back to the page the sign-in started from"
    );
    let response = session_of(&app, &olive).await;
    assert_eq!(response.status(), 200);
    let me: SessionResponse = response.json().await.expect("session");
    assert_eq!(me.session.username, "olive");
    assert_eq!(me.session.roles, vec![Role::Operator]);
    assert_eq!(
        me.signed_in_with,
        SignInMethod::Oidc {
            provider: PROVIDER_NAME.into()
        }
    );
    let users = olive
        .get(format!("{}/api/users", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(users.status(), 403, "an operator is no admin");

    let (ada, _) = oidc_sign_in(&app, "ada").await;
    let me: SessionResponse = session_of(&app, &ada).await.json().await.expect("session");
    assert_eq!(me.session.roles, vec![Role::Admin]);
    let users = ada
        .get(format!("{}/api/users", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(users.status(), 200, "the admin group gives admin");
    assert_eq!(
        app.storage.users.count().await.expect("count"),
        0,
        "no local user created"
    );

    // Logout ends the console's session (with the CSRF token, like every change).
    let out = olive
        .delete(format!("{}/api/session", app.address))
        .header("Origin", &app.address)
        .header("X-CSRF-Token", &session_csrf(&app, &olive).await)
        .send()
        .await
        .expect("sent");
    assert_eq!(out.status(), 204);
    assert_eq!(session_of(&app, &olive).await.status(), 401);
    assert_eq!(
        session_of(&app, &ada).await.status(),
        200,
        "other sessions stay"
    );

    let trail = audit_entries(&app).await;
    let login = trail
        .iter()
        .find(|e| e.action == "login" && e.actor == "olive")
        .expect("a login entry");
    assert_eq!(login.outcome, "ok");
    assert_eq!(login.roles, vec![Role::Operator]);
    assert_eq!(login.parameters["via"], "oidc");
    assert_eq!(login.parameters["issuer"], app.provider.issuer);
    assert_eq!(login.parameters["groups"], "sre-oncall");
    assert!(
        trail
            .iter()
            .any(|e| e.action == "logout" && e.actor == "olive")
    );
}

async fn session_csrf(app: &OidcApp, http: &reqwest::Client) -> String {
    let me: SessionResponse = session_of(app, http).await.json().await.expect("session");
    me.session.csrf_token
}

#[tokio::test]
async fn groups_only_in_userinfo_are_read_from_there() {
    let app = spawn_oidc_app(false, |_| {}).await;
    let (olive, next) = oidc_sign_in(&app, "olive").await;
    assert_eq!(next, "/clusters/prod");
    let me: SessionResponse = session_of(&app, &olive)
        .await
        .json()
        .await
        .expect("session");
    assert_eq!(me.session.roles, vec![Role::Operator]);
    // The roles came from userinfo: this provider's ID tokens carry no groups.
    let callback = callback_url(&app.address);
    let oidc = OidcProvider::discover(provider::settings(
        &app.provider.issuer,
        &callback,
        CLIENT_ID,
    ))
    .await
    .expect("discovered");
    let (token, nonce) = real_id_token(&oidc, &app.address, "olive").await;
    let verified = oidc.verify_id_token(&token, &nonce).await.expect("valid");
    assert_eq!(verified.groups, None);
}

#[tokio::test]
async fn a_user_in_no_mapped_group_gets_no_access() {
    let app = spawn_oidc_app(true, |_| {}).await;
    for user in ["mallory", "nogroups"] {
        let (http, next) = oidc_sign_in(&app, user).await;
        assert_eq!(next, "/login?oidc_error=no_role", "{user}");
        assert_eq!(session_of(&app, &http).await.status(), 401, "{user}");
    }
    assert_eq!(
        app.storage.users.count().await.expect("count"),
        0,
        "nothing created"
    );
    let trail = audit_entries(&app).await;
    let refused = trail
        .iter()
        .find(|e| e.action == "login_refused" && e.actor == "mallory")
        .expect("a refusal entry");
    assert!(
        refused
            .outcome
            .starts_with("refused: no group in claim \"groups\""),
        "{}",
        refused.outcome
    );
    assert_eq!(refused.parameters["groups"], "marketing");
    assert!(!trail.iter().any(|e| e.action == "login"));
}

#[tokio::test]
async fn a_callback_without_this_browsers_sign_in_is_refused() {
    let app = spawn_oidc_app(true, |_| {}).await;
    // Another browser's callback: no pending cookie.
    let stranger = browser();
    let response = stranger
        .get(format!(
            "{}/api/auth/oidc/callback?code=abc&state=xyz",
            app.address
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?oidc_error=expired");

    // The right browser, but a state that is not the one it sent.
    let http = browser();
    let start = Url::parse(&format!("{}/api/auth/oidc/login", app.address)).expect("url");
    let response = http.get(start.clone()).send().await.expect("sent");
    let authorize = location(&response, &start);
    let callback = sign_in_at_provider(&http, authorize, &app.address, "olive").await;
    let mut forged = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let response = http.get(forged).send().await.expect("sent");
    assert_eq!(response.headers()["location"], "/login?oidc_error=invalid");
    assert_eq!(session_of(&app, &http).await.status(), 401);
    // The pending sign-in was used up: the genuine callback no longer works either.
    let replay = http.get(callback).send().await.expect("sent");
    assert_eq!(replay.headers()["location"], "/login?oidc_error=expired");
    let trail = audit_entries(&app).await;
    assert!(trail.iter().any(
        |e| e.action == "login_refused" && e.outcome.contains("state parameter does not match")
    ));
}

#[tokio::test]
async fn a_sign_in_cancelled_at_the_provider_ends_on_the_login_page() {
    let app = spawn_oidc_app(true, |_| {}).await;
    let http = browser();
    let start = Url::parse(&format!("{}/api/auth/oidc/login", app.address)).expect("url");
    let response = http.get(start.clone()).send().await.expect("sent");
    let Walk::Page(interaction, _) = walk(&http, location(&response, &start), &app.address).await
    else {
        panic!("the provider should ask who signs in");
    };
    let form = Url::parse(&format!("{interaction}/login")).expect("url");
    let response = http
        .post(form.clone())
        .form(&[("cancel", "1")])
        .send()
        .await
        .expect("cancelled");
    let Walk::ToConsole(callback) = walk(&http, location(&response, &form), &app.address).await
    else {
        panic!("the provider should send the browser back");
    };
    let query: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(query["error"], "access_denied");
    let response = http.get(callback).send().await.expect("callback");
    assert_eq!(response.headers()["location"], "/login?oidc_error=provider");
    assert_eq!(session_of(&app, &http).await.status(), 401);
    let trail = audit_entries(&app).await;
    assert!(trail.iter().any(|e| e.action == "login_refused"
        && e.outcome == "refused: the provider answered \"access_denied\""));
}

#[tokio::test]
async fn discovery_failure_refuses_to_start_naming_the_issuer() {
    // Nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let err = OidcProvider::discover(provider::settings(
        &dead,
        "http://127.0.0.1:9/cb",
        CLIENT_ID,
    ))
    .await
    .expect_err("refused");
    assert!(
        err.to_string().starts_with(&format!(
            "OIDC issuer {dead}: discovery failed: GET {dead}/.well-known/openid-configuration"
        )),
        "{err}"
    );

    // A real provider, but not under the issuer URL configured (a trailing slash differs).
    let provider = start_provider(json!([]), test_users(), true).await;
    let wrong = format!("{}/", provider.issuer);
    let err = OidcProvider::discover(provider::settings(
        &wrong,
        "http://127.0.0.1:9/cb",
        CLIENT_ID,
    ))
    .await
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains(&format!("names issuer {:?}", provider.issuer)),
        "{err}"
    );

    // The console itself stops before serving, naming the issuer.
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "s3cret\n").expect("write");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_talos-dr"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cluster",
            "prod=/nonexistent",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--oidc-issuer", &dead, "--oidc-client-id", CLIENT_ID])
        .arg("--oidc-client-secret-file")
        .arg(&secret)
        .args([
            "--oidc-redirect-url",
            "http://127.0.0.1:9/api/auth/oidc/callback",
        ])
        .args(["--oidc-role", "sre-oncall=operator"])
        .env_remove("TALOS_DR_CONFIG")
        .output()
        .await
        .expect("talos-dr runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("OIDC issuer {dead}: discovery failed")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "the client secret never shows: {stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing started");
}

async fn local_login(app: &OidcApp, user: &str) -> reqwest::Response {
    browser()
        .post(format!("{}/api/session", app.address))
        .header("Origin", &app.address)
        .json(&json!({"username": user, "password": TEST_PASSWORD}))
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn local_sign_in_can_be_limited_to_break_glass_accounts() {
    let app = spawn_oidc_app(true, |s| {
        s.local_sign_in = LocalSignIn::BreakGlass;
        s.break_glass_accounts = ["root".to_string()].into();
    })
    .await;
    for name in ["root", "alice"] {
        talos_dr::auth::users::add_user(
            &app.storage.users,
            name,
            &[Role::Admin],
            Some(TEST_PASSWORD.into()),
        )
        .await
        .expect("user added");
    }
    let options: SignInOptions = browser()
        .get(format!("{}/api/auth/providers", app.address))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("options");
    assert_eq!(options.local, LocalSignIn::BreakGlass);
    let button = options.oidc.expect("OIDC offered");
    assert_eq!(button.provider_name, PROVIDER_NAME);
    assert_eq!(button.login_url, "/api/auth/oidc/login");

    let refused = local_login(&app, "alice").await;
    assert_eq!(refused.status(), 403);
    let body: ErrorBody = refused.json().await.expect("error body");
    assert_eq!(body.error.code, "local_sign_in_off");
    assert!(
        body.error.message.contains("Sign in with Test SSO"),
        "{}",
        body.error.message
    );
    let allowed = local_login(&app, "root").await;
    assert_eq!(
        allowed.status(),
        200,
        "the break-glass account still signs in"
    );
    let me: SessionResponse = allowed.json().await.expect("session");
    assert_eq!(me.signed_in_with, SignInMethod::Local);

    let trail = audit_entries(&app).await;
    assert!(trail.iter().any(|e| e.action == "login_refused"
        && e.actor == "alice"
        && e.outcome.contains("break-glass")));
    assert!(
        trail
            .iter()
            .any(|e| e.action == "login" && e.actor == "root")
    );
}

#[tokio::test]
async fn without_oidc_the_login_page_offers_passwords_only() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let client = app.anonymous();
    let options: SignInOptions = client
        .get("/api/auth/providers")
        .await
        .json()
        .await
        .expect("options");
    assert_eq!(
        options,
        SignInOptions {
            oidc: None,
            local: LocalSignIn::Everyone
        }
    );
    let start = client.get("/api/auth/oidc/login").await;
    assert_eq!(start.status(), 409);
    let body: ErrorBody = start.json().await.expect("error body");
    assert_eq!(body.error.code, "oidc_not_configured");
    let me: SessionResponse = app
        .tester()
        .send(Method::GET, "/api/session")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("session");
    assert_eq!(me.signed_in_with, SignInMethod::Local);
}
