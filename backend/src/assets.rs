//! The web UI, embedded at build time from `../dist` (the trunk output).
//!
//! Unknown paths that look like app routes get `index.html`, so deep links work in the
//! single-page app; unknown paths with a file extension are a plain 404. Debug builds read
//! `dist/` from disk on each request, so a rebuilt UI shows up without rebuilding the server.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

#[derive(rust_embed::Embed)]
#[folder = "../dist/"]
#[allow_missing = true]
struct Dist;

/// Shown when the binary was built before the UI: the API still works.
const UI_NOT_BUILT: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>talos-dr</title></head>\n<body><main><h1>talos-dr</h1><p>The web UI was not built into this binary. Build it with <code>trunk build --release</code> and rebuild the console; the JSON API under <code>/api/</code> works without it.</p></main></body></html>\n";

/// CSP for everything that is not an HTML page: nothing may load, nothing may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Serves a UI file, or `index.html` for app routes.
pub async fn serve_asset(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if !path.is_empty()
        && path != "index.html"
        && let Some(file) = Dist::get(path)
    {
        let mime = HeaderValue::from_str(file.metadata.mimetype())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        return (
            [
                (header::CONTENT_TYPE, mime),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            file.data.into_owned(),
        )
            .into_response();
    }
    let last_segment = path.rsplit('/').next().unwrap_or(path);
    if last_segment.contains('.') && path != "index.html" {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    index_page()
}

fn index_page() -> Response {
    let html = Dist::get("index.html")
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_else(|| UI_NOT_BUILT.to_string());
    let csp = page_csp(&html);
    let csp = HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(API_CSP));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        html,
    )
        .into_response()
}

/// Same-origin only. trunk's loader is an inline module script, so its exact text is allowed by
/// hash rather than opening `'unsafe-inline'`; `'wasm-unsafe-eval'` lets the page compile its
/// WebAssembly.
pub fn page_csp(html: &str) -> String {
    let hashes: String = inline_scripts(html)
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (open_tag, after) = rest.split_once('>')?;
        if open_tag.contains("src=") {
            return None;
        }
        let (body, _) = after.split_once("</script>")?;
        (!body.is_empty()).then_some(body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_hash_only() {
        let html = "<script src=\"/a.js\"></script><script type=\"module\">init()</script>";
        let csp = page_csp(html);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"init()"));
        assert!(csp.contains(&format!("'sha256-{expected}'")), "{csp}");
        assert_eq!(csp.matches("'sha256-").count(), 1, "{csp}");
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
