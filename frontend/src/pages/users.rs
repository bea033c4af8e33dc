use leptos::prelude::*;
use leptos::task::spawn_local;
use talos_dr_shared::Role;

use crate::api::{self, ApiError, CreatedUser};
use crate::format::utc_datetime;

/// `/users`: console users and a form to add one (administrators; the console refuses others).
#[component]
pub fn UsersPage() -> impl IntoView {
    let users = LocalResource::new(api::list_users);
    let username = RwSignal::new(String::new());
    let chosen = RwSignal::new(vec![Role::Viewer]);
    let outcome = RwSignal::new(None::<Result<CreatedUser, ApiError>>);
    let busy = RwSignal::new(false);
    document().set_title("Users · talos-dr");

    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = username.get_untracked().trim().to_string();
        let roles = chosen.get_untracked();
        busy.set(true);
        spawn_local(async move {
            let result = api::create_user(&name, &roles).await;
            if result.is_ok() {
                username.try_set(String::new());
                users.refetch();
            }
            outcome.try_set(Some(result));
            busy.try_set(false);
        });
    };
    let role_box = move |role: Role| {
        let checked = move || chosen.with(|c| c.contains(&role));
        let toggle = move |_| {
            chosen.update(|c| {
                if let Some(at) = c.iter().position(|r| *r == role) {
                    c.remove(at);
                } else {
                    c.push(role);
                }
            })
        };
        view! {
            <label class="role-choice">
                <input type="checkbox" name="role" value=role.as_str() prop:checked=checked on:change=toggle/>
                {role.as_str()}
            </label>
        }
    };

    view! {
        <main class="page" data-testid="users-page">
            <header class="page-head"><h1>"Users"</h1></header>
            <form class="audit-filters panel" on:submit=add data-testid="user-add">
                <label class="filter">
                    <span class="k">"New username"</span>
                    <input type="text" name="username" required=true
                        prop:value=move || username.get()
                        on:input=move |ev| username.set(event_target_value(&ev))/>
                </label>
                <fieldset class="filter roles-field">
                    <legend class="k">"Roles"</legend>
                    {Role::ALL.into_iter().map(role_box).collect_view()}
                </fieldset>
                <button type="submit" disabled=move || busy.get()>"Add user"</button>
            </form>
            {move || outcome.get().map(|r| match r {
                Ok(created) => view! {
                    <p class="panel empty" role="status" data-testid="user-added">
                        "Added " <span class="strong">{created.user.username}</span>
                        {created.generated_password.map(|p| view! {
                            ". Password (shown once): " <code data-testid="user-password">{p}</code>
                        })}
                    </p>
                }.into_any(),
                Err(e) => view! { <p class="panel empty tone-bad" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="loading">"Loading users…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Ok(list) => view! {
                            <section class="panel">
                                <div class="table-wrap">
                                    <table class="grid" data-testid="users">
                                        <thead><tr>
                                            <th scope="col">"Username"</th>
                                            <th scope="col">"Roles"</th>
                                            <th scope="col">"Created (UTC)"</th>
                                        </tr></thead>
                                        <tbody>
                                            {list.into_iter().map(|u| view! {
                                                <tr>
                                                    <td class="strong">{u.username}</td>
                                                    <td class="mono">{u.roles.iter().map(Role::as_str).collect::<Vec<_>>().join(", ")}</td>
                                                    <td>{utc_datetime(u.created_at_ms)}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            </section>
                        }.into_any(),
                        Err(e) => view! {
                            <section class="verdict tone-bad" role="alert" data-testid="users-error">
                                <p class="verdict-summary">{e.to_string()}</p>
                            </section>
                        }.into_any(),
                    }
                })}
            </Transition>
        </main>
    }
}
