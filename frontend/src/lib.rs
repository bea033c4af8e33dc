//! The talos-dr web console: a Leptos app rendered in the browser that shows live etcd and
//! control-plane health from the console's API.

pub mod access;
pub mod api;
pub mod app;
pub mod components;
pub mod format;
pub mod live;
pub mod pages;
pub mod session;
pub mod theme;
