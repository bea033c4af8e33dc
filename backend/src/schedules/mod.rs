//! Snapshot schedules per cluster: a cron expression, a retention policy, a freshness target
//! and a jitter, stored in the database and run by [`scheduler::spawn`].

pub mod api;
pub mod cron;
pub mod freshness;
pub mod metrics;
pub mod retention;
pub mod scheduler;
pub mod store;

pub use retention::{RetentionCandidate, kept, to_delete};
pub use store::{ScheduleStore, StoredSchedule};
