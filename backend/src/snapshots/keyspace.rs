//! The key space of an etcd, read two ways for the rehearsal to compare: from a snapshot file
//! (the inspector's side) and from a running etcd through its JSON gateway.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use talos_dr_snapshot::classify;

/// What one side holds: keys per Kubernetes resource and a digest of everything.
pub(super) struct KeySpace {
    pub revision: i64,
    pub keys: u64,
    pub resources: BTreeMap<String, u64>,
    pub digest: String,
}

/// sha256 over every live key in key order: length-prefixed key, value, then mod revision.
#[derive(Default)]
pub(super) struct KeySpaceDigest(Sha256);

impl KeySpaceDigest {
    pub(super) fn add(&mut self, key: &[u8], value: &[u8], mod_revision: i64) {
        self.0.update((key.len() as u64).to_le_bytes());
        self.0.update(key);
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
        self.0.update(mod_revision.to_le_bytes());
    }

    pub(super) fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Deserialize)]
struct RangeResponse {
    header: ResponseHeader,
    #[serde(default)]
    kvs: Vec<GatewayKeyValue>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct ResponseHeader {
    /// int64 fields arrive as strings through the JSON gateway; absent when zero.
    #[serde(default)]
    revision: Option<String>,
}

#[derive(Deserialize)]
struct GatewayKeyValue {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    mod_revision: Option<String>,
}

const PAGE: u64 = 500;

/// Reads every key through etcd's JSON gateway in pages, all at one revision.
pub(super) async fn read_key_space(client_url: &str) -> Result<KeySpace, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{client_url}/v3/kv/range");
    let mut start: Vec<u8> = vec![0];
    let mut revision: Option<i64> = None;
    let mut resources = BTreeMap::new();
    let mut digest = KeySpaceDigest::default();
    let mut keys = 0u64;
    loop {
        let mut body = serde_json::json!({
            "key": B64.encode(&start),
            "range_end": B64.encode([0u8]),
            "limit": PAGE,
        });
        if let Some(rev) = revision {
            body["revision"] = serde_json::json!(rev);
        }
        let response = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("reading keys from the restored etcd at {url}: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("reading keys from the restored etcd at {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "the restored etcd at {url} answered {status}: {text}"
            ));
        }
        let page: RangeResponse = serde_json::from_str(&text).map_err(|e| {
            format!("the restored etcd at {url} sent an unreadable range response: {e}")
        })?;
        let rev = number(page.header.revision.as_deref(), "header.revision")?;
        revision.get_or_insert(rev);
        let mut last_key = None;
        for kv in &page.kvs {
            let key = B64
                .decode(&kv.key)
                .map_err(|e| format!("key is not base64: {e}"))?;
            let value = B64
                .decode(&kv.value)
                .map_err(|e| format!("value is not base64: {e}"))?;
            let mod_revision = number(kv.mod_revision.as_deref(), "mod_revision")?;
            *resources.entry(classify(&key).resource).or_insert(0u64) += 1;
            digest.add(&key, &value, mod_revision);
            keys += 1;
            last_key = Some(key);
        }
        match (page.more, last_key) {
            (true, Some(mut key)) => {
                key.push(0);
                start = key;
            }
            _ => break,
        }
    }
    Ok(KeySpace {
        revision: revision.unwrap_or(0),
        keys,
        resources,
        digest: digest.finish(),
    })
}

fn number(field: Option<&str>, name: &str) -> Result<i64, String> {
    match field {
        None => Ok(0),
        Some(s) => s
            .parse()
            .map_err(|e| format!("the restored etcd sent {name} {s:?}, not a number: {e}")),
    }
}
