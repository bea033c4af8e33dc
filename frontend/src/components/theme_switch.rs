use leptos::prelude::*;

use crate::theme::{self, ThemeChoice};

/// Auto / Light / Dark, as a group of toggle buttons reachable by keyboard.
#[component]
pub fn ThemeSwitch() -> impl IntoView {
    let choice = RwSignal::new(theme::load());
    view! {
        <div class="theme-switch" role="group" aria-label="Colour theme">
            {ThemeChoice::ALL
                .into_iter()
                .map(|option| {
                    view! {
                        <button
                            type="button"
                            data-testid=format!("theme-{}", option.label().to_lowercase())
                            aria-pressed=move || (choice.get() == option).to_string()
                            on:click=move |_| {
                                choice.set(option);
                                theme::apply(option);
                            }
                        >
                            {option.label()}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}
