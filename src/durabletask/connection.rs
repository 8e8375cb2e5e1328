//! Connection strings: where the backend is, which task hub, and how to authenticate.
//!
//! The format is the Durable Task Scheduler's:
//! `Endpoint=<url>;TaskHub=<name>;Authentication=<kind>[;ClientID=..][;TenantId=..]
//! [;AdditionallyAllowedTenants=a,b][;TokenFilePath=..]`. Keys are case-insensitive and trimmed,
//! empty segments are skipped, a repeated key keeps its last value, and only the first `=` of a
//! segment splits key from value.

use std::fmt;
use std::str::FromStr;

/// How the SDK obtains bearer tokens for the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// No token: the local emulator or the in-memory test backend.
    None,
    /// A chain: environment, workload identity, managed identity, then developer tools.
    DefaultAzure,
    /// The managed identity of the host; user-assigned when `ClientID` is given.
    ManagedIdentity,
    /// A Kubernetes service account token exchanged for an Entra token.
    WorkloadIdentity,
    /// A client secret from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`.
    Environment,
    /// The signed-in Azure CLI (or Azure Developer CLI) account.
    AzureCli,
    /// Accepted by the format but not available in this SDK.
    AzurePowerShell,
    /// Accepted by the format but not available in this SDK.
    VisualStudio,
    /// Accepted by the format but not available in this SDK.
    VisualStudioCode,
    /// Accepted by the format but not available in this SDK.
    InteractiveBrowser,
}

impl Authentication {
    const ALL: [(&'static str, Authentication); 10] = [
        ("None", Authentication::None),
        ("DefaultAzure", Authentication::DefaultAzure),
        ("ManagedIdentity", Authentication::ManagedIdentity),
        ("WorkloadIdentity", Authentication::WorkloadIdentity),
        ("Environment", Authentication::Environment),
        ("AzureCli", Authentication::AzureCli),
        ("AzurePowerShell", Authentication::AzurePowerShell),
        ("VisualStudio", Authentication::VisualStudio),
        ("VisualStudioCode", Authentication::VisualStudioCode),
        ("InteractiveBrowser", Authentication::InteractiveBrowser),
    ];

    /// The name as written in a connection string.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, kind)| *kind == self)
            .map(|(name, _)| *name)
            .unwrap_or("None")
    }
}

impl FromStr for Authentication {
    type Err = ConnectionStringError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value))
            .map(|(_, kind)| *kind)
            .ok_or_else(|| ConnectionStringError::UnknownAuthentication(value.to_owned()))
    }
}

/// Why a connection string was rejected. Never retryable: the text itself must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    /// A segment had no `=`.
    #[error("connection string segment `{0}` is not `Key=Value`")]
    Malformed(String),
    /// A key this format does not define.
    #[error("unknown connection string key `{0}`")]
    UnknownKey(String),
    /// A required key is absent or blank.
    #[error("connection string key `{0}` is required")]
    Missing(&'static str),
    /// `Authentication` named no known kind.
    #[error("unknown Authentication `{0}`")]
    UnknownAuthentication(String),
}

/// A parsed connection string. `Display` prints it back without secrets (it holds none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// The backend's URL, always with a scheme (`https://` is added when missing).
    pub endpoint: String,
    /// The task hub every call addresses.
    pub task_hub: String,
    /// How tokens are obtained.
    pub authentication: Authentication,
    /// A user-assigned managed identity or a workload identity's client id.
    pub client_id: Option<String>,
    /// The workload identity's tenant.
    pub tenant_id: Option<String>,
    /// Further tenants a workload identity may get tokens for.
    pub additionally_allowed_tenants: Vec<String>,
    /// The workload identity's service account token file.
    pub token_file_path: Option<String>,
}

impl ConnectionString {
    /// A connection string for a backend without authentication, such as the local emulator.
    pub fn unauthenticated(endpoint: impl Into<String>, task_hub: impl Into<String>) -> Self {
        Self {
            endpoint: with_scheme(endpoint.into().trim()),
            task_hub: task_hub.into(),
            authentication: Authentication::None,
            client_id: None,
            tenant_id: None,
            additionally_allowed_tenants: Vec::new(),
            token_file_path: None,
        }
    }

    /// True when the endpoint is plaintext HTTP/2 (`http://`), as for the emulator.
    pub fn is_plaintext(&self) -> bool {
        self.endpoint
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
    }
}

impl FromStr for ConnectionString {
    type Err = ConnectionStringError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut endpoint = None;
        let mut task_hub = None;
        let mut authentication = None;
        let mut client_id = None;
        let mut tenant_id = None;
        let mut allowed = None;
        let mut token_file_path = None;

        for segment in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = segment
                .split_once('=')
                .ok_or_else(|| ConnectionStringError::Malformed(segment.to_owned()))?;
            let value = Some(value.trim().to_owned());
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "endpoint" => &mut endpoint,
                "taskhub" => &mut task_hub,
                "authentication" => &mut authentication,
                "clientid" => &mut client_id,
                "tenantid" => &mut tenant_id,
                "additionallyallowedtenants" => &mut allowed,
                "tokenfilepath" => &mut token_file_path,
                _ => return Err(ConnectionStringError::UnknownKey(key.trim().to_owned())),
            };
            *slot = value;
        }

        let required = |value: Option<String>, key| {
            value
                .filter(|v| !v.is_empty())
                .ok_or(ConnectionStringError::Missing(key))
        };
        let endpoint = required(endpoint, "Endpoint")?;
        let task_hub = required(task_hub, "TaskHub")?;
        let authentication = required(authentication, "Authentication")?.parse()?;
        let optional = |value: Option<String>| value.filter(|v| !v.is_empty());

        Ok(Self {
            endpoint: with_scheme(&endpoint),
            task_hub,
            authentication,
            client_id: optional(client_id),
            tenant_id: optional(tenant_id),
            additionally_allowed_tenants: optional(allowed)
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            token_file_path: optional(token_file_path),
        })
    }
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Endpoint={};TaskHub={};Authentication={}",
            self.endpoint,
            self.task_hub,
            self.authentication.as_str()
        )?;
        if let Some(id) = &self.client_id {
            write!(f, ";ClientID={id}")?;
        }
        if let Some(id) = &self.tenant_id {
            write!(f, ";TenantId={id}")?;
        }
        if !self.additionally_allowed_tenants.is_empty() {
            write!(
                f,
                ";AdditionallyAllowedTenants={}",
                self.additionally_allowed_tenants.join(",")
            )?;
        }
        if let Some(path) = &self.token_file_path {
            write!(f, ";TokenFilePath={path}")?;
        }
        Ok(())
    }
}

fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("https://{endpoint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConnectionString, ConnectionStringError> {
        text.parse()
    }

    #[test]
    fn parses_the_emulator_string() {
        let cs =
            parse("Endpoint=http://localhost:8080;TaskHub=default;Authentication=None").unwrap();
        assert_eq!(cs.endpoint, "http://localhost:8080");
        assert_eq!(cs.task_hub, "default");
        assert_eq!(cs.authentication, Authentication::None);
        assert!(cs.is_plaintext());
    }

    #[test]
    fn keys_are_case_insensitive_trimmed_and_empty_segments_skipped() {
        let cs = parse(
            " endpoint = my.westus.durabletask.io ;;TASKHUB=hub; authentication=managedidentity;\
             clientid=abc;",
        )
        .unwrap();
        assert_eq!(cs.endpoint, "https://my.westus.durabletask.io");
        assert_eq!(cs.task_hub, "hub");
        assert_eq!(cs.authentication, Authentication::ManagedIdentity);
        assert_eq!(cs.client_id.as_deref(), Some("abc"));
        assert!(!cs.is_plaintext());
    }

    #[test]
    fn last_repeat_wins_and_first_equals_splits() {
        let cs =
            parse("Endpoint=a;Endpoint=https://b/x?y=z;TaskHub=h;Authentication=None").unwrap();
        assert_eq!(cs.endpoint, "https://b/x?y=z");
    }

    #[test]
    fn optional_workload_identity_keys() {
        let cs = parse(
            "Endpoint=https://e;TaskHub=h;Authentication=WorkloadIdentity;TenantId=t;\
             AdditionallyAllowedTenants= a, b ,;TokenFilePath=/var/run/token",
        )
        .unwrap();
        assert_eq!(cs.tenant_id.as_deref(), Some("t"));
        assert_eq!(cs.additionally_allowed_tenants, vec!["a", "b"]);
        assert_eq!(cs.token_file_path.as_deref(), Some("/var/run/token"));
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            parse("TaskHub=h;Authentication=None"),
            Err(ConnectionStringError::Missing("Endpoint"))
        );
        assert_eq!(
            parse("Endpoint=e;TaskHub= ;Authentication=None"),
            Err(ConnectionStringError::Missing("TaskHub"))
        );
        assert_eq!(
            parse("Endpoint=e;TaskHub=h"),
            Err(ConnectionStringError::Missing("Authentication"))
        );
        assert_eq!(
            parse("Endpoint=e;TaskHub=h;Authentication=None;Colour=blue"),
            Err(ConnectionStringError::UnknownKey("Colour".into()))
        );
        assert_eq!(
            parse("Endpoint=e;TaskHub=h;Authentication=Password"),
            Err(ConnectionStringError::UnknownAuthentication(
                "Password".into()
            ))
        );
        assert_eq!(
            parse("Endpoint=e;TaskHub;Authentication=None"),
            Err(ConnectionStringError::Malformed("TaskHub".into()))
        );
        let message = parse("Endpoint=e;Authentication=None")
            .unwrap_err()
            .to_string();
        assert!(message.contains("TaskHub"), "{message}");
    }

    #[test]
    fn display_round_trips() {
        let text = "Endpoint=https://e;TaskHub=h;Authentication=WorkloadIdentity;ClientID=c;\
                    TenantId=t;AdditionallyAllowedTenants=a,b;TokenFilePath=/f";
        let cs = parse(text).unwrap();
        assert_eq!(parse(&cs.to_string()).unwrap(), cs);
    }
}
