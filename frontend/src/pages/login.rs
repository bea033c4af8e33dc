use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::{self, ApiError};
use crate::session::{SessionState, SessionStatus, next_after_sign_in};

/// `/login`: username and password. On success the page the user came from opens again.
#[component]
pub fn LoginPage() -> impl IntoView {
    let session = SessionState::get();
    let query = use_query_map();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    Effect::new(move |_| document().set_title("Sign in · talos-dr"));

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let (user, pass) = (username.get_untracked(), password.get_untracked());
        let next = next_after_sign_in(query.with_untracked(|q| q.get("next")).as_deref());
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::create_session(&user, &pass).await {
                Ok(info) => {
                    password.set(String::new());
                    session.0.set(SessionStatus::SignedIn(info));
                    navigate(
                        &next,
                        NavigateOptions {
                            replace: true,
                            ..Default::default()
                        },
                    );
                }
                Err(e) => {
                    let message = match e {
                        ApiError::Console { message, .. } => message,
                        other => other.to_string(),
                    };
                    error.set(Some(message));
                }
            }
            busy.set(false);
        });
    };

    view! {
        <main class="page login-page">
            <form class="login-card" data-testid="login-form" on:submit=submit>
                <h1>"Sign in to talos-dr"</h1>
                <label for="login-username">"Username"</label>
                <input
                    id="login-username"
                    data-testid="login-username"
                    name="username"
                    autocomplete="username"
                    required
                    autofocus
                    prop:value=username
                    on:input=move |ev| username.set(event_target_value(&ev))
                />
                <label for="login-password">"Password"</label>
                <input
                    id="login-password"
                    data-testid="login-password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                    prop:value=password
                    on:input=move |ev| password.set(event_target_value(&ev))
                />
                <Show when=move || error.with(Option::is_some)>
                    <p class="login-error" role="alert" data-testid="login-error">
                        {move || error.get().unwrap_or_default()}
                    </p>
                </Show>
                <button type="submit" data-testid="login-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </main>
    }
}
