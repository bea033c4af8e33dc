use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::api;
use crate::components::{ClusterPicker, ThemeSwitch};
use crate::pages::{ClusterHealthPage, HomePage, NotFound};

#[component]
pub fn App() -> impl IntoView {
    // One cluster list for the whole app: the picker and the home page share it.
    let clusters = LocalResource::new(api::list_clusters);
    provide_context(clusters);
    view! {
        <Router>
            <a class="skip-link" href="#content">"Skip to content"</a>
            <header class="topbar">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    "talos-dr"
                </A>
                <ClusterPicker clusters/>
                <div class="topbar-end">
                    <ThemeSwitch/>
                </div>
            </header>
            <div id="content" tabindex="-1">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=HomePage/>
                    <Route path=path!("/clusters/:name") view=ClusterHealthPage/>
                </Routes>
            </div>
        </Router>
    }
}
