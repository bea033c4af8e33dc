//! A cluster's webhook receiver and how its recent deliveries went.

use gloo_net::http::Request;
use talos_dr_shared::notifications::{WebhookFormat, WebhookRequest, WebhookView};

use super::{ApiError, cluster_path, get_json, post_json, read_json, with_csrf};

fn webhook_path(cluster: &str) -> String {
    format!("{}/webhook", cluster_path(cluster))
}

pub async fn find_webhook(cluster: &str) -> Result<WebhookView, ApiError> {
    get_json(&webhook_path(cluster), "the webhook settings").await
}

/// Sets the receiver (admins); the console refuses anything but an http(s) URL, naming it.
pub async fn put_webhook(
    cluster: &str,
    url: &str,
    format: WebhookFormat,
) -> Result<WebhookView, ApiError> {
    let body = WebhookRequest {
        url: url.to_string(),
        format,
    };
    let response = with_csrf(Request::put(&webhook_path(cluster)))
        .header("Accept", "application/json")
        .json(&body)
        .map_err(|e| ApiError::Unreachable(e.to_string()))?
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    read_json(response, "the webhook settings").await
}

pub async fn delete_webhook(cluster: &str) -> Result<WebhookView, ApiError> {
    let response = with_csrf(Request::delete(&webhook_path(cluster)))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    read_json(response, "the webhook settings").await
}

/// Queues a test notification to the receiver.
pub async fn test_webhook(cluster: &str) -> Result<WebhookView, ApiError> {
    post_json(
        &format!("{}/test", webhook_path(cluster)),
        &serde_json::json!({}),
        "the webhook settings",
    )
    .await
}
