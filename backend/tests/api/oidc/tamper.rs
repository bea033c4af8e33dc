//! A proxy in front of the provider that alters the ID token in the token endpoint's answer
//! (the groups claim becomes an admin group, the signature stays), so the console's callback
//! receives a tampered token exactly as an attacker in the path would deliver it.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

#[derive(Clone)]
struct Upstream {
    base: String,
    http: reqwest::Client,
}

/// Serves on `listener`, forwarding everything to `upstream` (the provider's own address).
pub fn spawn_tampering_proxy(listener: tokio::net::TcpListener, upstream: &str) -> JoinHandle<()> {
    let state = Upstream {
        base: upstream.to_string(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
    };
    let app = Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the proxy serves");
    })
}

fn skipped(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "content-length" | "transfer-encoding" | "connection"
    )
}

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    let mut outgoing = upstream
        .http
        .request(parts.method, format!("{}{path}", upstream.base))
        .body(body);
    // Host included: the provider builds its endpoint URLs from it.
    for (name, value) in &parts.headers {
        if name.as_str() == "host" || !skipped(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.expect("the provider answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.expect("provider body").to_vec();
    if parts.uri.path() == "/token" && status == StatusCode::OK {
        let mut tokens: Value = serde_json::from_slice(&bytes).expect("token JSON");
        let id_token = tokens["id_token"]
            .as_str()
            .expect("an ID token")
            .to_string();
        tokens["id_token"] = json!(promote(&id_token));
        bytes = serde_json::to_vec(&tokens).expect("json");
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if !skipped(name) {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(bytes)).expect("response")
}

/// The same token claiming the admin group; the provider's signature no longer matches.
fn promote(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url"))
            .expect("payload JSON");
    payload["groups"] = json!(["platform-admins"]);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).expect("json"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}
