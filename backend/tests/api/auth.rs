//! Signing in and out, sessions, CSRF and origin checks, the sign-in rate limit.

use std::time::Duration;

use reqwest::Method;
use talos_dr::AccessSettings;
use talos_dr::auth::SessionSettings;
use talos_dr_shared::{ErrorBody, Role, SessionResponse};

use crate::fake::FakeTalos;
use crate::helpers::{TEST_PASSWORD, settings, spawn_app, spawn_app_with_access};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("talos_dr_session="))
        .map(str::to_string)
}

#[tokio::test]
async fn sign_in_who_am_i_and_sign_out() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.add_user("alice", &[Role::Operator, Role::Viewer]).await;
    let mut client = app.anonymous();
    let (status, _) = (client.get("/api/session").await.status(), ());
    assert_eq!(status, 401);

    let response = client.login("alice", TEST_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = session_cookie(&response).expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http needs no Secure flag: {cookie}"
    );
    let login: SessionResponse = response.json().await.expect("session");
    assert_eq!(login.session.username, "alice");
    assert_eq!(login.session.roles, vec![Role::Viewer, Role::Operator]);
    assert!(login.session.csrf_token.len() >= 32);

    let me: SessionResponse = client
        .get("/api/session")
        .await
        .json()
        .await
        .expect("session");
    assert_eq!(me.session, login.session);

    let no_token = client.send(Method::DELETE, "/api/session");
    client.csrf = Some("wrong".into());
    let wrong_token = client.send(Method::DELETE, "/api/session");
    for request in [no_token.header("X-CSRF-Token", ""), wrong_token] {
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), 403);
        let body: ErrorBody = response.json().await.expect("error");
        assert_eq!(body.error.code, "csrf_token");
    }
    client.csrf = Some(login.session.csrf_token.clone());
    let out = client
        .send(Method::DELETE, "/api/session")
        .send()
        .await
        .expect("sent");
    assert_eq!(out.status(), 204);
    assert_eq!(client.get("/api/session").await.status(), 401);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let client = app.anonymous();

    let wrong = client.login("tester", "not the password at all").await;
    let unknown = client.login("nobody", TEST_PASSWORD).await;

    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    let wrong: ErrorBody = wrong.json().await.expect("error");
    let unknown: ErrorBody = unknown.json().await.expect("error");
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.error.message, "wrong username or password");
}

#[tokio::test]
async fn the_eleventh_quick_wrong_password_is_refused() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let client = app.anonymous();
    for attempt in 1..=10 {
        let response = client.login("tester", "guess guess guess").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }

    let eleventh = client.login("tester", "guess guess guess").await;
    let correct = client.login("tester", TEST_PASSWORD).await;

    assert_eq!(eleventh.status(), 429);
    let retry: u64 = eleventh.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0);
    let body: ErrorBody = eleventh.json().await.expect("error");
    assert_eq!(body.error.code, "too_many_attempts");
    assert_eq!(
        correct.status(),
        429,
        "the right password does not get through the limit either"
    );
    // The address is limited too: another username from it is refused.
    app.add_user("bob", &[Role::Viewer]).await;
    assert_eq!(client.login("bob", TEST_PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn sign_in_needs_json_from_the_same_origin() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let client = app.anonymous();
    let url = client.url("/api/session");
    let form = "username=tester&password=a+long+test+password";

    let cross_site = client
        .http
        .post(&url)
        .header("Origin", "https://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("sent");
    let no_origin = client
        .http
        .post(&url)
        .json(&serde_json::json!({"username": "tester", "password": TEST_PASSWORD}))
        .send()
        .await
        .expect("sent");
    let as_form = client
        .http
        .post(&url)
        .header("Origin", &app.address)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("sent");
    let missing_field = client
        .http
        .post(&url)
        .header("Origin", &app.address)
        .json(&serde_json::json!({"username": "tester"}))
        .send()
        .await
        .expect("sent");
    let garbage = client
        .http
        .post(&url)
        .header("Origin", &app.address)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");

    for response in [cross_site, no_origin] {
        assert_eq!(response.status(), 403);
        let body: ErrorBody = response.json().await.expect("error");
        assert_eq!(body.error.code, "cross_origin");
    }
    assert_eq!(as_form.status(), 415);
    assert_eq!(missing_field.status(), 400);
    let body: ErrorBody = missing_field.json().await.expect("error");
    assert!(
        body.error.message.contains("missing field `password`"),
        "{}",
        body.error.message
    );
    assert_eq!(garbage.status(), 400);
    let body: ErrorBody = garbage.json().await.expect("error");
    assert!(
        body.error
            .message
            .starts_with("request body is not valid JSON"),
        "{}",
        body.error.message
    );
    assert_eq!(
        client.get("/api/session").await.status(),
        401,
        "nothing signed the client in"
    );
}

#[tokio::test]
async fn signing_in_again_gives_a_new_session_id() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let client = app.anonymous();
    let first = session_cookie(&client.login("tester", TEST_PASSWORD).await).expect("cookie");
    let second = session_cookie(&client.login("tester", TEST_PASSWORD).await).expect("cookie");
    let first_id = first.split(';').next().expect("pair").to_string();
    let second_id = second.split(';').next().expect("pair").to_string();
    assert_ne!(first_id, second_id);

    let with_old = reqwest::Client::new()
        .get(client.url("/api/session"))
        .header("Cookie", first_id)
        .send()
        .await
        .expect("sent");

    assert_eq!(
        with_old.status(),
        401,
        "the old id no longer signs anyone in"
    );
}

#[tokio::test]
async fn sessions_end_after_their_absolute_and_idle_timeouts() {
    for (idle, absolute) in [
        (Duration::from_secs(600), Duration::from_secs(1)),
        (Duration::from_secs(1), Duration::from_secs(600)),
    ] {
        let fake = FakeTalos::healthy_cluster(1);
        let access = AccessSettings {
            sessions: SessionSettings {
                idle_timeout: idle,
                absolute_timeout: absolute,
                secure_cookies: false,
            },
            metrics_token: None,
        };
        let clusters = vec![talos_dr::watch_cluster(
            settings("prod", fake.node_names()),
            fake,
        )];
        let app = spawn_app_with_access(clusters, access).await;
        let client = app.sign_in("tester", TEST_PASSWORD).await;
        assert_eq!(client.get("/api/session").await.status(), 200);

        tokio::time::sleep(Duration::from_millis(1500)).await;

        let response = client.get("/api/session").await;
        assert_eq!(
            response.status(),
            401,
            "idle {idle:?}, absolute {absolute:?}"
        );
        let body: ErrorBody = response.json().await.expect("error");
        assert_eq!(body.error.code, "unauthenticated");
    }
}

#[tokio::test]
async fn activity_keeps_a_session_past_its_idle_timeout() {
    let fake = FakeTalos::healthy_cluster(1);
    let access = AccessSettings {
        sessions: SessionSettings {
            idle_timeout: Duration::from_secs(2),
            absolute_timeout: Duration::from_secs(600),
            secure_cookies: false,
        },
        metrics_token: None,
    };
    let clusters = vec![talos_dr::watch_cluster(
        settings("prod", fake.node_names()),
        fake,
    )];
    let app = spawn_app_with_access(clusters, access).await;
    let client = app.sign_in("tester", TEST_PASSWORD).await;

    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(client.get("/api/clusters").await.status(), 200);
    }

    assert_eq!(
        client.get("/api/session").await.status(),
        200,
        "4 s of use outlived a 2 s idle timeout"
    );
}

#[tokio::test]
async fn secure_cookies_when_asked() {
    let fake = FakeTalos::healthy_cluster(1);
    let access = AccessSettings {
        sessions: SessionSettings {
            secure_cookies: true,
            ..SessionSettings::default()
        },
        metrics_token: None,
    };
    let app = spawn_app_with_access(
        vec![talos_dr::watch_cluster(
            settings("prod", fake.node_names()),
            fake,
        )],
        access,
    )
    .await;

    let response = app.anonymous().login("tester", TEST_PASSWORD).await;

    assert_eq!(response.status(), 200);
    assert!(
        session_cookie(&response)
            .expect("cookie")
            .contains("Secure")
    );
}

#[tokio::test]
async fn admins_add_users_who_can_then_sign_in() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let admin = app.tester();

    let response = admin
        .send(Method::POST, "/api/users")
        .json(&serde_json::json!({"username": "carol", "roles": ["approver"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.expect("json");
    let password = body["generated_password"]
        .as_str()
        .expect("a generated password")
        .to_string();
    let again = admin
        .send(Method::POST, "/api/users")
        .json(&serde_json::json!({"username": "carol", "roles": ["viewer"]}))
        .send()
        .await
        .expect("sent");
    let bad_role = admin
        .send(Method::POST, "/api/users")
        .json(&serde_json::json!({"username": "dave", "roles": ["root"]}))
        .send()
        .await
        .expect("sent");

    let carol = app.sign_in("carol", &password).await;
    let me: SessionResponse = carol
        .get("/api/session")
        .await
        .json()
        .await
        .expect("session");
    assert_eq!(me.session.roles, vec![Role::Approver]);
    assert_eq!(again.status(), 409);
    assert_eq!(bad_role.status(), 400);
    let body: ErrorBody = bad_role.json().await.expect("error");
    assert!(
        body.error.message.contains("roles"),
        "{}",
        body.error.message
    );
}

#[tokio::test]
async fn a_session_cookie_replayed_after_sign_out_is_refused() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.add_user("alice", &[Role::Viewer]).await;
    let mut client = app.anonymous();
    let response = client.login("alice", TEST_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookie = session_cookie(&response).expect("a session cookie");
    let stolen = cookie.split(';').next().expect("name=value").to_string();
    let login: SessionResponse = response.json().await.expect("session");
    client.csrf = Some(login.session.csrf_token);

    // Someone copies the cookie while the session is alive: it works for them too.
    let thief = reqwest::Client::new();
    let replay = |thief: &reqwest::Client| {
        thief
            .get(format!("{}/api/clusters", app.address))
            .header("Cookie", stolen.clone())
            .send()
    };
    assert_eq!(replay(&thief).await.expect("sent").status(), 200);

    let out = client
        .send(Method::DELETE, "/api/session")
        .send()
        .await
        .expect("sent");
    assert_eq!(out.status(), 204);

    // After sign-out the server has forgotten the session: the copied cookie is worthless.
    let after = replay(&thief).await.expect("sent");
    assert_eq!(after.status(), 401);
    let body: ErrorBody = after.json().await.expect("error shape");
    assert!(!body.error.message.is_empty());
}
