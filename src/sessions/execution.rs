//! What one execution is asked to do and what it came to, plus session identifiers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One piece of code to run.
#[derive(Debug, Clone)]
pub struct ExecuteRequest {
    /// Python source. Never logged.
    pub code: String,
    /// How long the code may run; the pool caps it at 220 s.
    pub timeout: Duration,
    /// The session to run in. `None` runs in a fresh session, so no state leaks between
    /// executions; name one (see [`SessionId::generate`]) to keep state across calls.
    pub session_id: Option<SessionId>,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    /// The code ran to its end.
    Succeeded,
    /// The code raised, did not compile, or its session died.
    Failed,
    /// The code ran out of time.
    TimedOut,
    /// The pool cancelled the execution.
    Canceled,
}

/// The outcome of one execution, as published to users in the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub status: ExecutionStatus,
    /// Standard output, capped at the client's `max_output_chars`.
    pub stdout: String,
    /// Standard error (tracebacks included), capped likewise.
    pub stderr: String,
    /// The value of the code's last expression, when it has one.
    pub result: Option<serde_json::Value>,
    /// The pool's own measure of the run, or the round trip when it reports none.
    pub duration_ms: u64,
}

/// A session identifier: 4 to 128 characters from the set the pool accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

/// The text is not a valid session identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a session identifier has 4 to 128 letters, digits or characters from {ALLOWED_PUNCTUATION:?}"
)]
pub struct InvalidSessionId;

/// The punctuation the pool's identifier pattern allows besides letters and digits.
const ALLOWED_PUNCTUATION: &str = "_|{}[]:\";'<>?/.,@#$%^&*()-+=!~`";

impl SessionId {
    /// An unpredictable identifier (identifiers grant access to a session's state).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Checks `text` against the pool's identifier rules.
    pub fn parse(text: &str) -> Result<Self, InvalidSessionId> {
        let length_ok = (4..=128).contains(&text.chars().count());
        let chars_ok = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ALLOWED_PUNCTUATION.contains(c));
        if length_ok && chars_ok {
            Ok(Self(text.to_string()))
        } else {
            Err(InvalidSessionId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Keeps at most `max` characters of `text`.
pub(crate) fn cap_chars(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_pool_rules() {
        assert!(SessionId::parse("abcd").is_ok());
        assert!(SessionId::parse("a-b|c{d}[e]#%&").is_ok());
        assert_eq!(SessionId::parse("abc"), Err(InvalidSessionId));
        assert_eq!(SessionId::parse(&"a".repeat(129)), Err(InvalidSessionId));
        assert_eq!(SessionId::parse("with space"), Err(InvalidSessionId));
        assert_eq!(SessionId::parse("ünïcode"), Err(InvalidSessionId));
        let generated = SessionId::generate();
        assert_eq!(SessionId::parse(generated.as_str()), Ok(generated.clone()));
        assert_ne!(generated, SessionId::generate());
    }

    #[test]
    fn caps_by_characters() {
        assert_eq!(cap_chars("héllo".into(), 2), "hé");
        assert_eq!(cap_chars("hi".into(), 5), "hi");
    }

    #[test]
    fn serializes_in_camel_case() {
        let execution = Execution {
            status: ExecutionStatus::TimedOut,
            stdout: "o".into(),
            stderr: String::new(),
            result: None,
            duration_ms: 7,
        };
        let json = serde_json::to_value(&execution).unwrap();
        assert_eq!(json["durationMs"], 7);
        assert_eq!(json["status"], "TimedOut");
        assert_eq!(
            serde_json::from_value::<Execution>(json).unwrap(),
            execution
        );
    }
}
