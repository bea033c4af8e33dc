//! The fleet overview: every watched cluster on one line, once and live.

use super::stream::{self, Listen, StreamUpdate, Subscription};
use super::{ApiError, get_json};

/// `GET /api/fleet`: every watched cluster on one line.
pub async fn find_fleet() -> Result<talos_dr_shared::Fleet, ApiError> {
    get_json::<talos_dr_shared::Fleet>("/api/fleet", "a fleet overview").await
}

/// An open `GET /api/fleet/stream` subscription.
pub type FleetSubscription = Subscription<talos_dr_shared::Fleet>;

/// Subscribes to the fleet: `on_update` gets every new overview and every change of the stream.
pub fn subscribe_fleet(
    on_update: impl Fn(StreamUpdate<talos_dr_shared::Fleet>) + 'static,
) -> Result<FleetSubscription, ApiError> {
    stream::subscribe(
        "/api/fleet/stream".into(),
        vec![Listen {
            event: "fleet",
            what: "a fleet event",
            read: stream::json,
        }],
        on_update,
    )
}
