use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::use_navigate;
use talos_dr_shared::SessionInfo;

use crate::api;
use crate::session::{SessionState, SessionStatus};

/// The signed-in user with their roles, and the way out.
#[component]
pub fn UserMenu(info: SessionInfo) -> impl IntoView {
    let session = SessionState::get();
    let navigate = use_navigate();
    let roles = info
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let sign_out = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            if let Err(e) = api::delete_session().await {
                leptos::logging::warn!("signing out: {e}");
            }
            session.0.set(SessionStatus::SignedOut);
            navigate("/login", NavigateOptions::default());
        });
    };
    view! {
        <div class="user-menu">
            <span class="user-name" data-testid="session-user" title=format!("roles: {roles}")>
                {info.username}
            </span>
            <span class="user-roles sub" data-testid="session-roles">{roles.clone()}</span>
            <button type="button" class="sign-out" data-testid="sign-out" on:click=sign_out>
                "Sign out"
            </button>
        </div>
    }
}
