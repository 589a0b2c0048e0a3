//! Who may use the monitor: the token (a header, or a cookie a browser gets from `?token=` on
//! its first visit), the loopback host check of a token-less monitor, and the per-process secret
//! every action form carries (so another site cannot post one).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::html;
use crate::routes::Shared;

/// The cookie a browser keeps the token in: `wf_token_<port>`, the port from the `Host` header,
/// since cookies do not tell ports apart (two monitors on one host keep a token each).
fn cookie_name(headers: &HeaderMap) -> String {
    let port = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("80");
    format!("wf_token_{port}")
}

/// Compares without stopping at the first difference, so the time taken does not tell how much
/// of a guess was right.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// 128 random bits as hex, from the standard library's randomly seeded hasher.
pub(crate) fn secret() -> String {
    let mut out = String::new();
    for i in 0..2u8 {
        let mut h = RandomState::new().build_hasher();
        h.write_u8(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Whether the `Host` header names this machine's loopback interface.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    // `name`, `name:port`, `[v6]` or `[v6]:port`, nothing else (`[::1]evil.example` and
    // `localhost:80@evil.example` are no loopback names).
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((name, "")) => (name, None),
            Some((name, after)) => match after.strip_prefix(':') {
                Some(port) => (name, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && matches!(name, "127.0.0.1" | "localhost" | "::1")
}

/// The token a request carries: `Authorization: Bearer <token>` or the cookie.
fn carried(headers: &HeaderMap) -> Option<String> {
    let cookie = cookie_name(headers);
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn refuse(status: StatusCode, why: &str) -> Response {
    let body = format!("<h1>{}</h1><p>{}</p>", status.as_u16(), html::esc(why));
    (status, html::page("Refused", &body)).into_response()
}

/// What every response says to the browser: scripts only from the monitor itself (no inline
/// script runs, should an escape ever be missed), no framing (a confirmation page cannot be
/// overlaid by another site to trick a click), no content-type guessing, no referrer.
pub(crate) async fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; \
             style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The gate in front of every route.
pub(crate) async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if shared.config.loopback_only && !loopback_host(req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "this monitor listens on the loopback interface and answers requests for \
             127.0.0.1, localhost or [::1] only",
        );
    }
    let Some(token) = shared.config.token.as_deref() else {
        return next.run(req).await;
    };
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    if let Some(given) = query.get("token") {
        if !same(given.as_bytes(), token.as_bytes()) {
            return refuse(StatusCode::UNAUTHORIZED, "wrong token");
        }
        // Keep it in a cookie and take it out of the address bar (and of the history).
        let rest: Vec<String> = query
            .iter()
            .filter(|(k, _)| *k != "token")
            .map(|(k, v)| format!("{}={}", html::url_value(k), html::url_value(v)))
            .collect();
        // One leading slash: `//evil.example` would leave the monitor.
        let path = format!("/{}", req.uri().path().trim_start_matches('/'));
        let location = match rest.is_empty() {
            true => path,
            false => format!("{path}?{}", rest.join("&")),
        };
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            cookie_name(req.headers()),
            html::url_value(token)
        );
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
        )
            .into_response();
    }
    match carried(req.headers()) {
        Some(given) if same(given.as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => refuse(
            StatusCode::UNAUTHORIZED,
            "this monitor needs its token: open the address `wf serve` printed (it ends in \
             ?token=…), or send the header Authorization: Bearer <token>",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
        assert!(same(b"", b""));
    }

    #[test]
    fn secrets_differ() {
        assert_ne!(secret(), secret());
        assert_eq!(secret().len(), 32);
    }

    #[test]
    fn cookies_are_named_after_the_port() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7070"));
        assert_eq!(cookie_name(&h), "wf_token_7070");
        h.insert(header::HOST, HeaderValue::from_static("[::1]:8080"));
        assert_eq!(cookie_name(&h), "wf_token_8080");
        h.insert(header::HOST, HeaderValue::from_static("example.org"));
        assert_eq!(cookie_name(&h), "wf_token_80");
    }

    #[test]
    fn cookies_decode() {
        assert_eq!(percent_decode("a%20b%2F"), "a b/");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
