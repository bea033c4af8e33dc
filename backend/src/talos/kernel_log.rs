//! Kernel-log lines from `Dmesg`. Talos sends one record per `common.Data`, but nothing on the
//! wire promises that (a proxy may split or join chunks), so lines are cut at newlines here.

use std::collections::{HashSet, VecDeque};

use futures::StreamExt;

use super::{ByteStream, KernelLogLine, KernelLogStream};

/// Cuts a byte stream into lines; a line split across chunks is kept until its newline comes.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<KernelLogLine> {
        self.pending.extend_from_slice(chunk);
        let Some(last_newline) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.pending.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        complete[..complete.len() - 1]
            .split(|b| *b == b'\n')
            .map(line)
            .collect()
    }

    /// What is left once the stream ended: a last line without its newline.
    pub(crate) fn finish(&mut self) -> Option<KernelLogLine> {
        if self.pending.is_empty() {
            return None;
        }
        Some(line(&std::mem::take(&mut self.pending)))
    }
}

fn line(bytes: &[u8]) -> KernelLogLine {
    KernelLogLine {
        text: String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The lines of a Dmesg byte stream; an error ends it (a partial line before it is dropped).
pub(crate) fn lines(chunks: ByteStream) -> KernelLogStream {
    let state = (chunks, LineSplitter::default(), VecDeque::new(), false);
    futures::stream::unfold(
        state,
        |(mut chunks, mut splitter, mut ready, mut done)| async move {
            loop {
                if let Some(line) = ready.pop_front() {
                    return Some((Ok(line), (chunks, splitter, ready, done)));
                }
                if done {
                    return None;
                }
                match chunks.next().await {
                    Some(Ok(bytes)) => ready.extend(splitter.push(&bytes)),
                    Some(Err(error)) => {
                        done = true;
                        return Some((Err(error), (chunks, splitter, ready, done)));
                    }
                    None => {
                        done = true;
                        ready.extend(splitter.finish());
                    }
                }
            }
        },
    )
    .boxed()
}

/// The last `tail_lines` lines of `history`: all of them when negative, none when zero.
pub(crate) fn last_lines(mut history: Vec<KernelLogLine>, tail_lines: i32) -> Vec<KernelLogLine> {
    let Ok(keep) = usize::try_from(tail_lines) else {
        return history;
    };
    let skip = history.len().saturating_sub(keep);
    history.split_off(skip)
}

/// A followed Dmesg replays the kernel buffer before new records: drops that replay, i.e. the
/// leading lines already read as history. Records carry nanosecond timestamps, so an identical
/// line is the same record.
pub(crate) fn after_history(
    followed: KernelLogStream,
    history: HashSet<String>,
) -> KernelLogStream {
    let mut replay = Some(history);
    followed
        .filter(move |item| {
            let keep = match (item, &replay) {
                (Ok(line), Some(seen)) => !seen.contains(&line.text),
                _ => true,
            };
            if keep {
                replay = None;
            }
            futures::future::ready(keep)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talos::TalosError;

    fn texts(lines: Vec<KernelLogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn lines_are_put_back_together_across_chunks() {
        let mut splitter = LineSplitter::default();
        assert!(splitter.push(b"kern: info: [t1]: first ha").is_empty());
        assert_eq!(
            texts(splitter.push(b"lf\nuser: warning: [t2]: [talos] second\nthi")),
            vec![
                "kern: info: [t1]: first half",
                "user: warning: [t2]: [talos] second"
            ]
        );
        assert_eq!(texts(splitter.push(b"rd\n")), vec!["third"]);
        assert_eq!(texts(splitter.push(b"\n")), vec![""]);
        assert!(splitter.finish().is_none());
        splitter.push(b"no newline at the end");
        assert_eq!(
            splitter.finish().map(|l| l.text),
            Some("no newline at the end".to_string())
        );
    }

    #[tokio::test]
    async fn a_stream_error_ends_the_lines() {
        let chunks: ByteStream = futures::stream::iter(vec![
            Ok(bytes::Bytes::from_static(b"a\nb")),
            Ok(bytes::Bytes::from_static(b"c\n")),
            Err(TalosError::Refused("cancelled".into())),
            Ok(bytes::Bytes::from_static(b"never\n")),
        ])
        .boxed();
        let got: Vec<_> = lines(chunks).collect().await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().map(|l| l.text.as_str()), Ok("a"));
        assert_eq!(got[1].as_ref().map(|l| l.text.as_str()), Ok("bc"));
        assert!(got[2].is_err());
    }

    #[tokio::test]
    async fn the_replayed_buffer_is_dropped_from_a_followed_log() {
        let line = |t: &str| KernelLogLine { text: t.into() };
        let history: HashSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let followed: KernelLogStream =
            futures::stream::iter(["a", "b", "c", "a"].map(|t| Ok(line(t)))).boxed();
        let got: Vec<String> = after_history(followed, history)
            .map(|l| l.map(|l| l.text).unwrap_or_default())
            .collect()
            .await;
        assert_eq!(got, vec!["c", "a"], "only the leading replay is dropped");
        let all = vec![line("1"), line("2"), line("3")];
        assert_eq!(texts(last_lines(all.clone(), 2)), vec!["2", "3"]);
        assert_eq!(texts(last_lines(all.clone(), 0)), Vec::<String>::new());
        assert_eq!(texts(last_lines(all.clone(), -1)), vec!["1", "2", "3"]);
        assert_eq!(texts(last_lines(all, 10)).len(), 3);
    }
}
