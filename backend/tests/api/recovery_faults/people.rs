//! Signed-in people talking to the console's recovery API the way its pages do.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use talos_dr_shared::{CSRF_HEADER, SessionResponse};

use crate::helpers::TEST_PASSWORD;

/// One person's browser: a cookie jar, the session's CSRF token.
pub struct Person {
    pub name: String,
    address: String,
    http: reqwest::Client,
    csrf: String,
}

/// An answer: status and body text, kept whole for failure messages.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer {} is not the expected JSON ({e}): {}",
                self.status, self.body
            )
        })
    }
}

impl Person {
    /// Signs in with a fresh cookie jar (and fresh connections: the old process is gone).
    pub async fn sign_in(address: &str, name: &str) -> Person {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let response = http
            .post(format!("{address}/api/session"))
            .header("Origin", address)
            .json(&serde_json::json!({"username": name, "password": TEST_PASSWORD}))
            .send()
            .await
            .expect("sign-in sent");
        assert_eq!(response.status(), 200, "sign-in as {name}");
        let session: SessionResponse = response.json().await.expect("session body");
        Person {
            name: name.to_string(),
            address: address.to_string(),
            http,
            csrf: session.session.csrf_token,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{path}", self.address))
            .send()
            .await;
        answer(path, response).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        let answer = self.get(path).await;
        assert!(answer.ok(), "GET {path} as {}: {answer:?}", self.name);
        answer.json()
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Answer {
        let response = self.post_request(path, body).send().await;
        answer(path, response).await
    }

    /// A POST as the console's page sends it: same Origin, CSRF header.
    pub fn post_request(&self, path: &str, body: &impl Serialize) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.address))
            .header("Origin", &self.address)
            .header(CSRF_HEADER, &self.csrf)
            .json(body)
    }

    /// POST that must succeed.
    pub async fn post_ok(&self, path: &str, body: &impl Serialize) -> Answer {
        let answer = self.post(path, body).await;
        assert!(answer.ok(), "POST {path} as {}: {answer:?}", self.name);
        answer
    }
}

async fn answer(path: &str, response: reqwest::Result<reqwest::Response>) -> Answer {
    let response = response.unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Answer { status, body }
}
