//! Failure details: why an activity or an orchestration failed, as carried on the wire.

use super::proto;

/// A failure as the Durable Task protocol reports it: a type name, a message, and whether retrying
/// could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureDetails {
    /// A stable name for the kind of error, such as `SessionError.RateLimited`.
    pub error_type: String,
    /// A message for people. Never empty: backends treat an empty message as success.
    pub message: String,
    /// Where it happened, when that is known.
    pub stack_trace: Option<String>,
    /// True when a retry cannot succeed, so retry policies give up at once.
    pub non_retriable: bool,
    /// The error that caused this one.
    pub inner: Option<Box<FailureDetails>>,
}

impl FailureDetails {
    /// A retriable failure of the given type.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error_type: error_type.into(),
            message: if message.is_empty() {
                "(no message)".to_owned()
            } else {
                message
            },
            stack_trace: None,
            non_retriable: false,
            inner: None,
        }
    }

    /// The same failure, marked as one that no retry can fix.
    pub fn non_retriable(mut self) -> Self {
        self.non_retriable = true;
        self
    }

    /// The same failure with an inner cause.
    pub fn caused_by(mut self, inner: FailureDetails) -> Self {
        self.inner = Some(Box::new(inner));
        self
    }
}

impl std::fmt::Display for FailureDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for FailureDetails {}

impl From<FailureDetails> for proto::TaskFailureDetails {
    fn from(value: FailureDetails) -> Self {
        proto::TaskFailureDetails {
            error_type: value.error_type,
            error_message: value.message,
            stack_trace: value.stack_trace,
            inner_failure: value.inner.map(|inner| Box::new((*inner).into())),
            is_non_retriable: value.non_retriable,
            properties: Default::default(),
        }
    }
}

impl From<proto::TaskFailureDetails> for FailureDetails {
    fn from(value: proto::TaskFailureDetails) -> Self {
        FailureDetails {
            error_type: value.error_type,
            message: value.error_message,
            stack_trace: value.stack_trace,
            non_retriable: value.is_non_retriable,
            inner: value.inner_failure.map(|inner| Box::new((*inner).into())),
        }
    }
}
