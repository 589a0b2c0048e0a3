//! Hiding passwords in store URLs.

/// `text` with a URL's password (whatever stands between `user:` and `@`) replaced by `***`:
/// for messages about store URLs, parsed or not, in any build.
///
/// ```
/// assert_eq!(wf_store::redact_url("redis://app:s3cret@h:6379/0"), "redis://app:***@h:6379/0");
/// assert_eq!(wf_store::redact_url("file:./data"), "file:./data");
/// ```
pub fn redact_url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                // `redis://secret@host` is a password-only form for some clients.
                "***".to_owned()
            };
            format!("{scheme}://{masked}@{hosts}{tail}")
        }
        None => text.to_owned(),
    }
}
