//! A minimal cache of the pool's bearer token, refreshed ahead of its expiry.
//!
//! Tokens are held as `azure_core` secrets and never logged or formatted.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential};
use azure_core::time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;

use super::SessionError;

/// The scope of the session pools' data plane.
pub(crate) const SCOPE: &str = "https://dynamicsessions.io/.default";

/// A token is renewed this long before it expires.
const REFRESH_AHEAD: Duration = Duration::minutes(5);

/// One credential's current token for [`SCOPE`].
pub(crate) struct TokenCache {
    credential: Arc<dyn TokenCredential>,
    current: Mutex<Option<AccessToken>>,
}

impl TokenCache {
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            credential,
            current: Mutex::new(None),
        }
    }

    /// The `Authorization` header value; fetches a token when none is fresh. Concurrent
    /// callers wait for one fetch rather than each asking the credential.
    pub async fn bearer(&self) -> Result<String, SessionError> {
        let mut current = self.current.lock().await;
        let fresh = current
            .as_ref()
            .is_some_and(|token| token.expires_on - REFRESH_AHEAD > OffsetDateTime::now_utc());
        if !fresh {
            let token = self
                .credential
                .get_token(&[SCOPE], None)
                .await
                .map_err(|e| SessionError::Credential(e.to_string()))?;
            *current = Some(token);
        }
        let token = current.as_ref().expect("set above");
        Ok(format!("Bearer {}", token.token.secret()))
    }
}
