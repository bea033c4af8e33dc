//! The fleet overview: every watched cluster on one line, once and live.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Event, EventSource, MessageEvent};

use super::{ApiError, find_session, get_json, js_text};

/// `GET /api/fleet`: every watched cluster on one line.
pub async fn find_fleet() -> Result<talos_dr_shared::Fleet, ApiError> {
    get_json::<talos_dr_shared::Fleet>("/api/fleet", "a fleet overview").await
}

/// An open `GET /api/fleet/stream` subscription; closes when dropped. The browser reconnects by
/// itself after a plain disconnect.
pub struct FleetSubscription {
    es: EventSource,
    _on_fleet: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
}

impl Drop for FleetSubscription {
    fn drop(&mut self) {
        self.es.close();
    }
}

/// Subscribes to the fleet: `on_fleet` gets every new overview, `Err` when an event cannot be
/// read or the stream dropped (`None` in the error slot means the stream was lost).
pub fn subscribe_fleet(
    on_fleet: impl Fn(Result<talos_dr_shared::Fleet, Option<ApiError>>) + 'static,
) -> Result<FleetSubscription, ApiError> {
    let es = EventSource::new("/api/fleet/stream").map_err(|e| ApiError::Stream(js_text(&e)))?;
    let on_fleet = Rc::new(on_fleet);
    let deliver = on_fleet.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let parsed = ev
            .data()
            .as_string()
            .ok_or_else(|| "the event carried no text".to_string())
            .and_then(|text| {
                serde_json::from_str::<talos_dr_shared::Fleet>(&text).map_err(|e| e.to_string())
            });
        deliver(parsed.map_err(|detail| {
            Some(ApiError::Malformed {
                what: "a fleet event",
                detail,
            })
        }));
    });
    let on_error = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        on_fleet(Err(None));
        // An expired session shows the sign-in page instead of a stream that never returns.
        leptos::task::spawn_local(async {
            let _ = find_session().await;
        });
    });
    es.add_event_listener_with_callback("fleet", on_message.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;
    es.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref())
        .map_err(|e| ApiError::Stream(js_text(&e)))?;
    Ok(FleetSubscription {
        es,
        _on_fleet: on_message,
        _on_error: on_error,
    })
}
