use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Copies `text` with the browser's clipboard API (reached through JS reflection: only secure
/// contexts and loopback have it). Says whether the browser accepted it.
fn copy_to_clipboard(text: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let clipboard = js_sys::Reflect::get(&window, &"navigator".into())
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"clipboard".into()))
        .ok()
        .filter(|c| !c.is_undefined());
    let Some(clipboard) = clipboard else {
        return false;
    };
    let write = js_sys::Reflect::get(&clipboard, &"writeText".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    match write {
        Some(f) => f.call1(&clipboard, &text.into()).is_ok(),
        None => false,
    }
}

/// The talosctl command that does the same by hand, in monospace, selectable and copyable.
#[component]
pub fn CommandLine(command: String) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let text = command.clone();
    view! {
        <div class="command-line">
            <code class="command" data-testid="step-talosctl">{command}</code>
            <button type="button" class="btn small" data-testid="copy-command"
                on:click=move |_| copied.set(Some(copy_to_clipboard(&text)))>
                {move || match copied.get() {
                    Some(true) => "Copied",
                    Some(false) => "Select and copy",
                    None => "Copy",
                }}
            </button>
        </div>
    }
}
