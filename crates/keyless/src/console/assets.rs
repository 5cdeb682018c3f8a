//! The page: HTML, CSS and ES modules compiled into the binary (no CDN, no web fonts:
//! the console works on air-gapped sites). Assets hold no data, so they are served
//! without the launch secret.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `(path, content type, body)` of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", HTML, include_str!("assets/index.html")),
    ("/index.html", HTML, include_str!("assets/index.html")),
    ("/style.css", CSS, include_str!("assets/style.css")),
    ("/js/app.js", JS, include_str!("assets/js/app.js")),
    ("/js/api.js", JS, include_str!("assets/js/api.js")),
    ("/js/dom.js", JS, include_str!("assets/js/dom.js")),
    ("/js/validate.js", JS, include_str!("assets/js/validate.js")),
    ("/js/overview.js", JS, include_str!("assets/js/overview.js")),
    (
        "/js/identities.js",
        JS,
        include_str!("assets/js/identities.js"),
    ),
    (
        "/js/credentials.js",
        JS,
        include_str!("assets/js/credentials.js"),
    ),
    ("/js/roles.js", JS, include_str!("assets/js/roles.js")),
    ("/js/vaults.js", JS, include_str!("assets/js/vaults.js")),
    ("/js/signins.js", JS, include_str!("assets/js/signins.js")),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The asset at `path`, or 404.
pub fn serve(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => {
            let mut response = (*body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        for (path, _, body) in ASSETS {
            for line in body.lines() {
                let Some(rest) = line.trim().strip_prefix("import ") else {
                    continue;
                };
                let Some(start) = rest.find("\"./") else {
                    continue;
                };
                let module = rest
                    .get(start + 3..)
                    .and_then(|m| m.split('"').next())
                    .unwrap_or_default();
                let wanted = format!("/js/{module}");
                assert!(
                    ASSETS.iter().any(|(p, _, _)| *p == wanted),
                    "{path} imports {wanted}, which is not served"
                );
            }
        }
    }

    #[test]
    fn no_asset_renders_data_through_inner_html() {
        for (path, _, body) in ASSETS {
            assert!(!body.contains("innerHTML"), "{path} uses innerHTML");
            assert!(!body.contains("eyJ"), "{path} contains a token");
        }
    }
}
