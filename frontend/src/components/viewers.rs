use leptos::prelude::*;

use crate::live::HealthWatch;
use crate::session::SessionState;

/// Everyone else who has this cluster open, so two people do not act on it unaware of each
/// other. Hidden while nobody else is looking.
#[component]
pub fn OtherViewers(watch: HealthWatch) -> impl IntoView {
    let me = use_context::<SessionState>().and_then(|s| s.username());
    let others = move || {
        watch.viewers.with(|names| {
            names
                .iter()
                .filter(|n| Some(n.as_str()) != me.as_deref())
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    move || {
        let others = others();
        (!others.is_empty()).then(|| {
            let text = others.join(", ");
            view! {
                <span class="viewers sub" data-testid="other-viewers" title="Also looking at this cluster">
                    "also here: " <span class="strong">{text}</span>
                </span>
            }
        })
    }
}
