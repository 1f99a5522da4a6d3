//! The one place a configuration is assembled: the file parsed into `config`'s plain data,
//! then every section checked by the part that owns it, in a fixed order so the first error
//! reported is always the same. `serve`, `check-config`, `destinations check` and the SIGHUP
//! reload all come through here.

use std::net::SocketAddr;
use std::path::Path;

use crate::audience::params::AudienceParams;
use crate::config::{AuthConfig, Config, ConfigError, MetricsConfig, TlsConfig, WebConfig};

/// Parses and validates TOML text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let cfg = Config::from_toml(text)?;
    validate(&cfg)?;
    Ok(cfg)
}

/// Reads, parses and validates a file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let cfg = Config::read(path)?;
    validate(&cfg)?;
    Ok(cfg)
}

/// The bundled default configuration, validated.
pub fn bundled() -> Result<Config, ConfigError> {
    parse(crate::config::BUNDLED)
}

/// Runs every section's checks: the daemon's own limits, ingest's phone region, the audience
/// parameters, the destinations against those audiences, the revenue currencies, then the
/// service sections against `[server]`.
pub fn validate(cfg: &Config) -> Result<(), ConfigError> {
    cfg.server.validate()?;
    cfg.storage.validate()?;
    crate::ingest::validate_config(&cfg.ingest)?;
    let params = AudienceParams::from_config(&cfg.audiences)?;
    crate::sync::validate::destinations(&cfg.destinations, &params.audience_names())?;
    crate::money::CurrencyTable::from_config(&cfg.revenue)?;
    check_service(cfg.server.listen, &cfg.metrics, &cfg.auth, &cfg.tls)?;
    check_web(&cfg.web, cfg.server.listen, &cfg.metrics, &cfg.auth)
}

/// Checks `[web]`: off loopback the page is only served behind the admin token, so `[auth]`
/// must be on; and it needs a port of its own.
pub fn check_web(
    web: &WebConfig,
    server_listen: SocketAddr,
    metrics: &MetricsConfig,
    auth: &AuthConfig,
) -> Result<(), ConfigError> {
    let Some(listen) = web.listen else {
        return Ok(());
    };
    if listen.port() != 0
        && (listen == server_listen || (metrics.enabled && listen == metrics.listen))
    {
        return Err(ConfigError::invalid(
            "web.listen",
            "is the same address as server.listen or metrics.listen",
        ));
    }
    if !listen.ip().is_loopback() && !auth.enabled {
        return Err(ConfigError::invalid(
            "web.listen",
            "is not a loopback address, and off loopback the page needs the admin token: \
                 enable [auth] (with admin_token_file), or keep the page on 127.0.0.1",
        ));
    }
    Ok(())
}

/// Checks `[metrics]`, `[auth]` and `[tls]` for consistency (file contents are read at
/// `serve` time).
fn check_service(
    server_listen: SocketAddr,
    metrics: &MetricsConfig,
    auth: &AuthConfig,
    tls: &TlsConfig,
) -> Result<(), ConfigError> {
    if metrics.enabled && metrics.listen.port() != 0 && metrics.listen == server_listen {
        return Err(ConfigError::invalid(
            "metrics.listen",
            "is the same address as server.listen",
        ));
    }
    if auth.enabled {
        for (key, file) in [
            ("auth.ingest_token_file", &auth.ingest_token_file),
            ("auth.query_token_file", &auth.query_token_file),
            ("auth.admin_token_file", &auth.admin_token_file),
        ] {
            if file.as_ref().is_none_or(|f| f.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(
                    key,
                    "required when auth.enabled = true",
                ));
            }
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => {
            return Err(ConfigError::invalid(
                "tls.key_file",
                "required with tls.cert_file",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "tls.cert_file",
                "required with tls.key_file",
            ))
        }
        _ => {}
    }
    if tls.client_ca_file.is_some() && tls.cert_file.is_none() {
        return Err(ConfigError::invalid(
            "tls.client_ca_file",
            "mutual TLS needs tls.cert_file and tls.key_file too",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{bundled, parse};
    use crate::audience::params::AudienceParams;

    #[test]
    fn auth_needs_every_token_file() {
        let err = parse("[auth]\nenabled = true\ningest_token_file = \"i\"\n").unwrap_err();
        assert!(err.to_string().contains("auth.query_token_file"), "{err}");
    }

    #[test]
    fn metrics_and_grpc_need_different_ports() {
        let err = parse(
            "[server]\nlisten = \"127.0.0.1:9000\"\n[metrics]\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("metrics.listen"), "{err}");
    }

    #[test]
    fn tls_needs_cert_and_key() {
        let err = parse("[tls]\ncert_file = \"c.pem\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.key_file"), "{err}");
        let err = parse("[tls]\nclient_ca_file = \"ca.pem\"\n").unwrap_err();
        assert!(err.to_string().contains("tls.client_ca_file"), "{err}");
    }

    #[test]
    fn web_page_defaults_to_loopback_and_can_be_disabled() {
        let cfg = bundled().expect("bundled");
        let listen = cfg.web.listen.expect("page on by default");
        assert!(listen.ip().is_loopback());
        let cfg = parse("[web]\nlisten = \"\"\n").expect("disabled");
        assert!(cfg.web.listen.is_none());
        let err = parse("[web]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn web_page_off_loopback_needs_auth() {
        let err = parse("[web]\nlisten = \"0.0.0.0:9466\"\n").unwrap_err();
        assert!(err.to_string().contains("web.listen"), "{err}");
        assert!(err.to_string().contains("admin"), "{err}");
        let cfg = parse(
            "[web]\nlisten = \"0.0.0.0:9466\"\n[auth]\nenabled = true\n\
             ingest_token_file = \"i\"\nquery_token_file = \"q\"\nadmin_token_file = \"a\"\n",
        )
        .expect("with auth");
        assert!(cfg.web.listen.is_some());
        let err = parse("[web]\nlisten = \"127.0.0.1:9464\"\n").unwrap_err();
        assert!(err.to_string().contains("web.listen"), "{err}");
    }

    #[test]
    fn size_history_keys_are_checked() {
        let err = parse("[storage]\nsize_sample_interval = \"0s\"\n").unwrap_err();
        assert!(
            err.to_string().contains("storage.size_sample_interval"),
            "{err}"
        );
        let err =
            parse("[storage]\nsize_sample_interval = \"1h\"\nsize_history_retention = \"5m\"\n")
                .unwrap_err();
        assert!(
            err.to_string().contains("storage.size_history_retention"),
            "{err}"
        );
    }

    #[test]
    fn defaults_are_metrics_on_loopback_and_no_auth() {
        let cfg = bundled().expect("bundled");
        assert!(cfg.metrics.enabled);
        assert!(cfg.metrics.listen.ip().is_loopback());
        assert!(!cfg.auth.enabled);
        assert!(cfg.tls.cert_file.is_none());
    }

    #[test]
    fn bundled_config_is_valid() {
        let cfg = bundled().expect("bundled config parses");
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:50051");
    }

    #[test]
    fn holdout_and_outcome_keys_are_validated_by_name() {
        let cfg = parse(
            "[audiences]\nholdout = { vip = \"0.10\", lapsed_90 = \"0\" }\n\
             outcome_windows = { cart_abandoners = \"7d\" }\n",
        )
        .expect("valid");
        let p = AudienceParams::from_config(&cfg.audiences).expect("rules");
        use crate::audience::Audience;
        assert_eq!(p.holdout[Audience::Vip.index()], (10, 100));
        assert_eq!(p.holdout[Audience::Lapsed1.index()], (0, 1));
        assert_eq!(
            p.outcome_window_secs[Audience::CartAbandoners.index()],
            7 * 86_400
        );
        assert_eq!(p.outcome_window_secs[Audience::Vip.index()], 30 * 86_400);
        for (toml, key) in [
            ("holdout = { nope = \"0.1\" }", "audiences.holdout.nope"),
            ("holdout = { vip = \"1\" }", "audiences.holdout.vip"),
            ("holdout = { vip = \"-0.1\" }", "audiences.holdout.vip"),
            ("holdout = { vip = \"ten\" }", "audiences.holdout.vip"),
            (
                "outcome_windows = { vip = \"soon\" }",
                "audiences.outcome_windows.vip",
            ),
            (
                "outcome_windows = { lapsed_91 = \"1d\" }",
                "audiences.outcome_windows.lapsed_91",
            ),
            ("outcome_retention = \"20d\"", "audiences.outcome_retention"),
        ] {
            let err = parse(&format!("[audiences]\n{toml}\n")).unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        // Names follow the configured tiers.
        parse(
            "[audiences]\nlapsed_tiers = [\"60d\", \"120d\", \"240d\"]\nholdout = { lapsed_60 = \"0.2\" }\n",
        )
        .expect("lapsed_60 exists under these tiers");
    }

    #[test]
    fn bad_value_is_named() {
        let err = parse("[revenue]\ncurrency = \"XYZ\"\n").unwrap_err();
        assert!(err.to_string().contains("revenue.currency"), "{err}");
        let err = parse("[revenue.rates]\nEUR = \"abc\"\n").unwrap_err();
        assert!(err.to_string().contains("revenue.rates.EUR"), "{err}");
        let err = parse("[storage]\ncheckpoint_interval = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("checkpoint_interval"), "{err}");
        let err = parse("[ingest]\ndefault_phone_region = \"ZZ\"\n").unwrap_err();
        assert!(
            err.to_string().contains("ingest.default_phone_region"),
            "{err}"
        );
    }
}
