//! `AppJson`: axum's JSON extractor with its rejections in the console's error shape, so a
//! missing field or broken JSON gets a 400 naming the field, like every other error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedBody,
        // axum's text carries the field's path ("roles[0]: unknown variant ..."); only its
        // generic prefix goes.
        JsonRejection::JsonDataError(e) => {
            ApiError::BadRequest(format!("request body: {}", without_prefix(&e.body_text())))
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!(
            "request body is not valid JSON: {}",
            without_prefix(&e.body_text())
        )),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::BadRequest("request body is too large".into())
        }
        other => ApiError::BadRequest(format!("request body: {}", other.body_text())),
    }
}

fn without_prefix(text: &str) -> &str {
    const PREFIXES: [&str; 2] = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
    ];
    PREFIXES
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text)
}
