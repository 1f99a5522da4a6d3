//! The small HTTP/1.1 server side the metrics endpoint and the status page share: one request
//! per connection (`Connection: close`), GET-style requests only (a body is never read), a
//! bounded request head. Enough for scrapers and a browser, with nothing to configure.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head we read; browsers send a few hundred bytes to a couple of KiB.
pub const MAX_HEAD: usize = 16 * 1024;

/// How long a client may take to send its request and read the answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// Header names lower-cased, values as sent (trimmed).
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// Parses a request head (up to and including the blank line). `None` if it is not
    /// HTTP/1.x.
    pub fn parse(head: &[u8]) -> Option<Self> {
        let text = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
        let mut lines = text.split(|b| *b == b'\n').map(|l| l.trim_ascii_end());
        let first = std::str::from_utf8(lines.next()?).ok()?;
        let mut parts = first.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if !version.starts_with("HTTP/1.") || parts.next().is_some() || method.is_empty() {
            return None;
        }
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                let colon = l.iter().position(|b| *b == b':')?;
                let name = std::str::from_utf8(&l[..colon]).ok()?.to_ascii_lowercase();
                Some((name, l[colon + 1..].trim_ascii().to_vec()))
            })
            .collect();
        Some(Self {
            method: method.to_string(),
            target: target.to_string(),
            headers,
        })
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The raw value of query parameter `name` (no percent-decoding: our parameters are
    /// plain words and numbers).
    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads one request head; `None` when the client sent something else, too much, or nothing.
pub async fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > MAX_HEAD {
            return None;
        }
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Request::parse(&head[..end])
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status line text after the version, e.g. `200 OK`.
    pub status: &'static str,
    /// Extra headers (`Content-Type`, `Content-Length` and `Connection` are added).
    pub headers: Vec<(&'static str, String)>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body.
    pub fn new(status: &'static str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type,
            body: body.into(),
        }
    }

    /// A short plain-text answer (errors).
    pub fn text(status: &'static str, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Writes the response (without the body for `HEAD`) and closes the connection.
    pub async fn send(&self, conn: &mut TcpStream, head_only: bool) {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let _ = conn.write_all(out.as_bytes()).await;
        if !head_only {
            let _ = conn.write_all(&self.body).await;
        }
        let _ = conn.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_browser_request() {
        let head = b"GET /api/sizes?range=7d&max=10 HTTP/1.1\r\nHost: 127.0.0.1:9466\r\n\
                     Authorization:  Basic eDp5 \r\nAccept: */*\r\n\r\n";
        let r = Request::parse(head).expect("parses");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path(), "/api/sizes");
        assert_eq!(r.query("range"), Some("7d"));
        assert_eq!(r.query("max"), Some("10"));
        assert_eq!(r.query("nope"), None);
        assert_eq!(r.header("host"), Some(&b"127.0.0.1:9466"[..]));
        assert_eq!(r.header("authorization"), Some(&b"Basic eDp5"[..]));
    }

    #[test]
    fn refuses_what_is_not_http1() {
        assert!(Request::parse(b"\x16\x03\x01\x02\x00\r\n\r\n").is_none());
        assert!(Request::parse(b"GET /\r\n\r\n").is_none());
        assert!(Request::parse(b"PRI * HTTP/2.0\r\n\r\n").is_none());
        assert!(Request::parse(b"GET / HTTP/1.0\r\n\r\n").is_some());
    }
}
