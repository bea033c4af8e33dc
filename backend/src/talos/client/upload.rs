//! The request body of an `EtcdRecover` upload: the snapshot as `common.Data` messages, with
//! progress reports, and a way to abort the call when the snapshot source fails.
//!
//! Ending the body early would make the node store a truncated snapshot and answer OK, so a
//! failing source never ends the body: it records the error, signals `abort`, and the caller
//! drops the call (the node then sees a cancelled stream and deletes the partial file).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::{Stream, StreamExt};
use talos_api::common;
use tokio::sync::Notify;

use crate::talos::{ByteStream, TalosError};

/// Largest message sent; far below the 4 MiB (tonic) and 32 MiB (Talos) receive limits.
const MAX_MESSAGE: usize = 64 * 1024;

/// The snapshot, taken by whichever attempt first starts sending it. An attempt whose
/// connection could not be made never took it, so the next endpoint can still send it whole.
pub(super) type Source = Arc<Mutex<Option<ByteStream>>>;

/// What the body reports back to the call.
pub(super) struct UploadWatch {
    pub abort: Notify,
    pub failure: Mutex<Option<TalosError>>,
    started: Instant,
    /// Milliseconds after `started` when the last message was handed over.
    last_progress_ms: AtomicU64,
}

impl UploadWatch {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            abort: Notify::new(),
            failure: Mutex::new(None),
            started: Instant::now(),
            last_progress_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(now, Ordering::Relaxed);
    }

    /// How long no message was handed over.
    pub(super) fn idle(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    pub(super) fn take_failure(&self) -> TalosError {
        lock(&self.failure)
            .take()
            .unwrap_or_else(|| TalosError::Refused("the snapshot upload was aborted".into()))
    }

    fn fail(&self, error: TalosError) {
        *lock(&self.failure) = Some(error);
        self.abort.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere does not make the slot's content unusable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn source(snapshot: ByteStream) -> Source {
    Arc::new(Mutex::new(Some(snapshot)))
}

pub(super) fn is_untouched(source: &Source) -> bool {
    lock(source).is_some()
}

struct Body {
    source: Source,
    snapshot: Option<ByteStream>,
    pending: bytes::Bytes,
    sent: u64,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
    watch: Arc<UploadWatch>,
}

/// The messages of one upload attempt.
pub(super) fn body(
    source: Source,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
    watch: Arc<UploadWatch>,
) -> impl Stream<Item = common::Data> + Send + 'static {
    let body = Body {
        source,
        snapshot: None,
        pending: bytes::Bytes::new(),
        sent: 0,
        progress,
        watch,
    };
    futures::stream::unfold(body, |mut body| async move {
        loop {
            if !body.pending.is_empty() {
                let chunk = body.pending.split_to(body.pending.len().min(MAX_MESSAGE));
                body.sent += chunk.len() as u64;
                body.watch.touch();
                (body.progress)(body.sent);
                let message = common::Data {
                    metadata: None,
                    bytes: chunk.to_vec(),
                };
                return Some((message, body));
            }
            if body.snapshot.is_none() {
                body.snapshot = lock(&body.source).take();
            }
            let next = match body.snapshot.as_mut() {
                Some(snapshot) => snapshot.next().await,
                None => Some(Err(TalosError::Refused(
                    "the snapshot was already sent once".into(),
                ))),
            };
            match next {
                Some(Ok(bytes)) => body.pending = bytes,
                Some(Err(error)) => {
                    body.watch.fail(error);
                    // Never end the body: the call is dropped instead (see the module doc).
                    std::future::pending::<()>().await;
                }
                None => {
                    body.watch.touch();
                    return None;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[tokio::test]
    async fn large_chunks_are_split_and_progress_counts_bytes() {
        let snapshot: ByteStream = futures::stream::iter(vec![
            Ok(bytes::Bytes::from(vec![1u8; MAX_MESSAGE + 10])),
            Ok(bytes::Bytes::from(vec![2u8; 5])),
        ])
        .boxed();
        let seen = Arc::new(AtomicU64::new(0));
        let report = seen.clone();
        let progress: Arc<dyn Fn(u64) + Send + Sync> =
            Arc::new(move |sent| report.store(sent, Ordering::SeqCst));
        let source = source(snapshot);
        let messages: Vec<common::Data> = body(source.clone(), progress, UploadWatch::new())
            .collect()
            .await;
        let sizes: Vec<usize> = messages.iter().map(|m| m.bytes.len()).collect();
        assert_eq!(sizes, vec![MAX_MESSAGE, 10, 5]);
        assert_eq!(seen.load(Ordering::SeqCst), (MAX_MESSAGE + 15) as u64);
        assert!(!is_untouched(&source), "taken by the attempt");
    }

    #[tokio::test]
    async fn a_failing_source_aborts_instead_of_ending_the_body() {
        let snapshot: ByteStream = futures::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"abc")),
            Err(TalosError::Unreachable("store gone".into())),
        ])
        .boxed();
        let watch = UploadWatch::new();
        let mut body = Box::pin(body(source(snapshot), Arc::new(|_| {}), watch.clone()));
        assert_eq!(body.next().await.map(|m| m.bytes), Some(b"abc".to_vec()));
        let ended = tokio::time::timeout(std::time::Duration::from_millis(200), body.next()).await;
        assert!(ended.is_err(), "the body must not end after a source error");
        watch.abort.notified().await;
        assert_eq!(
            watch.take_failure(),
            TalosError::Unreachable("store gone".into())
        );
    }
}
