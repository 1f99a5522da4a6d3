//! Test harness: runs the real `audiencesync` binary on a loopback port with its own sled
//! directory and log file, and talks to it over gRPC.
#![allow(dead_code)]

pub mod arbitrary;
pub mod population;
pub mod workload;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use audiencesync::proto::v1;
use audiencesync::proto::v1::admin_service_client::AdminServiceClient;
use audiencesync::proto::v1::audience_service_client::AudienceServiceClient;
use audiencesync::proto::v1::ingest_service_client::IngestServiceClient;
use tonic::transport::Channel;

/// How a start went: running, or refused with this exit code.
pub enum StartOutcome {
    Running(Daemon),
    Refused(i32),
}

/// A running daemon.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The Prometheus endpoint, when `[metrics]` is enabled.
    pub metrics: Option<SocketAddr>,
    /// The status page, when `[web]` is enabled.
    pub web: Option<SocketAddr>,
    pub dir: PathBuf,
    pub log: PathBuf,
    /// Every line the daemon printed on stdout so far.
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts the daemon with data in `dir/data`, appending `extra_toml` to a minimal config.
    pub fn start(dir: &Path, extra_toml: &str) -> Self {
        Self::start_env(dir, extra_toml, &[])
    }

    pub fn start_env(dir: &Path, extra_toml: &str, env: &[(&str, &str)]) -> Self {
        match Self::try_start_env(dir, extra_toml, env) {
            Ok(d) => d,
            Err((status, log)) => panic!("daemon did not start ({status}); log:\n{log}"),
        }
    }

    fn try_start_env(
        dir: &Path,
        extra_toml: &str,
        env: &[(&str, &str)],
    ) -> Result<Self, (ExitStatus, String)> {
        let cfg = write_config(dir, extra_toml);
        let log = dir.join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_audiencesync"));
        cmd.arg("serve")
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(log_file)
            .env("RUST_LOG", "debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn audiencesync");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let metrics = std::sync::Arc::new(std::sync::Mutex::new(None::<SocketAddr>));
        let metrics_seen = metrics.clone();
        let web = std::sync::Arc::new(std::sync::Mutex::new(None::<SocketAddr>));
        let web_seen = web.clone();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines_seen = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut l) = lines_seen.lock() {
                    l.push(line.clone());
                }
                // The metrics and page lines come first, so they are known once the listen
                // line arrives.
                if let Some(addr) = line.strip_prefix("audiencesync metrics on ") {
                    if let Ok(mut m) = metrics_seen.lock() {
                        *m = addr.trim().parse().ok();
                    }
                }
                if let Some(url) = line.strip_prefix("audiencesync status page on http://") {
                    if let Ok(mut w) = web_seen.lock() {
                        *w = url.trim().trim_end_matches('/').parse().ok();
                    }
                }
                if let Some(addr) = line.strip_prefix("audiencesync listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                // Exited (stdout closed) or hung: either way it did not start. Let an exiting
                // process finish writing its error first.
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let status = child.wait().expect("wait");
                return Err((status, std::fs::read_to_string(&log).unwrap_or_default()));
            }
        };
        let metrics = metrics.lock().ok().and_then(|m| *m);
        let web = web.lock().ok().and_then(|w| *w);
        Ok(Self {
            child: Some(child),
            addr,
            metrics,
            web,
            dir: dir.to_path_buf(),
            log,
            stdout: lines,
        })
    }

    /// Starts the daemon if it will; otherwise the exit status and its log (stderr).
    pub fn start_failing_or_running(dir: &Path, extra_toml: &str) -> (StartOutcome, String) {
        match Self::try_start_env(dir, extra_toml, &[]) {
            Ok(d) => (StartOutcome::Running(d), String::new()),
            Err((status, log)) => (StartOutcome::Refused(status.code().unwrap_or(-1)), log),
        }
    }

    /// Waits up to `secs` for a stdout line containing `needle` (e.g. a crash point's
    /// `failpoint NAME reached`); false if it never came.
    pub async fn wait_stdout(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.stdout_has(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Whether the daemon printed a line containing `needle`.
    pub fn stdout_has(&self, needle: &str) -> bool {
        self.stdout
            .lock()
            .map(|l| l.iter().any(|x| x.contains(needle)))
            .unwrap_or(false)
    }

    /// The daemon's resident set size in KiB, from `/proc/<pid>/status`.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Whether the process is still running (not exited, not a zombie we reaped).
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Runs `serve` on a config expected to be refused; returns the exit status and stderr.
    pub fn start_failing(dir: &Path, extra_toml: &str) -> (ExitStatus, String) {
        let cfg = write_config(dir, extra_toml);
        let out = Command::new(env!("CARGO_BIN_EXE_audiencesync"))
            .arg("serve")
            .arg("--config")
            .arg(&cfg)
            .output()
            .expect("run audiencesync");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Sends SIGTERM without waiting (see [`Daemon::wait_exit`]).
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
    }

    /// One `GET /metrics` over a plain TCP socket.
    pub fn scrape(&self) -> String {
        use std::io::{Read, Write};
        let addr = self.metrics.expect("metrics enabled");
        let mut conn = std::net::TcpStream::connect(addr).expect("connect metrics");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut out = String::new();
        conn.read_to_string(&mut out).expect("read metrics");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out
    }

    /// One request to the status page over a plain TCP socket: (status code, headers, body).
    pub fn http_get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        http_get(self.web.expect("status page enabled"), path, headers)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn ingest(&self) -> IngestServiceClient<Channel> {
        IngestServiceClient::new(self.channel().await)
    }

    pub async fn audience(&self) -> AudienceServiceClient<Channel> {
        AudienceServiceClient::new(self.channel().await)
    }

    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }

    /// Every member of `audience`, streamed in pages of at most `page_size`.
    pub async fn members(&self, audience: &str, page_size: u32) -> Vec<v1::Member> {
        let mut out = Vec::new();
        let mut stream = self
            .audience()
            .await
            .stream_members(v1::StreamMembersRequest {
                audience: audience.into(),
                page_size,
                after_customer_id: String::new(),
                eligible_only: false,
            })
            .await
            .expect("stream_members")
            .into_inner();
        while let Some(page) = stream.message().await.expect("page") {
            assert!(page.members.len() <= page_size as usize);
            out.extend(page.members);
        }
        out
    }

    /// The sync state of every destination × audience (`AdminService.GetSyncStatus`).
    pub async fn sync_states(&self) -> Vec<v1::SyncState> {
        self.admin()
            .await
            .get_sync_status(v1::GetSyncStatusRequest::default())
            .await
            .expect("status")
            .into_inner()
            .states
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGTERM and wait (bounded) for a clean exit.
    pub fn stop(self) -> ExitStatus {
        self.sigterm();
        self.wait_exit()
    }

    /// Waits (bounded) for the daemon to exit after a signal.
    pub fn wait_exit(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes `dir/audiencesync.toml`: loopback port 0 for gRPC, metrics and the status page,
/// sled in `dir/data`,
/// then `extra_toml` (which continues the `[storage]` table unless it opens another).
pub fn write_config(dir: &Path, extra_toml: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("test dir");
    let cfg = dir.join("audiencesync.toml");
    let data = dir.join("data");
    let metrics = if extra_toml.contains("[metrics]") {
        ""
    } else {
        "[metrics]\nlisten = \"127.0.0.1:0\"\n"
    };
    let web = if extra_toml.contains("[web]") {
        ""
    } else {
        "[web]\nlisten = \"127.0.0.1:0\"\n"
    };
    let server = if extra_toml.contains("[server]") {
        String::new()
    } else {
        "[server]\nlisten = \"127.0.0.1:0\"\n".to_string()
    };
    std::fs::write(
        &cfg,
        format!(
            "{metrics}{web}{server}[storage]\ndata_dir = \"{}\"\n{extra_toml}\n",
            data.display()
        ),
    )
    .expect("write config");
    cfg
}

/// Adds `authorization: Bearer <token>` to a request.
pub fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata value"),
    );
    req
}

pub fn ts(secs: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    })
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub const DAY: i64 = 86_400;

pub fn ev(id: &str, at: i64, kind: v1::event::Kind) -> v1::Event {
    v1::Event {
        event_id: id.to_string(),
        occurred_at: ts(at),
        kind: Some(kind),
    }
}

pub fn customer(id: &str, email: &str, phone: &str, granted: bool) -> v1::event::Kind {
    customer_named(
        id,
        email,
        phone,
        granted,
        ("Mary-Jane", "O'Connor", "94105"),
    )
}

/// A customer upsert with its own (first name, last name, postal code), US, both consents set.
pub fn customer_named(
    id: &str,
    email: &str,
    phone: &str,
    granted: bool,
    (first, last, postal): (&str, &str, &str),
) -> v1::event::Kind {
    let consent = if granted {
        v1::ConsentStatus::Granted
    } else {
        v1::ConsentStatus::Denied
    } as i32;
    v1::event::Kind::CustomerUpserted(v1::CustomerUpserted {
        customer_id: id.into(),
        email: Some(email.into()),
        phone: Some(phone.into()),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        country: Some("US".into()),
        postal_code: Some(postal.into()),
        registered_at: ts(1_600_000_000),
        ad_user_data: Some(consent),
        ad_personalization: Some(consent),
    })
}

pub fn order(id: &str, cust: &str, cents: i64, currency: &str) -> v1::event::Kind {
    v1::event::Kind::OrderPlaced(v1::OrderPlaced {
        order_id: id.into(),
        customer_id: cust.into(),
        total: Some(v1::Money {
            amount_minor: cents,
            currency: currency.into(),
        }),
        item_count: 2,
    })
}

pub fn refund(order_id: &str, cents: i64, full: bool) -> v1::event::Kind {
    v1::event::Kind::OrderRefunded(v1::OrderRefunded {
        order_id: order_id.into(),
        amount_minor: cents,
        full,
    })
}

pub fn cart(id: &str, cust: &str, items: u32) -> v1::event::Kind {
    v1::event::Kind::CartUpdated(v1::CartUpdated {
        cart_id: id.into(),
        customer_id: cust.into(),
        item_count: items,
        value: Some(v1::Money {
            amount_minor: 1999,
            currency: "USD".into(),
        }),
    })
}

pub fn checkout(cart_id: &str, order_id: &str) -> v1::event::Kind {
    v1::event::Kind::CartCheckedOut(v1::CartCheckedOut {
        cart_id: cart_id.into(),
        order_id: order_id.into(),
    })
}

pub fn erase(cust: &str) -> v1::event::Kind {
    v1::event::Kind::CustomerErased(v1::CustomerErased {
        customer_id: cust.into(),
    })
}

pub fn consent(cust: &str, granted: bool) -> v1::event::Kind {
    let c = if granted {
        v1::ConsentStatus::Granted
    } else {
        v1::ConsentStatus::Denied
    } as i32;
    v1::event::Kind::ConsentChanged(v1::ConsentChanged {
        customer_id: cust.into(),
        ad_user_data: Some(c),
        ad_personalization: Some(c),
    })
}

/// Streams batches over one StreamEvents call and returns the acks, in order.
pub async fn stream(d: &Daemon, batches: Vec<Vec<v1::Event>>) -> Vec<v1::BatchAck> {
    let mut client = d.ingest().await;
    let reqs: Vec<v1::EventBatch> = batches
        .into_iter()
        .enumerate()
        .map(|(i, events)| v1::EventBatch {
            batch_id: i as u64 + 1,
            events,
        })
        .collect();
    let n = reqs.len();
    let mut acks = client
        .stream_events(tokio_stream::iter(reqs))
        .await
        .expect("stream_events")
        .into_inner();
    let mut out = Vec::new();
    while let Some(a) = acks.message().await.expect("ack") {
        out.push(a);
    }
    assert_eq!(out.len(), n, "one ack per batch");
    out
}

/// Every customer's stored facts, sorted by id, for comparing two daemons.
pub async fn facts_of(d: &Daemon, ids: &[String]) -> Vec<v1::CustomerFacts> {
    let mut client = d.audience().await;
    let mut out = Vec::new();
    for id in ids {
        let f = client
            .get_customer(v1::GetCustomerRequest {
                customer_id: id.clone(),
            })
            .await
            .map(|r| r.into_inner());
        match f {
            Ok(f) => out.push(f),
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => panic!("get_customer {id}: {s}"),
        }
    }
    out
}

pub async fn stats(d: &Daemon) -> v1::StoreStats {
    d.admin()
        .await
        .get_store_stats(v1::GetStoreStatsRequest {})
        .await
        .expect("stats")
        .into_inner()
}

/// One HTTP/1.1 request over a plain TCP socket: (status code, head, body).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    http_request(addr, "GET", path, headers)
}

pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    conn.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}
