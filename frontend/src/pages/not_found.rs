use leptos::prelude::*;
use leptos_router::components::A;

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="page">
            <h1>"Page not found"</h1>
            <p>"This console has no page at this address. " <A href="/">"Go to cluster health"</A></p>
        </main>
    }
}
