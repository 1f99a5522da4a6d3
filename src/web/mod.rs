//! The read-only status page: audience sizes over time, holdouts, sync state per destination
//! × audience, ingest counters, lift of pushed vs held-out members and retention. One HTML,
//! one JS and one CSS file compiled into the binary (`assets/`, no build step), and JSON built
//! from the same in-memory state the gRPC `AudienceService` and `AdminService` answer from
//! ([`status`]) and the same reports `InsightService` answers with ([`insights`]).
//!
//! Served over the HTTP side the metrics endpoint uses ([`crate::service::http`]): GET and
//! HEAD only, a strict Content-Security-Policy (no inline script or style), no caching. With
//! `[auth]` enabled every request needs the admin token, as HTTP Basic (any user name, the
//! token as password, so a browser can ask for it) or `Authorization: Bearer`. Off loopback the
//! page refuses to run without a token. Without a token, only requests addressed to a loopback
//! name or an IP address are answered, so a web site cannot read the page through DNS
//! rebinding.

pub mod insights;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::api::auth::{Guard, Scope};
use crate::api::Context;
use crate::service::http::{self, Request, Response};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Everything the page loads comes from itself; scripts and styles only from its files.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// Why the page could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The listener could not bind.
    #[error("binding the status page {addr} (`web.listen`): {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Off loopback without tokens.
    #[error("`web.listen` {0} is not a loopback address and [auth] is off: the page needs the admin token there")]
    NeedsToken(SocketAddr),
}

/// What a request can read.
#[derive(Clone)]
struct Page {
    ctx: Context,
    guard: Guard,
    loopback: bool,
}

/// Binds `listen` and serves the page until the process ends; returns the bound address.
pub async fn start(listen: SocketAddr, ctx: Context, guard: Guard) -> Result<SocketAddr, WebError> {
    let loopback = listen.ip().is_loopback();
    if !loopback && !guard.enabled() {
        return Err(WebError::NeedsToken(listen));
    }
    let bind_err = |source| WebError::Bind {
        addr: listen,
        source,
    };
    let listener = TcpListener::bind(listen).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let page = Page {
        ctx,
        guard,
        loopback,
    };
    tokio::spawn(accept_loop(listener, page));
    Ok(addr)
}

async fn accept_loop(listener: TcpListener, page: Page) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let conn = match listener.accept().await {
            Ok((c, _)) => c,
            Err(e) => {
                tracing::warn!(error = %e, "status page accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let page = page.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(http::CONNECTION_TIMEOUT, answer(conn, &page)).await;
            drop(permit);
        });
    }
}

async fn answer(mut conn: TcpStream, page: &Page) {
    let Some(req) = http::read_request(&mut conn).await else {
        return;
    };
    let head_only = req.method == "HEAD";
    let reply = respond(&req, page);
    secured(reply).send(&mut conn, head_only).await;
}

/// The headers every answer carries.
fn secured(r: Response) -> Response {
    r.with("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .with("X-Content-Type-Options", "nosniff")
        .with("X-Frame-Options", "DENY")
        .with("Referrer-Policy", "no-referrer")
        .with("Cross-Origin-Resource-Policy", "same-origin")
        .with("Cache-Control", "no-store")
}

/// Routes one request (auth first, then the path).
fn respond(req: &Request, page: &Page) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text("405 Method Not Allowed", "the status page is read-only")
            .with("Allow", "GET, HEAD");
    }
    if let Some(refusal) = authorize(req, page) {
        return refusal;
    }
    match req.path() {
        "/" | "/index.html" => Response::new("200 OK", "text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => Response::new("200 OK", "text/javascript; charset=utf-8", APP_JS),
        "/style.css" => Response::new("200 OK", "text/css; charset=utf-8", STYLE_CSS),
        "/api/status" => json(&status::status(&page.ctx)),
        "/api/insights" => json(&insights::insights(&page.ctx)),
        "/api/sizes" => {
            match status::SizesQuery::parse(req.query("range"), req.query("max_points")) {
                Ok(q) => json(&status::sizes(&page.ctx, &q)),
                Err(e) => Response::text("400 Bad Request", &e),
            }
        }
        _ => Response::text("404 Not Found", "not found"),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => Response::new("200 OK", "application/json", body),
        Err(e) => Response::text("500 Internal Server Error", &e.to_string()),
    }
}

/// `None` when the request may read the page, else the refusal.
fn authorize(req: &Request, page: &Page) -> Option<Response> {
    if !page.guard.enabled() {
        if !page.loopback {
            // [auth] was turned off by a reload while the page listens off loopback.
            return Some(Response::text(
                "403 Forbidden",
                "the status page is off loopback and [auth] is disabled",
            ));
        }
        if !req.header("host").is_none_or(host_is_local) {
            return Some(Response::text(
                "421 Misdirected Request",
                "without [auth] the status page answers only requests to localhost or an IP address",
            ));
        }
        return None;
    }
    let presented = req.header("authorization").and_then(credential);
    match page.guard.check(presented.as_deref(), Scope::Admin) {
        Ok(()) => None,
        Err(s) if s.code() == tonic::Code::PermissionDenied => Some(Response::text(
            "403 Forbidden",
            "the status page needs the admin token",
        )),
        Err(_) => Some(
            Response::text("401 Unauthorized", "the status page needs the admin token").with(
                "WWW-Authenticate",
                "Basic realm=\"audiencesync\", charset=\"UTF-8\"",
            ),
        ),
    }
}

/// The token in an `Authorization` header: `Bearer <token>`, or `Basic` with the token as
/// password (the user name is ignored).
fn credential(value: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.as_bytes().to_vec());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let colon = decoded.iter().position(|b| *b == b':')?;
        return Some(decoded[colon + 1..].to_vec());
    }
    None
}

/// `localhost` (or a name under it) or an IP address, with or without a port.
fn host_is_local(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_basic_or_bearer() {
        let basic = base64::engine::general_purpose::STANDARD.encode("admin:tok:en-123");
        assert_eq!(
            credential(format!("Basic {basic}").as_bytes()),
            Some(b"tok:en-123".to_vec())
        );
        assert_eq!(credential(b"bearer  abc "), Some(b"abc".to_vec()));
        assert_eq!(credential(b"Basic !!!"), None);
        assert_eq!(credential(b"Digest x"), None);
        assert_eq!(credential(b"Bearer"), None);
    }

    #[test]
    fn only_local_hosts_without_a_token() {
        for ok in [
            "localhost",
            "LOCALHOST:9466",
            "app.localhost:1",
            "127.0.0.1:9466",
            "10.0.0.5",
            "[::1]:9466",
        ] {
            assert!(host_is_local(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "attacker.example:9466",
            "localhost.example.com",
            "[nope]:1",
            "",
        ] {
            assert!(!host_is_local(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn assets_reference_only_their_own_files() {
        assert!(INDEX_HTML.contains("src=\"/app.js\""));
        assert!(INDEX_HTML.contains("href=\"/style.css\""));
        // No inline script or style: the CSP would block them.
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style="));
        // Nothing from elsewhere (the SVG namespace is a name, not a fetch).
        let js = APP_JS.replace("'http://www.w3.org/2000/svg'", "");
        for text in [INDEX_HTML, &js, STYLE_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("url("));
        }
    }
}
