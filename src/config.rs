//! Process configuration: settings read from the environment and checked at start.
//!
//! Every setting is validated before anything starts, and a bad one stops the process with a
//! message that names it. In Azure (detected by the App Service variables the Functions host
//! sets), local stand-ins are refused: no plaintext or loopback endpoints and no anonymous access.

use std::collections::HashMap;
use std::time::Duration;

use crate::durabletask::connection::{Authentication, ConnectionString};

/// The variable holding the Durable Task Scheduler connection string.
pub const CONNECTION_STRING_VAR: &str = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING";
/// The variable holding the session pool's management endpoint.
pub const SESSION_POOL_URL_VAR: &str = "SESSION_POOL_URL";
/// The variable choosing the session pool's API contract.
pub const SESSION_POOL_API_VAR: &str = "SESSION_POOL_API";
/// The variable holding how long reviewers have.
pub const APPROVAL_TIMEOUT_VAR: &str = "APPROVAL_TIMEOUT";
/// The variable holding the code's execution time limit.
pub const EXECUTION_TIMEOUT_VAR: &str = "EXECUTION_TIMEOUT";
/// The variable the Functions host sets to the port it forwards to.
pub const PORT_VAR: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

/// The approval timeout when none is set.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// The execution time limit when none is set.
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest execution a session pool allows.
pub const MAX_EXECUTION_TIMEOUT: Duration = Duration::from_secs(220);

/// A setting that is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// Which session-pool API contract the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolApi {
    /// `code/execute?api-version=2024-02-02-preview`, the body wrapped in `properties`.
    Legacy2024,
    /// `executions?api-version=2025-02-02-preview`, top-level fields.
    Executions2025,
}

/// Everything the handler needs, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The port to serve HTTP on.
    pub port: u16,
    /// Where the durable backend is and how to authenticate to it.
    pub connection: ConnectionString,
    /// The session pool's management endpoint.
    pub session_pool_url: reqwest::Url,
    /// The session pool's API contract.
    pub session_pool_api: PoolApi,
    /// How long reviewers have.
    pub approval_timeout: Duration,
    /// The code's execution time limit.
    pub execution_timeout: Duration,
    /// True when running in Azure, where local stand-ins are refused.
    pub in_azure: bool,
    /// Whether the Easy Auth principal headers name the caller. In Azure only App Service
    /// authentication sets them (and strips forged ones), so they count only when it is on;
    /// locally they are trusted, for testing.
    pub trust_principal_headers: bool,
}

/// True when the App Service variables of the Functions host in Azure are present.
pub fn running_in_azure(env: &HashMap<String, String>) -> bool {
    ["WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME"]
        .iter()
        .any(|name| env.get(*name).is_some_and(|value| !value.is_empty()))
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads settings from a map of variables (the environment, or a test's).
    pub fn from_map(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let in_azure = running_in_azure(env);

        let port = match get(PORT_VAR) {
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| invalid(PORT_VAR, format!("`{text}` is not a TCP port")))?,
            None if in_azure => return Err(ConfigError::Missing(PORT_VAR)),
            None => 7071,
        };

        let connection: ConnectionString = get(CONNECTION_STRING_VAR)
            .ok_or(ConfigError::Missing(CONNECTION_STRING_VAR))?
            .parse()
            .map_err(|err| invalid(CONNECTION_STRING_VAR, format!("{err}")))?;

        let pool = get(SESSION_POOL_URL_VAR).ok_or(ConfigError::Missing(SESSION_POOL_URL_VAR))?;
        let session_pool_url = reqwest::Url::parse(pool).map_err(|err| {
            invalid(
                SESSION_POOL_URL_VAR,
                format!("`{pool}` is not a URL: {err}"),
            )
        })?;
        if !matches!(session_pool_url.scheme(), "http" | "https") {
            return Err(invalid(
                SESSION_POOL_URL_VAR,
                "the URL must be http or https",
            ));
        }

        let session_pool_api = match get(SESSION_POOL_API_VAR) {
            None | Some("2025-02-02-preview") => PoolApi::Executions2025,
            Some("2024-02-02-preview") => PoolApi::Legacy2024,
            Some(other) => {
                return Err(invalid(
                    SESSION_POOL_API_VAR,
                    format!("`{other}`: use 2025-02-02-preview or 2024-02-02-preview"),
                ));
            }
        };

        let approval_timeout = match get(APPROVAL_TIMEOUT_VAR) {
            Some(text) => parse_duration(text).map_err(|r| invalid(APPROVAL_TIMEOUT_VAR, r))?,
            None => DEFAULT_APPROVAL_TIMEOUT,
        };
        if approval_timeout < Duration::from_secs(1) {
            return Err(invalid(APPROVAL_TIMEOUT_VAR, "must be at least one second"));
        }
        let execution_timeout = match get(EXECUTION_TIMEOUT_VAR) {
            Some(text) => parse_duration(text).map_err(|r| invalid(EXECUTION_TIMEOUT_VAR, r))?,
            None => DEFAULT_EXECUTION_TIMEOUT,
        };
        if execution_timeout < Duration::from_secs(1) || execution_timeout > MAX_EXECUTION_TIMEOUT {
            return Err(invalid(
                EXECUTION_TIMEOUT_VAR,
                format!("must be 1 to {} seconds", MAX_EXECUTION_TIMEOUT.as_secs()),
            ));
        }

        let auth_enabled =
            get("WEBSITE_AUTH_ENABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let config = Config {
            trust_principal_headers: !in_azure || auth_enabled,
            port,
            connection,
            session_pool_url,
            session_pool_api,
            approval_timeout,
            execution_timeout,
            in_azure,
        };
        if in_azure {
            config.refuse_local_parts()?;
        }
        Ok(config)
    }

    /// In Azure, only the real services will do: no silent fallback to local stand-ins.
    fn refuse_local_parts(&self) -> Result<(), ConfigError> {
        if self.connection.authentication == Authentication::None {
            return Err(invalid(
                CONNECTION_STRING_VAR,
                "Authentication=None is for the local emulator and the embedded task hub; \
                 in Azure use ManagedIdentity",
            ));
        }
        if is_local(&self.connection.endpoint) {
            return Err(invalid(
                CONNECTION_STRING_VAR,
                "the endpoint is local or plaintext; in Azure it must be the scheduler's https endpoint",
            ));
        }
        if is_local(self.session_pool_url.as_str()) {
            return Err(invalid(
                SESSION_POOL_URL_VAR,
                "the URL is local or plaintext; in Azure it must be the session pool's https endpoint",
            ));
        }
        Ok(())
    }
}

/// True for plaintext URLs and for loopback or localhost hosts.
fn is_local(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return true;
    };
    let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    url.scheme() != "https" || loopback
}

/// Parses `90`, `90s`, `15m`, `24h`, `2d`, `500ms`, `01:30:00` or ISO 8601 such as `PT24H`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not a duration (examples: 90s, 15m, 24h, PT24H, 24:00:00)");

    if let Some(iso) = text.strip_prefix(['P', 'p']) {
        return parse_iso(iso).ok_or_else(bad);
    }
    if text.contains(':') {
        let parts: Vec<u64> = text
            .split(':')
            .map(|part| part.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        return match parts.as_slice() {
            [h, m, s] if *m < 60 && *s < 60 => Ok(Duration::from_secs(h * 3600 + m * 60 + s)),
            _ => Err(bad()),
        };
    }

    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = |factor: u64| number.checked_mul(factor).map(Duration::from_secs);
    match unit.trim() {
        "" | "s" => seconds(1),
        "ms" => Some(Duration::from_millis(number)),
        "m" | "min" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => None,
    }
    .ok_or_else(bad)
}

/// The part of an ISO 8601 duration after `P`: `[nD][T[nH][nM][nS]]`.
fn parse_iso(rest: &str) -> Option<Duration> {
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut total = 0u64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let factor = units.iter().find(|(u, _)| u.eq_ignore_ascii_case(&c))?.1;
            total = total.checked_add(number.parse::<u64>().ok()?.checked_mul(factor)?)?;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    take(date, &[('D', 86_400), ('W', 7 * 86_400)])?;
    if let Some(time) = time {
        take(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    any.then(|| Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const LOCAL_HUB: &str = "Endpoint=http://127.0.0.1:4001;TaskHub=default;Authentication=None";

    #[test]
    fn durations_in_every_accepted_form() {
        let cases = [
            ("90", 90),
            ("90s", 90),
            ("15m", 900),
            ("24h", 86_400),
            ("2d", 172_800),
            ("PT24H", 86_400),
            ("P1DT1H30M", 91_800),
            ("PT90S", 90),
            ("24:00:00", 86_400),
            ("00:01:30", 90),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "abc", "10x", "P", "PT", "1:99:00", "-5s", "PT1X"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn defaults_apply_when_optional_settings_are_missing() {
        let config = Config::from_map(&env(&[
            (CONNECTION_STRING_VAR, LOCAL_HUB),
            (SESSION_POOL_URL_VAR, "http://127.0.0.1:7072"),
        ]))
        .unwrap();
        assert_eq!(config.port, 7071);
        assert_eq!(config.approval_timeout, DEFAULT_APPROVAL_TIMEOUT);
        assert_eq!(config.execution_timeout, DEFAULT_EXECUTION_TIMEOUT);
        assert_eq!(config.session_pool_api, PoolApi::Executions2025);
        assert!(!config.in_azure);
    }

    #[test]
    fn errors_name_the_setting() {
        let missing = Config::from_map(&env(&[(SESSION_POOL_URL_VAR, "http://x")])).unwrap_err();
        assert!(
            missing.to_string().contains(CONNECTION_STRING_VAR),
            "{missing}"
        );

        let bad_timeout = Config::from_map(&env(&[
            (CONNECTION_STRING_VAR, LOCAL_HUB),
            (SESSION_POOL_URL_VAR, "http://127.0.0.1:7072"),
            (APPROVAL_TIMEOUT_VAR, "soon"),
        ]))
        .unwrap_err();
        assert!(
            bad_timeout.to_string().contains(APPROVAL_TIMEOUT_VAR),
            "{bad_timeout}"
        );

        let bad_port = Config::from_map(&env(&[
            (CONNECTION_STRING_VAR, LOCAL_HUB),
            (SESSION_POOL_URL_VAR, "http://127.0.0.1:7072"),
            (PORT_VAR, "99999"),
        ]))
        .unwrap_err();
        assert!(bad_port.to_string().contains(PORT_VAR), "{bad_port}");
    }

    #[test]
    fn azure_refuses_local_parts() {
        let base = [
            ("WEBSITE_INSTANCE_ID", "abc"),
            (PORT_VAR, "8080"),
            (
                SESSION_POOL_URL_VAR,
                "https://pool.eastus.azurecontainerapps.io/x",
            ),
        ];
        let with = |conn: &str, pool: Option<&str>| {
            let mut vars = env(&base);
            vars.insert(CONNECTION_STRING_VAR.into(), conn.into());
            if let Some(pool) = pool {
                vars.insert(SESSION_POOL_URL_VAR.into(), pool.into());
            }
            Config::from_map(&vars)
        };

        let anonymous = with(LOCAL_HUB, None).unwrap_err();
        assert!(
            anonymous.to_string().contains("Authentication=None"),
            "{anonymous}"
        );
        let loopback = with(
            "Endpoint=https://localhost:4001;TaskHub=h;Authentication=ManagedIdentity",
            None,
        )
        .unwrap_err();
        assert!(loopback.to_string().contains(CONNECTION_STRING_VAR));
        let real =
            "Endpoint=https://s.westus.durabletask.io;TaskHub=h;Authentication=ManagedIdentity";
        let local_pool = with(real, Some("http://127.0.0.1:7072")).unwrap_err();
        assert!(local_pool.to_string().contains(SESSION_POOL_URL_VAR));
        let config = with(real, None).unwrap();
        assert!(config.in_azure);
        assert!(
            !config.trust_principal_headers,
            "no Easy Auth, no trusted principal"
        );
        let mut vars = env(&base);
        vars.insert(CONNECTION_STRING_VAR.into(), real.into());
        vars.insert("WEBSITE_AUTH_ENABLED".into(), "True".into());
        assert!(Config::from_map(&vars).unwrap().trust_principal_headers);
    }
}
