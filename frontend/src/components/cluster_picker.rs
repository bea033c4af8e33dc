use leptos::prelude::*;
use leptos_router::components::A;
use talos_dr_shared::ClusterSummary;

use crate::api::ApiError;

/// Links to every watched cluster; the current one is marked by the router (`aria-current`).
#[component]
pub fn ClusterPicker(
    clusters: LocalResource<Result<Vec<ClusterSummary>, ApiError>>,
) -> impl IntoView {
    let links = move || {
        clusters.get().and_then(Result::ok).map(|list| {
            list.into_iter()
                .map(|c| {
                    let href = format!(
                        "/clusters/{}",
                        String::from(js_sys::encode_uri_component(&c.name))
                    );
                    let title = format!(
                        "{} control-plane node(s): {}",
                        c.control_plane_nodes.len(),
                        c.control_plane_nodes.join(", ")
                    );
                    view! { <li><A href=href attr:title=title>{c.name}</A></li> }
                })
                .collect_view()
        })
    };
    view! {
        <nav class="cluster-picker" aria-label="Clusters">
            <ul>{links}</ul>
        </nav>
    }
}
