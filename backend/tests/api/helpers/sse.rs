//! Reading server-sent events in tests.

use futures::StreamExt;
use talos_dr_shared::ClusterHealth;

use super::PATIENCE;

/// A minimal server-sent events reader: enough to see event names and data lines.
pub struct SseStream {
    pub(super) body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    pub(super) buffer: String,
}

pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseStream {
    /// The next event that carries data (keep-alive comments are skipped), within `within`.
    pub async fn next_event_within(&mut self, within: std::time::Duration) -> SseEvent {
        tokio::time::timeout(within, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let frame: String = self.buffer.drain(..end + 2).collect();
                    let mut event = SseEvent {
                        event: None,
                        data: String::new(),
                    };
                    for line in frame.lines() {
                        if let Some(name) = line.strip_prefix("event:") {
                            event.event = Some(name.trim().to_string());
                        } else if let Some(data) = line.strip_prefix("data:") {
                            event.data.push_str(data.strip_prefix(' ').unwrap_or(data));
                        }
                    }
                    if !event.data.is_empty() {
                        return event;
                    }
                    continue;
                }
                let chunk = self
                    .body
                    .next()
                    .await
                    .expect("stream still open")
                    .expect("stream chunk");
                self.buffer
                    .push_str(std::str::from_utf8(&chunk).expect("utf8"));
            }
        })
        .await
        .expect("an event arrives in time")
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str) -> SseEvent {
        self.next_named_within(name, PATIENCE).await
    }

    /// As [`Self::next_named`], waiting up to `within` for each event.
    pub async fn next_named_within(&mut self, name: &str, within: std::time::Duration) -> SseEvent {
        loop {
            let event = self.next_event_within(within).await;
            if event.event.as_deref() == Some(name) {
                return event;
            }
        }
    }

    /// The next `health` event (`viewers` events in between are skipped).
    pub async fn next_health(&mut self) -> ClusterHealth {
        let event = self.next_named("health").await;
        serde_json::from_str(&event.data).expect("data is a ClusterHealth")
    }
}
