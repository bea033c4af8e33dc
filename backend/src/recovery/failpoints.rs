//! Stopping points for the crash tests: `TALOS_DR_FAILPOINTS=reset_node:after_claim,...` makes
//! the executor stop for good at that point of that kind of step, so a test can kill the process
//! exactly there and check what the restarted console does.
//!
//! When a point is reached, the process logs `failpoint reached: <kind>:<point>` at error level,
//! appends the same line to the file named by `TALOS_DR_FAILPOINT_FILE` (if set), and then waits
//! forever.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;

use talos_dr_shared::recovery::StepKind;

pub const FAILPOINTS_ENV: &str = "TALOS_DR_FAILPOINTS";
pub const FAILPOINT_FILE_ENV: &str = "TALOS_DR_FAILPOINT_FILE";

/// Where in a step's run the executor may stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailPoint {
    /// `claimed` is written; Talos has not been called.
    AfterClaim,
    /// Talos answered; `sent` is not written.
    AfterCall,
    /// `sent` is written; the effect is not confirmed yet.
    AfterSent,
}

impl FailPoint {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AfterClaim => "after_claim",
            Self::AfterCall => "after_call",
            Self::AfterSent => "after_sent",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::AfterClaim, Self::AfterCall, Self::AfterSent]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{FAILPOINTS_ENV}: unknown entries {0:?}; use <step_kind>:<point> with point after_claim, after_call or after_sent"
)]
pub struct FailPointError(pub Vec<String>);

#[derive(Debug, Clone, Default)]
pub struct FailPoints {
    points: BTreeSet<(StepKind, FailPoint)>,
    file: Option<PathBuf>,
}

impl FailPoints {
    /// Parses a comma list; every entry must name a step kind and a point.
    pub fn parse(list: &str, file: Option<PathBuf>) -> Result<Self, FailPointError> {
        let mut points = BTreeSet::new();
        let mut unknown = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry
                .split_once(':')
                .and_then(|(kind, point)| Some((StepKind::parse(kind)?, FailPoint::parse(point)?)));
            match parsed {
                Some(p) => {
                    points.insert(p);
                }
                None => unknown.push(entry.to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(FailPointError(unknown));
        }
        Ok(Self { points, file })
    }

    /// From `TALOS_DR_FAILPOINTS` and `TALOS_DR_FAILPOINT_FILE`; none when unset.
    pub fn from_env() -> Result<Self, FailPointError> {
        let file = std::env::var_os(FAILPOINT_FILE_ENV).map(PathBuf::from);
        match std::env::var(FAILPOINTS_ENV) {
            Ok(list) => Self::parse(&list, file),
            Err(_) => Ok(Self::default()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Stops here for good when the point is armed.
    pub async fn reach(&self, kind: StepKind, point: FailPoint) {
        if !self.points.contains(&(kind, point)) {
            return;
        }
        let line = format!("failpoint reached: {}:{}", kind.as_str(), point.as_str());
        tracing::error!("{line}");
        if let Some(path) = &self.file {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{line}").and_then(|()| f.sync_all()));
            if let Err(e) = written {
                tracing::error!(path = %path.display(), error = %e, "cannot write the failpoint file");
            }
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_a_step_kind_and_a_point() {
        let points = FailPoints::parse("reset_node:after_claim, bootstrap:after_sent", None)
            .expect("parses");
        assert!(
            points
                .points
                .contains(&(StepKind::ResetNode, FailPoint::AfterClaim))
        );
        assert!(
            points
                .points
                .contains(&(StepKind::Bootstrap, FailPoint::AfterSent))
        );
        assert!(FailPoints::parse("", None).expect("empty").is_empty());
        let err = FailPoints::parse(
            "reset_node:after_claim,reset:after_call,bootstrap:before",
            None,
        )
        .expect_err("refused");
        assert_eq!(err.0, vec!["reset:after_call", "bootstrap:before"]);
        assert!(err.to_string().contains("reset:after_call"));
    }
}
