use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::components::{A, Redirect, Route, Router, Routes};
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::path;
use talos_dr_shared::{Role, SessionInfo};

use crate::access::{can, can_read_audit};
use crate::api;
use crate::components::{ClusterPicker, ThemeSwitch, UserMenu};
use crate::pages::{
    AuditPage, ClusterHealthPage, FleetPage, HomePage, LoginPage, NotFound, UsersPage,
};
use crate::pages::{ClusterIncidentsPage, IncidentPage};
use crate::pages::{SnapshotDiffPage, SnapshotEntryPage, SnapshotsPage};
use crate::session::{SessionState, SessionStatus, login_path};

#[component]
pub fn App() -> impl IntoView {
    let session = SessionState(RwSignal::new(SessionStatus::Checking));
    provide_context(session);
    spawn_local(async move {
        let status = match api::find_session().await {
            Ok(Some(info)) => SessionStatus::SignedIn(info),
            Ok(None) => SessionStatus::SignedOut,
            Err(e) => {
                leptos::logging::warn!("checking the session: {e}");
                SessionStatus::SignedOut
            }
        };
        session.0.set(status);
    });
    view! {
        <Router>
            <a class="skip-link" href="#content">"Skip to content"</a>
            <SignInGuard/>
            {move || match session.0.get() {
                SessionStatus::Checking => view! {
                    <main class="page"><p class="loading">"Checking your session…"</p></main>
                }
                .into_any(),
                SessionStatus::SignedOut => view! {
                    <div id="content" tabindex="-1">
                        <Routes fallback=|| view! { <p class="loading">"Opening the sign-in page…"</p> }>
                            <Route path=path!("/login") view=LoginPage/>
                        </Routes>
                    </div>
                }
                .into_any(),
                SessionStatus::SignedIn(info) => view! { <SignedIn info/> }.into_any(),
            }}
        </Router>
    }
}

/// Sends a signed-out visitor to the sign-in page, remembering where they were; the API client
/// reports a lost session (any 401) here too.
#[component]
fn SignInGuard() -> impl IntoView {
    let session = SessionState::get();
    let navigate = use_navigate();
    let location = use_location();
    api::on_unauthorized(move || session.0.set(SessionStatus::SignedOut));
    Effect::new(move |_| {
        if session.0.with(|s| *s == SessionStatus::SignedOut) {
            let path = location.pathname.get();
            if !path.starts_with("/login") {
                let here = format!("{path}{}", location.search.get_untracked());
                navigate(
                    &login_path(&here),
                    NavigateOptions {
                        replace: true,
                        ..Default::default()
                    },
                );
            }
        }
    });
}

/// The console itself, for a signed-in user.
#[component]
fn SignedIn(info: SessionInfo) -> impl IntoView {
    // One cluster list for the whole app: the picker and the home page share it.
    let clusters = LocalResource::new(api::list_clusters);
    provide_context(clusters);
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true">"◆"</span>
                "talos-dr"
            </A>
            <nav class="main-nav" aria-label="Console">
                <A href="/fleet">"Fleet"</A>
                {can_read_audit(&info).then(|| view! { <A href="/audit" attr:data-testid="nav-audit">"Audit"</A> })}
                {can(&info, Role::Admin).then(|| view! { <A href="/users" attr:data-testid="nav-users">"Users"</A> })}
            </nav>
            <ClusterPicker clusters/>
            <div class="topbar-end">
                <ThemeSwitch/>
                <UserMenu info/>
            </div>
        </header>
        <div id="content" tabindex="-1">
            <Routes fallback=NotFound>
                <Route path=path!("/") view=HomePage/>
                <Route path=path!("/clusters/:name") view=ClusterHealthPage/>
                <Route path=path!("/clusters/:name/snapshots") view=SnapshotsPage/>
                <Route path=path!("/clusters/:name/snapshots/:id") view=SnapshotEntryPage/>
                <Route path=path!("/clusters/:name/snapshots/:a/diff/:b") view=SnapshotDiffPage/>
                <Route path=path!("/clusters/:name/incidents") view=ClusterIncidentsPage/>
                <Route path=path!("/incidents/:id") view=IncidentPage/>
                <Route path=path!("/fleet") view=FleetPage/>
                <Route path=path!("/audit") view=AuditPage/>
                <Route path=path!("/users") view=UsersPage/>
                <Route path=path!("/login") view=|| view! { <Redirect path="/"/> }/>
            </Routes>
        </div>
    }
}
