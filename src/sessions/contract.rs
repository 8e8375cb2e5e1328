//! The two data-plane contracts of a session pool: their paths, request bodies and response
//! shapes, read into one [`Execution`].

use serde_json::{Value, json};

use super::execution::{Execution, ExecutionStatus, cap_chars};

/// Which data-plane contract to speak.
///
/// The default is [`ApiContract::Executions2025`]: it is the current contract of the service's
/// published API definition (top-level fields, an explicit `timeoutInSeconds`, typed
/// `Succeeded`/`Failed` statuses and an `error` object), while the legacy one survives for
/// the framework clients that still use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiContract {
    /// `POST code/execute?api-version=2024-02-02-preview`, body wrapped in `properties`.
    Legacy2024,
    /// `POST executions?api-version=2025-02-02-preview`, top-level fields.
    #[default]
    Executions2025,
}

impl ApiContract {
    /// The path under the pool endpoint, and the api-version.
    pub(crate) fn route(self) -> (&'static str, &'static str) {
        match self {
            Self::Legacy2024 => ("code/execute", "2024-02-02-preview"),
            Self::Executions2025 => ("executions", "2025-02-02-preview"),
        }
    }

    /// The request body for `code` with a timeout in whole seconds.
    pub(crate) fn body(self, code: &str, timeout_seconds: u64) -> Value {
        match self {
            // The enum values as the legacy documentation writes them.
            Self::Legacy2024 => json!({ "properties": {
                "codeInputType": "inline",
                "executionType": "synchronous",
                "code": code,
                "timeoutInSeconds": timeout_seconds,
            }}),
            Self::Executions2025 => json!({
                "codeInputType": "Inline",
                "executionType": "Synchronous",
                "code": code,
                "timeoutInSeconds": timeout_seconds,
            }),
        }
    }

    /// Reads a 2xx response body. `Err` holds why it is malformed.
    pub(crate) fn parse(self, body: &Value, max_output_chars: usize) -> Result<Parsed, String> {
        let (status, error, fields, result_key) = match self {
            Self::Legacy2024 => {
                let properties = body.get("properties").ok_or("no `properties` object")?;
                let result_key = if properties.get("executionResult").is_some() {
                    "executionResult"
                } else {
                    "result"
                };
                (
                    properties.get("status"),
                    properties.get("error"),
                    properties,
                    result_key,
                )
            }
            Self::Executions2025 => {
                let fields = body.get("result").unwrap_or(&Value::Null);
                (
                    body.get("status"),
                    body.get("error"),
                    fields,
                    "executionResult",
                )
            }
        };
        let status = status.and_then(Value::as_str).ok_or("no `status` string")?;
        let status = read_status(status, error)?;

        let text = |key: &str| -> Result<String, String> {
            match fields.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(cap_chars(s.clone(), max_output_chars)),
                Some(_) => Err(format!("`{key}` is not a string")),
            }
        };
        let result = match fields.get(result_key) {
            None | Some(Value::Null) => None,
            // The legacy contract reports "no value" as an empty string.
            Some(Value::String(s)) if s.is_empty() && self == Self::Legacy2024 => None,
            Some(value) => Some(value.clone()),
        };
        Ok(Parsed {
            execution: Execution {
                status,
                stdout: text("stdout")?,
                stderr: text("stderr")?,
                result,
                duration_ms: 0,
            },
            duration_ms: fields
                .get("executionTimeInMilliseconds")
                .and_then(Value::as_u64),
        })
    }
}

/// A parsed response: the execution and the pool's duration, when reported.
pub(crate) struct Parsed {
    pub execution: Execution,
    pub duration_ms: Option<u64>,
}

fn read_status(status: &str, error: Option<&Value>) -> Result<ExecutionStatus, String> {
    let error_code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let timed_out = error_code.contains("timeout");
    match status.to_ascii_lowercase().as_str() {
        "succeeded" | "success" | "0" => Ok(ExecutionStatus::Succeeded),
        "timedout" | "timeout" => Ok(ExecutionStatus::TimedOut),
        "failed" | "failure" if timed_out => Ok(ExecutionStatus::TimedOut),
        "failed" | "failure" => Ok(ExecutionStatus::Failed),
        "canceled" | "cancelled" => Ok(ExecutionStatus::Canceled),
        "notstarted" | "running" => {
            Err(format!("the execution has not finished (status {status})"))
        }
        // Shell pools report the exit code as the status.
        other if other.parse::<i64>().is_ok() => Ok(ExecutionStatus::Failed),
        other => Err(format!("unknown status {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_legacy_shape() {
        let body = json!({"$id": "1", "properties": {"$id": "2", "status": "Success",
            "stdout": "hi\n", "stderr": "", "result": 42, "executionTimeInMilliseconds": 33}});
        let parsed = ApiContract::Legacy2024.parse(&body, 4096).unwrap();
        assert_eq!(parsed.execution.status, ExecutionStatus::Succeeded);
        assert_eq!(parsed.execution.stdout, "hi\n");
        assert_eq!(parsed.execution.result, Some(json!(42)));
        assert_eq!(parsed.duration_ms, Some(33));

        let empty = json!({"properties": {"status": "Failure", "stdout": "", "stderr": "boom", "result": ""}});
        let parsed = ApiContract::Legacy2024.parse(&empty, 4096).unwrap();
        assert_eq!(parsed.execution.status, ExecutionStatus::Failed);
        assert_eq!(parsed.execution.result, None);
    }

    #[test]
    fn reads_the_executions_shape() {
        let body = json!({"id": "e", "identifier": "s", "status": "Failed",
            "error": {"code": "ExecutionTimeout", "message": "late"},
            "result": {"stdout": "abcdef", "stderr": "", "executionResult": null}});
        let parsed = ApiContract::Executions2025.parse(&body, 3).unwrap();
        assert_eq!(parsed.execution.status, ExecutionStatus::TimedOut);
        assert_eq!(parsed.execution.stdout, "abc");
        assert_eq!(parsed.execution.result, None);
        assert_eq!(parsed.duration_ms, None);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for body in [
            json!({}),
            json!({"status": 3}),
            json!({"status": "Running"}),
            json!({"status": "Succeeded", "result": {"stdout": 5}}),
        ] {
            assert!(
                ApiContract::Executions2025.parse(&body, 10).is_err(),
                "{body}"
            );
        }
        assert!(
            ApiContract::Legacy2024
                .parse(&json!({"status": "Success"}), 10)
                .is_err()
        );
    }

    #[test]
    fn builds_each_body() {
        let legacy = ApiContract::Legacy2024.body("1", 9);
        assert_eq!(legacy["properties"]["code"], "1");
        let current = ApiContract::Executions2025.body("1", 9);
        assert_eq!(current["timeoutInSeconds"], 9);
        assert!(current.get("properties").is_none());
    }
}
