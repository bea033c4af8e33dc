use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};
use talos_dr_shared::sign_in::{LocalSignIn, OidcRefusal, SignInOptions};

use crate::api::{self, ApiError};
use crate::session::{SessionState, SessionStatus, next_after_sign_in};

/// The provider's sign-in URL, coming back to `next` afterwards.
pub fn oidc_start_url(login_url: &str, next: &str) -> String {
    if next == "/" {
        return login_url.to_string();
    }
    format!(
        "{login_url}?next={}",
        String::from(js_sys::encode_uri_component(next))
    )
}

/// `/login`: "Sign in with <provider>" when the console has an OIDC provider, and the username
/// and password form when local sign-in is allowed (folded away when only break-glass accounts
/// may use it). On success the page the user came from opens again.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let options = LocalResource::new(api::find_sign_in_options);
    let refusal = move || {
        query
            .with(|q| q.get("oidc_error"))
            .and_then(|code| OidcRefusal::parse(&code))
    };
    Effect::new(move |_| document().set_title("Sign in · talos-dr"));
    let next = move || next_after_sign_in(query.with(|q| q.get("next")).as_deref());

    view! {
        <main class="page login-page">
            <div class="login-card">
                <h1>"Sign in to talos-dr"</h1>
                {move || {
                    refusal()
                        .map(|r| {
                            view! {
                                <p class="login-error" role="alert" data-testid="login-oidc-error">
                                    {r.message()}
                                </p>
                            }
                        })
                }}
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        // A console that cannot say: offer the password form, as before OIDC.
                        let options = options.await.unwrap_or(SignInOptions {
                            oidc: None,
                            local: LocalSignIn::Everyone,
                        });
                        let button = options.oidc.clone().map(|oidc| {
                            let href = move || oidc_start_url(&oidc.login_url, &next());
                            view! {
                                // rel=external: a full page load to the console's route, which
                                // redirects to the provider; the app's router must not take it.
                                <a
                                    class="button oidc-button"
                                    data-testid="login-oidc"
                                    rel="external"
                                    href=href
                                >
                                    {format!("Sign in with {}", oidc.provider_name)}
                                </a>
                            }
                        });
                        let form = match (options.local, options.oidc.is_some()) {
                            (LocalSignIn::Everyone, _) => view! { <LocalSignInForm/> }.into_any(),
                            (LocalSignIn::BreakGlass, _) => {
                                view! {
                                    <details class="break-glass" data-testid="login-break-glass">
                                        <summary>"Break-glass account"</summary>
                                        <LocalSignInForm/>
                                    </details>
                                }
                                    .into_any()
                            }
                        };
                        view! {
                            {button}
                            {form}
                        }
                    })}
                </Suspense>
            </div>
        </main>
    }
}

/// Username and password of a local account.
#[component]
fn LocalSignInForm() -> impl IntoView {
    let session = SessionState::get();
    let query = use_query_map();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

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
                    error.try_set(Some(message));
                }
            }
            busy.try_set(false);
        });
    };

    view! {
        <form class="login-form" data-testid="login-form" on:submit=submit>
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
            // try_*: a successful sign-in swaps this page out while its effects may still run.
            <Show when=move || error.try_with(Option::is_some).unwrap_or(false)>
                <p class="login-error" role="alert" data-testid="login-error">
                    {move || error.try_get().flatten().unwrap_or_default()}
                </p>
            </Show>
            <button
                type="submit"
                data-testid="login-submit"
                disabled=move || busy.try_get().unwrap_or(false)
            >
                {move || if busy.try_get().unwrap_or(false) { "Signing in…" } else { "Sign in" }}
            </button>
        </form>
    }
}
