//! `GET /status.html` (and `GET /status` from a browser): the status page
//! people look at, one self-contained HTML file (`status_page.html`) with
//! its CSS and script inline: no CDN, no web fonts, no build step, so it
//! works on a host with no way out and from a file saved to disk.
//!
//! The page is static; its script fetches `/status.json`
//! ([`super::status_json`]) every second and draws from it, so the HTTP
//! thread renders no HTML and the page and the JSON cannot disagree. Every
//! section of the JSON may be `null`: the page then says "not measured
//! yet" (the monitor's sections of issue 14 before it runs) instead of
//! failing. The elements a test or a person's script reads carry stable
//! ids and `data-value` attributes (raw numbers, beside the formatted
//! text), listed at the top of the file.

/// The page, as served.
pub const PAGE: &str = include_str!("status_page.html");

/// Whether a request's `Accept` header asks for HTML: a browser's does
/// (`text/html,application/xhtml+xml,...`); curl's (`*/*`) and none do not,
/// so `curl /status` keeps the text page.
pub fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .any(|t| t.eq_ignore_ascii_case("text/html"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_html_and_curl_gets_text() {
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(Some(firefox)));
        assert!(wants_html(Some("TEXT/HTML")));
        assert!(!wants_html(Some("*/*")));
        assert!(!wants_html(Some("text/plain")));
        assert!(!wants_html(Some("application/xhtml+xml")));
        assert!(!wants_html(None));
    }

    #[test]
    fn the_page_is_self_contained() {
        assert!(PAGE.starts_with("<!doctype html>"));
        assert!(PAGE.contains("fetch(\"/status.json\""), "it reads the JSON");
        // The one URL in it is SVG's namespace, a name and not a fetch.
        let page = PAGE.replace("\"http://www.w3.org/2000/svg\"", "");
        for outside in [
            "http:", "https:", "@import", "url(", "<link", "src=", "href=",
        ] {
            assert!(!page.contains(outside), "the page loads {outside}");
        }
        for id in [
            "verdict", "uptime", "backend", "learning", "cores", "shards", "lanes", "drops",
            "alerts", "forecast", "renders",
        ] {
            assert!(PAGE.contains(&format!("id=\"{id}\"")), "no #{id}");
        }
    }
}
