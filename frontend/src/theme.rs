//! Light/dark theme: follows the operating system unless the user picked one, and remembers the
//! pick in localStorage. `index.html` applies the saved pick before the app loads, so the page
//! never flashes the wrong theme.

/// The key `index.html` reads too; change both together.
const STORAGE_KEY: &str = "talos-dr.theme";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeChoice {
    /// Follow `prefers-color-scheme`.
    System,
    Light,
    Dark,
}

impl ThemeChoice {
    pub const ALL: [ThemeChoice; 3] = [ThemeChoice::System, ThemeChoice::Light, ThemeChoice::Dark];

    pub fn label(self) -> &'static str {
        match self {
            ThemeChoice::System => "Auto",
            ThemeChoice::Light => "Light",
            ThemeChoice::Dark => "Dark",
        }
    }

    fn stored(self) -> Option<&'static str> {
        match self {
            ThemeChoice::System => None,
            ThemeChoice::Light => Some("light"),
            ThemeChoice::Dark => Some("dark"),
        }
    }

    fn from_stored(value: &str) -> Self {
        match value {
            "light" => ThemeChoice::Light,
            "dark" => ThemeChoice::Dark,
            _ => ThemeChoice::System,
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    // Storage can be disabled (private modes, policies); the theme then simply isn't remembered.
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

pub fn load() -> ThemeChoice {
    storage()
        .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        .map_or(ThemeChoice::System, |v| ThemeChoice::from_stored(&v))
}

/// Applies `choice` to the page and remembers it.
pub fn apply(choice: ThemeChoice) {
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element());
    if let Some(root) = root {
        let _ = match choice.stored() {
            Some(v) => root.set_attribute("data-theme", v),
            None => root.remove_attribute("data-theme"),
        };
    }
    if let Some(s) = storage() {
        let _ = match choice.stored() {
            Some(v) => s.set_item(STORAGE_KEY, v),
            None => s.remove_item(STORAGE_KEY),
        };
    }
}
