use leptos::prelude::*;

use crate::format::Tone;

/// A status word with its glyph and colour. Colour is never the only signal: the word and the
/// glyph carry the same meaning for anyone who cannot tell the colours apart.
#[component]
pub fn StatusTag(
    #[prop(into)] tone: Signal<Tone>,
    #[prop(into)] word: Signal<String>,
    /// Set on the tag itself, for the cells tests look up.
    #[prop(optional)]
    testid: Option<&'static str>,
    #[prop(optional, into)] title: Option<Signal<String>>,
) -> impl IntoView {
    view! {
        <span
            class=move || format!("tag {}", tone.get().class())
            data-testid=testid
            data-tone=move || tone.get().class().trim_start_matches("tone-").to_string()
            title=move || title.map(|t| t.get())
        >
            <span class="glyph" aria-hidden="true">{move || tone.get().glyph()}</span>
            <span class="word">{move || word.get()}</span>
        </span>
    }
}
