//! Credentials: Entra ID token credentials chosen by a connection string, and a token cache.
//!
//! [`credential_for`] turns `Authentication=` into an `azure_identity` credential.
//! [`TokenSource`] caches one scope's token and refreshes it ahead of expiry; any client of an
//! Entra-protected service can use it (the Durable Task Scheduler, Azure Container Apps sessions).
//! Tokens never reach a log: [`TokenSource`]'s `Debug` shows only the scope.
//!
//! `AdditionallyAllowedTenants` is parsed but has no effect: azure_identity 1.0's workload
//! identity credential offers no such option, so tokens come from `TenantId` only.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use azure_identity::{
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::connection::{Authentication, ConnectionString};

/// The scope of Durable Task Scheduler tokens.
pub const DTS_SCOPE: &str = "https://durabletask.io/.default";

/// How long before expiry a cached token is replaced.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Why no credential or token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The connection string names a kind this SDK cannot provide. Not retryable.
    #[error("Authentication={0} is not supported by this SDK")]
    Unsupported(&'static str),
    /// A setting the credential needs is absent. Not retryable until it is set.
    #[error("environment variable {0} is required for this authentication")]
    MissingSetting(&'static str),
    /// The credential could not be built from its settings. Not retryable.
    #[error("cannot build the credential: {0}")]
    Build(#[source] azure_core::Error),
    /// Getting a token failed; the identity endpoint may be briefly unreachable. Retryable.
    #[error("cannot get a token: {0}")]
    Token(#[source] azure_core::Error),
}

impl AuthError {
    /// True when the same call may succeed later without a configuration change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuthError::Token(_))
    }
}

/// The credential the connection string asks for; `None` for `Authentication=None`.
pub fn credential_for(
    connection: &ConnectionString,
) -> Result<Option<Arc<dyn TokenCredential>>, AuthError> {
    let credential: Arc<dyn TokenCredential> = match connection.authentication {
        Authentication::None => return Ok(None),
        Authentication::ManagedIdentity => managed_identity(connection)?,
        Authentication::WorkloadIdentity => workload_identity(connection)?,
        Authentication::Environment => environment()?,
        Authentication::AzureCli => {
            DeveloperToolsCredential::new(None).map_err(AuthError::Build)?
        }
        Authentication::DefaultAzure => default_chain(connection)?,
        other => return Err(AuthError::Unsupported(other.as_str())),
    };
    Ok(Some(credential))
}

fn managed_identity(connection: &ConnectionString) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: connection.client_id.clone().map(UserAssignedId::ClientId),
        ..Default::default()
    };
    let credential = ManagedIdentityCredential::new(Some(options)).map_err(AuthError::Build)?;
    Ok(credential)
}

fn workload_identity(connection: &ConnectionString) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let options = WorkloadIdentityCredentialOptions {
        client_id: connection.client_id.clone(),
        tenant_id: connection.tenant_id.clone(),
        token_file_path: connection.token_file_path.clone().map(Into::into),
        ..Default::default()
    };
    let credential = WorkloadIdentityCredential::new(Some(options)).map_err(AuthError::Build)?;
    Ok(credential)
}

fn environment() -> Result<Arc<dyn TokenCredential>, AuthError> {
    let var = |name: &'static str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::MissingSetting(name))
    };
    let tenant = var("AZURE_TENANT_ID")?;
    let client = var("AZURE_CLIENT_ID")?;
    let secret = var("AZURE_CLIENT_SECRET")?;
    let credential = ClientSecretCredential::new(&tenant, client, secret.into(), None)
        .map_err(AuthError::Build)?;
    Ok(credential)
}

/// Environment, then workload identity (when a token file is configured), then managed
/// identity, then developer tools. Sources that cannot even be built are left out.
fn default_chain(connection: &ConnectionString) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let mut sources: Vec<Arc<dyn TokenCredential>> = Vec::new();
    if let Ok(credential) = environment() {
        sources.push(credential);
    }
    let has_token_file = connection.token_file_path.is_some()
        || std::env::var_os("AZURE_FEDERATED_TOKEN_FILE").is_some();
    if has_token_file && let Ok(credential) = workload_identity(connection) {
        sources.push(credential);
    }
    sources.push(managed_identity(connection)?);
    sources.push(DeveloperToolsCredential::new(None).map_err(AuthError::Build)?);
    Ok(Arc::new(ChainedCredential::new(sources)))
}

/// Tries credentials in order and keeps using the first that returns a token.
pub struct ChainedCredential {
    sources: Vec<Arc<dyn TokenCredential>>,
    chosen: AtomicUsize,
}

impl ChainedCredential {
    /// A chain of `sources`, tried in order until one succeeds.
    pub fn new(sources: Vec<Arc<dyn TokenCredential>>) -> Self {
        Self {
            sources,
            chosen: AtomicUsize::new(usize::MAX),
        }
    }
}

impl fmt::Debug for ChainedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainedCredential")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for ChainedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.load(Ordering::Relaxed);
        if let Some(source) = self.sources.get(chosen) {
            return source.get_token(scopes, options).await;
        }

        let mut failures = Vec::new();
        for (index, source) in self.sources.iter().enumerate() {
            match source.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    self.chosen.store(index, Ordering::Relaxed);
                    return Ok(token);
                }
                Err(err) => failures.push(err.to_string()),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "no credential in the chain returned a token: {}",
                failures.join("; ")
            ),
        ))
    }
}

/// One scope's token, fetched on first use and replaced shortly before it expires.
///
/// Clones share the cache. Concurrent callers wait for a single fetch.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<TokenSourceInner>,
}

struct TokenSourceInner {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    refresh_margin: Duration,
    cached: tokio::sync::Mutex<Option<AccessToken>>,
}

impl TokenSource {
    /// A cache of `credential`'s tokens for `scope`, such as [`DTS_SCOPE`].
    pub fn new(credential: Arc<dyn TokenCredential>, scope: impl Into<String>) -> Self {
        Self::with_refresh_margin(credential, scope, DEFAULT_REFRESH_MARGIN)
    }

    /// The same, replacing tokens `margin` before they expire.
    pub fn with_refresh_margin(
        credential: Arc<dyn TokenCredential>,
        scope: impl Into<String>,
        margin: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(TokenSourceInner {
                credential,
                scope: scope.into(),
                refresh_margin: margin,
                cached: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The scope tokens are requested for.
    pub fn scope(&self) -> &str {
        &self.inner.scope
    }

    /// A valid token, from the cache when it is not about to expire.
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && self.is_fresh(token)
        {
            return Ok(token.clone());
        }

        let token = self
            .inner
            .credential
            .get_token(&[self.inner.scope.as_str()], None)
            .await
            .map_err(AuthError::Token)?;

        tracing::debug!(scope = %self.inner.scope, expires_on = %token.expires_on, "token refreshed");
        *cached = Some(token.clone());
        Ok(token)
    }

    /// The value of an `authorization` header: `Bearer <token>`.
    pub async fn bearer(&self) -> Result<String, AuthError> {
        Ok(format!("Bearer {}", self.token().await?.token.secret()))
    }

    fn is_fresh(&self, token: &AccessToken) -> bool {
        let left = token.expires_on - OffsetDateTime::now_utc();
        left.whole_seconds() > self.inner.refresh_margin.as_secs() as i64
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::time::Duration as TimeDuration;
    use std::sync::Mutex;

    /// Hands out `token-<n>` tokens that live for `lifetime`, and records the scopes asked for.
    #[derive(Debug)]
    struct FakeCredential {
        lifetime: TimeDuration,
        fail: bool,
        calls: Mutex<Vec<String>>,
    }

    impl FakeCredential {
        fn new(lifetime: TimeDuration) -> Arc<Self> {
            Arc::new(Self {
                lifetime,
                fail: false,
                calls: Mutex::new(Vec::new()),
            })
        }

        fn failing() -> Arc<Self> {
            Arc::new(Self {
                lifetime: TimeDuration::ZERO,
                fail: true,
                calls: Mutex::new(Vec::new()),
            })
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl TokenCredential for FakeCredential {
        async fn get_token(
            &self,
            scopes: &[&str],
            _options: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(scopes.join(" "));
            if self.fail {
                return Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "no identity here",
                ));
            }
            Ok(AccessToken::new(
                format!("token-{}", calls.len()),
                OffsetDateTime::now_utc() + self.lifetime,
            ))
        }
    }

    #[tokio::test]
    async fn a_long_lived_token_is_fetched_once() {
        let fake = FakeCredential::new(TimeDuration::hours(1));
        let source = TokenSource::new(fake.clone(), DTS_SCOPE);

        assert_eq!(source.bearer().await.unwrap(), "Bearer token-1");
        assert_eq!(source.clone().bearer().await.unwrap(), "Bearer token-1");
        assert_eq!(fake.calls(), vec![DTS_SCOPE.to_owned()]);
    }

    #[tokio::test]
    async fn a_token_inside_the_refresh_margin_is_replaced() {
        let fake = FakeCredential::new(TimeDuration::minutes(4));
        let source = TokenSource::new(fake.clone(), "https://dynamicsessions.io/.default");

        assert_eq!(source.bearer().await.unwrap(), "Bearer token-1");
        assert_eq!(source.bearer().await.unwrap(), "Bearer token-2");
        assert_eq!(fake.calls().len(), 2);
        assert_eq!(fake.calls()[0], "https://dynamicsessions.io/.default");
    }

    #[tokio::test]
    async fn debug_output_never_shows_the_token() {
        let fake = FakeCredential::new(TimeDuration::hours(1));
        let source = TokenSource::new(fake, DTS_SCOPE);
        source.token().await.unwrap();
        let printed = format!("{source:?}");
        assert!(!printed.contains("token-1"), "{printed}");
        assert!(printed.contains(DTS_SCOPE), "{printed}");
    }

    #[tokio::test]
    async fn token_failures_are_retryable_errors() {
        let source = TokenSource::new(FakeCredential::failing(), DTS_SCOPE);
        let err = source.token().await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("no identity here"), "{err}");
    }

    #[tokio::test]
    async fn the_chain_keeps_the_first_source_that_works() {
        let broken = FakeCredential::failing();
        let working = FakeCredential::new(TimeDuration::hours(1));
        let chain = ChainedCredential::new(vec![broken.clone(), working.clone()]);

        chain.get_token(&[DTS_SCOPE], None).await.unwrap();
        chain.get_token(&[DTS_SCOPE], None).await.unwrap();
        assert_eq!(broken.calls().len(), 1);
        assert_eq!(working.calls().len(), 2);
    }

    #[test]
    fn none_means_no_credential_and_unsupported_kinds_are_refused() {
        let cs: ConnectionString = "Endpoint=http://127.0.0.1:1;TaskHub=h;Authentication=None"
            .parse()
            .unwrap();
        assert!(credential_for(&cs).unwrap().is_none());

        let cs: ConnectionString = "Endpoint=e;TaskHub=h;Authentication=VisualStudio"
            .parse()
            .unwrap();
        let err = credential_for(&cs).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("VisualStudio"), "{err}");
    }

    #[test]
    fn managed_identity_is_built_without_a_network_call() {
        let cs: ConnectionString = "Endpoint=e;TaskHub=h;Authentication=ManagedIdentity;ClientID=c"
            .parse()
            .unwrap();
        assert!(credential_for(&cs).unwrap().is_some());
    }
}
