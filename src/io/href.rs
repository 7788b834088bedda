//! Hrefs: redaction for messages, and the signing hook.

use std::sync::Arc;

/// Rewrites an href before it is fetched, as `planetary_computer.sign_inplace` does: typically
/// appends a SAS token. Called once per object, and again when a signed URL is refused with
/// 403 (it expired). Costs whatever the closure costs.
pub type HrefSigner = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// The href without its query string and fragment, for messages and logs (signed URLs carry
/// credentials there). Costs one allocation.
///
/// ```
/// assert_eq!(strata::io::redact("https://a.b/c.tif?sig=secret"), "https://a.b/c.tif?…");
/// assert_eq!(strata::io::redact("/data/c.tif"), "/data/c.tif");
/// ```
pub fn redact(href: &str) -> String {
    match href.find(['?', '#']) {
        Some(i) => format!("{}?…", &href[..i]),
        None => href.to_string(),
    }
}

/// The host part of an http(s) URL (the key of the per-host request limit).
pub(crate) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_and_hosts() {
        assert_eq!(redact("http://h:1/a?x=1#f"), "http://h:1/a?…");
        assert_eq!(redact("http://h/a#frag"), "http://h/a?…");
        assert_eq!(host_of("https://h.example:8080/a/b?c"), "h.example:8080");
        assert_eq!(host_of("http://h"), "h");
    }
}
