//! The authorization matrix, generated from the route table: every API route, called by every
//! role and without a session, is allowed or refused exactly as the table says.

use reqwest::Method;
use talos_dr::auth::Access;
use talos_dr::routes::route_table;
use talos_dr_shared::{ErrorBody, Role};

use crate::fake::FakeTalos;
use crate::helpers::{Client, TEST_PASSWORD, spawn_app};

fn allowed(access: Access, caller: Option<Role>) -> bool {
    match access {
        Access::Public => true,
        // The test client connects from a loopback address and no metrics token is set.
        Access::Scrape => true,
        Access::AnyRole(needed) => caller.is_some_and(|r| needed.iter().any(|n| r.grants(*n))),
    }
}

async fn call(client: &Client, method: &Method, path: &str) -> (u16, Option<ErrorBody>) {
    let mut request = client.send(method.clone(), path);
    if *method != Method::GET {
        request = request.json(&serde_json::json!({}));
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"));
    // Streams stay open: read the body only for errors.
    let body = if is_json && status >= 400 {
        response.json::<ErrorBody>().await.ok()
    } else {
        None
    };
    (status, body)
}

#[tokio::test]
async fn every_route_allows_exactly_the_roles_the_table_names() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    for role in Role::ALL {
        app.add_user(role.as_str(), &[role]).await;
    }
    let table = route_table();
    assert!(table.len() >= 10, "the table lists the API");
    let mut checked = 0;
    for route in &table {
        let path = route.path.replace("{cluster}", "prod");
        for caller in [
            None,
            Some(Role::Viewer),
            Some(Role::Operator),
            Some(Role::Approver),
            Some(Role::Admin),
        ] {
            // A fresh session each time: one of the routes signs out.
            let client = match caller {
                Some(role) => app.sign_in(role.as_str(), TEST_PASSWORD).await,
                None => app.anonymous(),
            };
            let (status, body) = call(&client, &route.method, &path).await;
            let who = caller.map_or("no session", |r| r.as_str());
            let what = format!(
                "{} {} as {who}: {status} {body:?}",
                route.method, route.path
            );
            if allowed(route.access, caller) {
                assert!(status != 401 && status != 403, "should be allowed: {what}");
                assert!(status != 404 && status != 405, "should be routed: {what}");
            } else if caller.is_none() {
                assert_eq!(status, 401, "{what}");
                assert_eq!(
                    body.expect("error body").error.code,
                    "unauthenticated",
                    "{what}"
                );
            } else {
                assert_eq!(status, 403, "{what}");
                let body = body.expect("error body");
                assert_eq!(body.error.code, "role_required", "{what}");
                assert!(body.error.message.starts_with("this needs the "), "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, table.len() * 5);
}

#[tokio::test]
async fn a_refusal_names_the_role_needed() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.add_user("watcher", &[Role::Viewer]).await;
    let viewer = app.sign_in("watcher", TEST_PASSWORD).await;

    let response = viewer.get("/api/audit").await;

    assert_eq!(response.status(), 403);
    let body: ErrorBody = response.json().await.expect("error body");
    assert_eq!(body.error.message, "this needs the approver or admin role");
    let users: ErrorBody = viewer
        .get("/api/users")
        .await
        .json()
        .await
        .expect("error body");
    assert_eq!(users.error.message, "this needs the admin role");
}

#[tokio::test]
async fn viewers_read_health_and_the_cluster_list() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.add_user("watcher", &[Role::Viewer]).await;
    let viewer = app.sign_in("watcher", TEST_PASSWORD).await;
    app.wait_for_health("prod", |_| true).await;

    assert_eq!(viewer.get("/api/clusters").await.status(), 200);
    assert_eq!(viewer.get("/api/clusters/prod/health").await.status(), 200);
    assert_eq!(
        app.anonymous()
            .get("/api/clusters/prod/health")
            .await
            .status(),
        401
    );
}
