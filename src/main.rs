//! The `audiencesync` binary: command-line parsing and wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use audiencesync::api::{self, Context};
use audiencesync::clock::{Clock, ManualClock, SharedClock, SystemClock};
use audiencesync::config::ClockMode;
use audiencesync::feed;
use audiencesync::ledger::store::Store;
use audiencesync::service;
use audiencesync::sync::handle::SyncEngine;
use audiencesync::writer::{ChangeFeed, Writer, WriterOptions};

/// Remarketing audiences from your shop's events, synced to ad networks as hashed lists.
#[derive(Debug, Parser)]
#[command(name = "audiencesync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Stream synthetic shop events to a running daemon (demo data and load generation).
    Feed(feed::FeedArgs),
    /// Import the shop's history (JSON Lines, Shopify orders export, mapped CSV) into a running daemon.
    Import(audiencesync::import::ImportArgs),
    /// Show the sync state of every destination × audience of a running daemon.
    Status {
        #[command(flatten)]
        target: audiencesync::client::Target,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Did the remarketing work? Outcomes per audience (pushed vs holdout, lift with 95%
    /// intervals) and the shop's retention metrics, from a running daemon.
    Report {
        #[command(flatten)]
        target: audiencesync::client::Target,
        /// Only this audience's outcomes (no retention tables).
        #[arg(long)]
        audience: Option<String>,
        /// Print JSON (the InsightService messages) instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running daemon to resync (delta by default; `--full` replaces the remote list).
    Resync {
        #[command(flatten)]
        target: audiencesync::client::Target,
        /// Only this destination.
        #[arg(long)]
        destination: Option<String>,
        /// Only this audience.
        #[arg(long)]
        audience: Option<String>,
        /// Replace the remote list (Google removeAll + ingest, Meta usersreplace).
        #[arg(long)]
        full: bool,
    },
    /// Destination commands.
    Destinations {
        #[command(subcommand)]
        command: DestinationsCommand,
    },
    /// Validate a config file and exit.
    CheckConfig {
        /// The file to check.
        #[arg(long, short)]
        config: PathBuf,
        /// Where relative credential files are (the unit's `LoadCredential=` sources, e.g.
        /// /etc/audiencesync/credentials); default `$CREDENTIALS_DIRECTORY`. Without either
        /// they are not checked, and the output says so.
        #[arg(long)]
        credentials_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum DestinationsCommand {
    /// Verify credentials and list ids without changing anything.
    Check {
        /// The config naming the destinations.
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Config file; without it the bundled defaults are used (sled in ./data, 127.0.0.1:50051).
    #[arg(long, short, env = "AUDIENCESYNC_CONFIG")]
    config: Option<PathBuf>,
    /// Override `server.listen` (port 0 picks a free port; the bound address is printed).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Override `storage.data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One TLS crypto provider for the whole process (gRPC TLS and the ad-network clients).
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Command::CheckConfig {
        credentials_dir: Some(dir),
        ..
    } = &cli.command
    {
        // Before the runtime starts its threads: read where systemd would put it.
        std::env::set_var("CREDENTIALS_DIRECTORY", dir);
    }
    if let Command::Import(args) = &cli.command {
        // Before the runtime starts its threads, which inherit it.
        audiencesync::import::lower_priority(args.nice);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Feed(args) => {
            let json = args.json;
            let report = runtime.block_on(feed::run(args))?;
            feed::print_report(&report, json);
            Ok(())
        }
        Command::Import(args) => {
            let report = runtime.block_on(audiencesync::import::run(args))?;
            report.print();
            Ok(())
        }
        Command::Status { target, json } => {
            Ok(runtime.block_on(audiencesync::cli::status(&target, json))?)
        }
        Command::Report {
            target,
            audience,
            json,
        } => Ok(runtime.block_on(audiencesync::cli::report(&target, audience, json))?),
        Command::Resync {
            target,
            destination,
            audience,
            full,
        } => Ok(runtime.block_on(audiencesync::cli::resync(
            &target,
            destination,
            audience,
            full,
        ))?),
        Command::Destinations {
            command: DestinationsCommand::Check { config },
        } => Ok(runtime.block_on(service::check_destinations::run(&config))?),
        Command::CheckConfig { config, .. } => {
            let cfg = service::assemble::load(&config)?;
            let checked = service::preflight::run(&cfg)?;
            println!("{}: ok", config.display());
            if !checked.unchecked.is_empty() {
                println!(
                    "not checked: {} (relative credential files are read from $CREDENTIALS_DIRECTORY, \
                     which systemd sets inside the unit; pass --credentials-dir DIR to check them)",
                    checked.unchecked.join(", ")
                );
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = match &args.config {
        Some(path) => service::assemble::load(path)?,
        None => service::assemble::bundled()?,
    };
    if let Some(listen) = args.listen {
        cfg.server.listen = listen;
    }
    if let Some(dir) = args.data_dir.clone() {
        cfg.storage.data_dir = dir;
    }
    // Refused before anything is written (the data directory included).
    service::preflight::run(&cfg)?;
    audiencesync::telemetry::init(&cfg.log);
    // Crash points exist only in test builds; a release binary ignores FAILPOINTS.
    let _failpoints = audiencesync::failpoint::setup();

    let (clock, manual_clock): (SharedClock, _) = match cfg.clock.mode {
        ClockMode::System => (Arc::new(SystemClock), None),
        ClockMode::Manual => {
            let manual = ManualClock::new(SystemClock.now());
            tracing::warn!("manual clock: time moves only through AdminService.SetClock");
            (Arc::new(manual.clone()), Some(manual))
        }
    };
    let store = Store::open(&cfg.storage)?;
    let feed = ChangeFeed::new(cfg.destinations.len());
    let specs = audiencesync::sync::build_workers(&cfg, &store, &feed)?;
    let mut opts = WriterOptions::from_config(&cfg)?;
    opts.feed = feed.clone();
    let (writer, writer_thread) = Writer::start(store.clone(), opts, clock.clone())
        .with_context(|| format!("recovering the store in {}", store.dir().display()))?;
    let jobs = audiencesync::sync::handle::JobCounter::new(store.open_tree("sync")?);
    let sync = Arc::new(SyncEngine::start(
        specs,
        writer.clone(),
        clock.clone(),
        jobs,
    ));
    let mut ctx = Context::new(&cfg, writer.clone(), clock, manual_clock)?;
    ctx.sync = Some(sync.clone());
    let guard = api::auth::Guard::from_config(&cfg.auth, cfg.server.listen)?;
    let tls = api::tls::server_config(&cfg.tls)?;
    if let Some(metrics_addr) =
        service::metrics::start(&cfg.metrics, writer.clone(), Some(sync.status.clone())).await?
    {
        tracing::info!(%metrics_addr, "metrics endpoint serving /metrics");
        println!("audiencesync metrics on {metrics_addr}");
    }
    if let Some(listen) = cfg.web.listen {
        let web_addr = audiencesync::web::start(listen, ctx.clone(), guard.clone()).await?;
        tracing::info!(%web_addr, auth = guard.enabled(), "status page serving");
        println!("audiencesync status page on http://{web_addr}/");
    }

    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("binding {}", cfg.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        data_dir = %cfg.storage.data_dir.display(),
        auth = guard.enabled(),
        tls = tls.is_some(),
        mtls = api::tls::mutual(&cfg.tls),
        "audiencesync serving"
    );
    // Every signal the daemon handles is registered before it reports ready (see StopSignals).
    let stop_signals = StopSignals::listen()?;
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    // A stable line on stdout for scripts and tests that start the daemon on port 0.
    println!("audiencesync listening on {addr}");
    service::notify::ready();
    service::notify::spawn_watchdog(writer.clone());
    let reloader = service::reload::Reloader {
        path: args.config.clone(),
        listen_override: args.listen,
        data_dir_override: args.data_dir.clone(),
        running: parking_lot::Mutex::new(cfg.clone()),
        ctx: ctx.clone(),
        guard: guard.clone(),
        sync: sync.clone(),
        store: store.clone(),
        feed,
    };
    tokio::spawn(reloader.run_on_sighup(hup));

    // On SIGTERM/SIGINT the server stops accepting and lets in-flight calls finish, but only
    // for SHUTDOWN_GRACE: a client that keeps its connection open cannot hold the exit hostage.
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = stopping.clone();
    let opts = api::server::ServeOptions {
        max_message_bytes: cfg.server.max_message_bytes,
        guard,
        tls,
    };
    let server = api::server::serve(listener, ctx, opts, async move {
        stop_signals.recv().await;
        service::notify::stopping();
        signalled.notify_one();
    });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight calls did not finish in time; stopping anyway"),
    }
    sync.shutdown();
    tracing::info!("gRPC server stopped; writing final checkpoint");
    writer.shutdown().await;
    drop(writer);
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .ok();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// How long in-flight calls may run after a stop signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// SIGTERM and SIGINT, listened for before the daemon says it is ready: a signal that came
/// between READY and a later registration would kill the process with the default action.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    /// Resolves on SIGTERM or SIGINT.
    async fn recv(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received"),
            _ = self.int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
