use leptos::prelude::*;
use talos_dr_ui::app::App;

fn main() {
    // Without the hook a panic in wasm shows only "unreachable executed" in the console.
    console_error_panic_hook::set_once();
    mount_to_body(App);
}
