use serde::{Deserialize, Serialize};

/// The one JSON shape every failed API call answers with: `{"error": {"code": ..., "message": ...}}`.
/// `code` is stable and machine-readable; `message` is written for the person at the console and
/// never carries internal detail (that goes to the server log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}
