//! The gRPC channel to a backend, and the metadata every call carries.
//!
//! [`connect_lazy`] builds a tonic channel (TLS with the webpki roots for `https://`, plaintext
//! HTTP/2 for `http://`). [`MetadataChannel`] wraps it and stamps each request with `taskhub`,
//! `x-user-agent`, `workerid` (workers only) and `authorization: Bearer …` (when a credential is
//! configured). The bearer token comes from a [`TokenSource`], so the wrapper is a tower service
//! rather than a tonic interceptor, which cannot wait.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::HeaderValue;
use tonic::body::Body;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::auth::{AuthError, TokenSource};
use super::proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;

/// The largest message sent or received. Histories and outputs can exceed gRPC's 4 MiB default.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// The `x-user-agent` sent on every call.
pub const USER_AGENT: &str = concat!("evalgate-durabletask/", env!("CARGO_PKG_VERSION"));

/// How long establishing a connection may take before the call fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a channel could not be built. Not retryable: the endpoint must change.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The endpoint is not a valid URI or TLS could not be configured for it.
    #[error("invalid endpoint `{endpoint}`: {source}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What tonic said.
        #[source]
        source: tonic::transport::Error,
    },
}

/// A channel to `endpoint` that connects on first use and reconnects by itself.
pub fn connect_lazy(endpoint: &str) -> Result<Channel, ChannelError> {
    let invalid = |source| ChannelError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        source,
    };
    let mut builder = Endpoint::from_shared(endpoint.to_owned())
        .map_err(invalid)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if endpoint
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    {
        builder = builder
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(invalid)?;
    }
    Ok(builder.connect_lazy())
}

/// The metadata stamped on every call.
#[derive(Debug, Clone)]
pub struct CallMetadata {
    /// The task hub addressed (`taskhub`).
    pub task_hub: String,
    /// The caller's identity (`x-user-agent`); defaults to [`USER_AGENT`].
    pub user_agent: String,
    /// A worker's identity (`workerid`); `None` for clients.
    pub worker_id: Option<String>,
    /// Where bearer tokens come from; `None` sends no `authorization`.
    pub tokens: Option<TokenSource>,
}

impl CallMetadata {
    /// Metadata for a client of `task_hub`.
    pub fn new(task_hub: impl Into<String>, tokens: Option<TokenSource>) -> Self {
        Self {
            task_hub: task_hub.into(),
            user_agent: USER_AGENT.to_owned(),
            worker_id: None,
            tokens,
        }
    }

    /// The same metadata, identifying a worker.
    pub fn for_worker(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = Some(worker_id.into());
        self
    }

    async fn apply(&self, request: &mut http::Request<Body>) -> Result<(), tonic::Status> {
        let headers = request.headers_mut();
        headers.insert("taskhub", header(&self.task_hub)?);
        headers.insert("x-user-agent", header(&self.user_agent)?);
        if let Some(worker_id) = &self.worker_id {
            headers.insert("workerid", header(worker_id)?);
        }

        if let Some(tokens) = &self.tokens {
            let bearer = tokens.bearer().await.map_err(auth_status)?;
            let mut value = header(&bearer)?;
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        Ok(())
    }
}

fn header(value: &str) -> Result<HeaderValue, tonic::Status> {
    HeaderValue::from_str(value)
        .map_err(|_| tonic::Status::invalid_argument("metadata value is not a valid header"))
}

fn auth_status(err: AuthError) -> tonic::Status {
    let message = format!("no token for the backend: {err}");
    if err.is_retryable() {
        tonic::Status::unavailable(message)
    } else {
        tonic::Status::unauthenticated(message)
    }
}

/// A channel that adds [`CallMetadata`] to every request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetadataChannel<S = Channel> {
    inner: S,
    metadata: Arc<CallMetadata>,
}

impl<S> MetadataChannel<S> {
    /// Wraps `inner`, a tonic channel or any service of the same shape.
    pub fn new(inner: S, metadata: CallMetadata) -> Self {
        Self {
            inner,
            metadata: Arc::new(metadata),
        }
    }
}

impl<S> tower::Service<http::Request<Body>> for MetadataChannel<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<Body>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The ready service is the one to call; its clone takes its place for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metadata = self.metadata.clone();
        Box::pin(async move {
            // A Status error reaches the caller with its code, since tonic looks for one.
            metadata.apply(&mut request).await.map_err(Box::new)?;
            inner.call(request).await.map_err(Into::into)
        })
    }
}

/// The generated client over a [`MetadataChannel`], with the raised message limits.
pub type SidecarClient = TaskHubSidecarServiceClient<MetadataChannel>;

/// A generated client for `channel` with `metadata` on every call.
pub fn sidecar_client(channel: Channel, metadata: CallMetadata) -> SidecarClient {
    TaskHubSidecarServiceClient::new(MetadataChannel::new(channel, metadata))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
    use azure_core::time::{Duration as TimeDuration, OffsetDateTime};
    use std::sync::Mutex;

    #[derive(Debug)]
    struct StaticToken;

    #[async_trait::async_trait]
    impl TokenCredential for StaticToken {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Ok(AccessToken::new(
                "secret-token",
                OffsetDateTime::now_utc() + TimeDuration::hours(1),
            ))
        }
    }

    type Seen = Arc<Mutex<Vec<http::HeaderMap>>>;

    /// A generated client whose transport records each request's headers and answers
    /// every call with UNIMPLEMENTED, so no server is needed.
    fn recording_client(
        metadata: CallMetadata,
    ) -> (
        TaskHubSidecarServiceClient<MetadataChannel<RecordingService>>,
        Seen,
    ) {
        let seen = Seen::default();
        let service = RecordingService { seen: seen.clone() };
        let client = TaskHubSidecarServiceClient::new(MetadataChannel::new(service, metadata));
        (client, seen)
    }

    #[derive(Clone)]
    struct RecordingService {
        seen: Seen,
    }

    impl tower::Service<http::Request<Body>> for RecordingService {
        type Response = http::Response<Body>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            self.seen.lock().unwrap().push(request.headers().clone());
            let response = http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "12")
                .body(Body::empty())
                .unwrap();
            std::future::ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn worker_calls_carry_hub_agent_worker_id_and_bearer() {
        let tokens = TokenSource::new(Arc::new(StaticToken), crate::durabletask::auth::DTS_SCOPE);
        let metadata = CallMetadata::new("hub-a", Some(tokens)).for_worker("host:1:abc");
        let (mut client, seen) = recording_client(metadata);

        let status = client.hello(()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);

        let headers = seen.lock().unwrap()[0].clone();
        assert_eq!(headers["taskhub"], "hub-a");
        assert_eq!(headers["x-user-agent"], USER_AGENT);
        assert_eq!(headers["workerid"], "host:1:abc");
        assert_eq!(headers["authorization"], "Bearer secret-token");
        assert!(headers["authorization"].is_sensitive());
    }

    #[tokio::test]
    async fn client_calls_without_credential_send_no_authorization() {
        let (mut client, seen) = recording_client(CallMetadata::new("default", None));

        let _ = client.hello(()).await;

        let headers = seen.lock().unwrap()[0].clone();
        assert_eq!(headers["taskhub"], "default");
        assert!(headers.get("authorization").is_none());
        assert!(headers.get("workerid").is_none());
    }

    #[test]
    fn invalid_endpoints_are_rejected() {
        assert!(connect_lazy("not a uri").is_err());
    }

    #[tokio::test]
    async fn both_schemes_build_a_channel() {
        connect_lazy("http://127.0.0.1:1").unwrap();
        connect_lazy("https://example.invalid").unwrap();
    }
}
