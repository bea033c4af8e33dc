//! The "Notifications" section of a cluster's page: whether the team is told when an approval
//! waits or a snapshot goes stale, and how the last deliveries went, so a receiver that keeps
//! failing is seen before the night it matters. Admins set, test and remove the receiver.

use leptos::prelude::*;
use leptos::task::spawn_local;
use talos_dr_shared::Role;
use talos_dr_shared::notifications::{DeliveryState, DeliveryView, WebhookFormat, WebhookView};

use crate::access::can;
use crate::api;
use crate::format::{Tone, utc_datetime};
use crate::session::{SessionState, SessionStatus};

fn is_admin() -> bool {
    SessionState::get()
        .0
        .with_untracked(|s| matches!(s, SessionStatus::SignedIn(info) if can(info, Role::Admin)))
}

fn delivery_tone(state: DeliveryState) -> (Tone, &'static str) {
    match state {
        DeliveryState::Delivered => (Tone::Good, "delivered"),
        DeliveryState::Pending => (Tone::Warn, "retrying"),
        DeliveryState::Failed => (Tone::Bad, "failed"),
    }
}

#[component]
pub fn NotificationsPanel(cluster: String) -> impl IntoView {
    let load_cluster = cluster.clone();
    let webhook = LocalResource::new(move || {
        let cluster = load_cluster.clone();
        async move { api::find_webhook(&cluster).await }
    });
    let message = RwSignal::new(None::<Result<String, String>>);
    let admin = is_admin();
    let form = admin.then(|| webhook_form(cluster.clone(), webhook, message));
    view! {
        <section class="panel notifications" data-testid="notifications">
            <h2 class="panel-title">"Notifications"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading notification settings…"</p> }>
                {move || Suspend::new(async move {
                    match webhook.await {
                        Ok(view) => summary(view).into_any(),
                        Err(e) => view! { <p class="tone-bad" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            {form}
            {move || message.get().map(|m| match m {
                Ok(text) => view! { <p class="tone-good" data-testid="webhook-result">{text}</p> }.into_any(),
                Err(text) => view! { <p class="tone-bad" role="alert" data-testid="webhook-error">{text}</p> }.into_any(),
            })}
        </section>
    }
}

fn summary(view: WebhookView) -> impl IntoView + use<> {
    let receiver = match (&view.receiver, view.format) {
        (Some(r), format) => {
            let format = match format {
                Some(WebhookFormat::Slack) => "Slack-compatible",
                _ => "generic JSON",
            };
            view! { <p data-testid="webhook-receiver">"Sent to "<code>{r.clone()}</code>" as "{format}"."</p> }
                .into_any()
        }
        (None, _) => view! {
            <p class="tone-warn" data-testid="webhook-none">
                "▲ No webhook: nobody is told when an approval waits or a snapshot goes stale."
            </p>
        }
        .into_any(),
    };
    let newest_failure = view
        .recent
        .iter()
        .find(|d| d.last_error.is_some() && d.state != DeliveryState::Delivered)
        .map(|d| {
            view! {
                <p class="tone-bad" role="alert" data-testid="webhook-failing">
                    {format!(
                        "✖ Delivery of \"{}\" {} after {} attempt{}: {}",
                        d.title,
                        if d.state == DeliveryState::Failed { "failed" } else { "is failing" },
                        d.attempts,
                        if d.attempts == 1 { "" } else { "s" },
                        d.last_error.clone().unwrap_or_default()
                    )}
                </p>
            }
        });
    view! {
        {receiver}
        {newest_failure}
        {deliveries(view.recent)}
    }
}

fn deliveries(list: Vec<DeliveryView>) -> impl IntoView + use<> {
    if list.is_empty() {
        return ().into_any();
    }
    let rows = list
        .into_iter()
        .map(|d| {
            let (tone, word) = delivery_tone(d.state);
            view! {
                <tr data-testid="webhook-delivery">
                    <td>{utc_datetime(d.created_at_ms)}</td>
                    <td><code>{d.kind.as_str()}</code></td>
                    <td>{d.title.clone()}</td>
                    <td><span class=format!("tag {}", tone.class())>{format!("{} {word}", tone.glyph())}</span></td>
                    <td>{d.attempts}</td>
                    <td>{d.last_error.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table">
            <thead><tr><th>"Queued"</th><th>"Event"</th><th>"Title"</th><th>"Delivery"</th><th>"Attempts"</th><th>"Last error"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

fn webhook_form(
    cluster: String,
    webhook: LocalResource<Result<WebhookView, api::ApiError>>,
    message: RwSignal<Option<Result<String, String>>>,
) -> impl IntoView {
    let url = RwSignal::new(String::new());
    let slack = RwSignal::new(false);
    let working = RwSignal::new(false);
    let act = move |what: &'static str, cluster: String| {
        if working.get_untracked() {
            return;
        }
        working.set(true);
        message.set(None);
        spawn_local(async move {
            let format = if slack.get_untracked() {
                WebhookFormat::Slack
            } else {
                WebhookFormat::Generic
            };
            let outcome = match what {
                "save" => api::put_webhook(&cluster, &url.get_untracked(), format)
                    .await
                    .map(|_| "Webhook saved.".to_string()),
                "test" => api::test_webhook(&cluster)
                    .await
                    .map(|_| "Test notification queued.".to_string()),
                _ => api::delete_webhook(&cluster)
                    .await
                    .map(|_| "Webhook removed.".to_string()),
            };
            working.set(false);
            message.set(Some(outcome.map_err(|e| e.to_string())));
            webhook.refetch();
        });
    };
    let (c1, c2, c3) = (cluster.clone(), cluster.clone(), cluster);
    view! {
        <form class="inline-form" data-testid="webhook-form" on:submit=move |ev| {
            ev.prevent_default();
            act("save", c1.clone());
        }>
            <label>"Webhook URL "
                <input type="url" required placeholder="https://hooks.example.com/…"
                    data-testid="webhook-url"
                    prop:value=move || url.get()
                    on:input=move |ev| url.set(event_target_value(&ev)) />
            </label>
            <label>
                <input type="checkbox" data-testid="webhook-slack"
                    prop:checked=move || slack.get()
                    on:change=move |ev| slack.set(event_target_checked(&ev)) />
                " Slack-compatible payload"
            </label>
            <button class="button" type="submit" disabled=move || working.get()>"Save webhook"</button>
            <button class="button" type="button" disabled=move || working.get()
                data-testid="webhook-test" on:click=move |_| act("test", c2.clone())>"Send a test"</button>
            <button class="button" type="button" disabled=move || working.get()
                on:click=move |_| act("remove", c3.clone())>"Remove webhook"</button>
        </form>
    }
}
