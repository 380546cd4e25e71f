//! RTSP URLs: credentials, the base URL of a presentation, control URLs.
// STUB: replaced by the url brief.

use url::Url;

/// The URL without `user:password@`, and the (percent-decoded) credentials.
pub fn strip_credentials(url: &Url) -> (Url, Option<(String, String)>) {
    (url.clone(), None)
}

/// The base for relative control URLs after DESCRIBE.
pub fn base_url(
    request: &Url,
    _content_base: Option<&str>,
    _content_location: Option<&str>,
) -> Url {
    request.clone()
}

/// Resolves an `a=control` value against a base.
pub fn resolve_control(base: &Url, _control: Option<&str>) -> Url {
    base.clone()
}
