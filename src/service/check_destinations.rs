//! `audiencesync destinations check`: builds the sync workers from a config, as `serve` does,
//! and asks every destination to check each list without changing anything.

use std::path::Path;

/// A destination check that could not run or did not pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Config problems.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Destination setup problems.
    #[error(transparent)]
    Setup(#[from] crate::sync::SetupError),
    /// Some destination checks failed.
    #[error("{0} destination check(s) failed")]
    Failed(usize),
}

/// `audiencesync destinations check`: credentials and list ids of every destination, without
/// changing anything (Google `validateOnly`, Meta a read of the audience, CSV a write probe).
pub async fn run(config: &Path) -> Result<(), CheckError> {
    let cfg = super::assemble::load(config)?;
    let tmp = std::env::temp_dir().join(format!("audiencesync-check-{}", std::process::id()));
    let store = crate::ledger::store::Store::open(&crate::config::StorageConfig {
        data_dir: tmp.clone(),
        fsync: false,
        ..Default::default()
    })
    .map_err(|source| crate::sync::SetupError::Store { index: 0, source })?;
    let feed = crate::writer::ChangeFeed::new(cfg.destinations.len());
    let specs = crate::sync::build_workers(&cfg, &store, &feed)?;
    let mut failed = 0;
    for spec in &specs {
        for list in &spec.lists {
            match spec.dest.check(list).await {
                Ok(()) => println!(
                    "ok      {} / {} ({})",
                    spec.name, list.audience, list.list_id
                ),
                Err(e) => {
                    failed += 1;
                    println!(
                        "FAILED  {} / {} ({}): {e}",
                        spec.name, list.audience, list.list_id
                    );
                    match &e {
                        crate::sync::dest::PushError::Permanent { advice, .. } => {
                            println!("        fix: {advice}");
                        }
                        crate::sync::dest::PushError::TokenExpired => {
                            println!("        fix: the access token was refused: renew the credential file");
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    drop(specs);
    drop(store);
    let _ = std::fs::remove_dir_all(&tmp);
    if failed > 0 {
        return Err(CheckError::Failed(failed));
    }
    Ok(())
}
