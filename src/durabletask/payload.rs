//! Payloads: serde values carried as JSON strings, with the backend's size limit enforced on send.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest payload this SDK sends. The Durable Task Scheduler refuses payloads over about
/// 1 MiB, so anything larger fails here with an error that names the limit.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Why a payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The value could not be serialized to JSON.
    #[error("cannot encode payload as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The JSON did not match the expected type.
    #[error("cannot decode payload: {0}")]
    Decode(#[source] serde_json::Error),
    /// The encoded value is over [`MAX_PAYLOAD_BYTES`].
    #[error("payload of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
}

impl From<PayloadError> for crate::durabletask::failure::FailureDetails {
    fn from(err: PayloadError) -> Self {
        crate::durabletask::failure::FailureDetails::new("PayloadError", err.to_string())
            .non_retriable()
    }
}

/// Encodes a value as a JSON payload, refusing one over [`MAX_PAYLOAD_BYTES`].
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, PayloadError> {
    let json = serde_json::to_string(value).map_err(PayloadError::Encode)?;
    check_size(&json)?;
    Ok(json)
}

/// Decodes an optional JSON payload. A missing or empty payload decodes as JSON `null`, so
/// `Option<T>` and `()` accept "no input".
pub fn decode<T: DeserializeOwned>(payload: Option<&str>) -> Result<T, PayloadError> {
    let text = match payload {
        Some(text) if !text.is_empty() => text,
        _ => "null",
    };
    serde_json::from_str(text).map_err(PayloadError::Decode)
}

/// Fails when an already encoded payload is over [`MAX_PAYLOAD_BYTES`].
pub fn check_size(json: &str) -> Result<(), PayloadError> {
    if json.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge {
            size: json.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_payload_decodes_as_null() {
        let none: Option<u32> = decode(Some("")).unwrap();
        assert_eq!(none, None);
        let unit: () = decode(None).unwrap();
        assert_eq!(unit, ());
    }

    #[test]
    fn oversized_payload_names_the_limit() {
        let big = "x".repeat(MAX_PAYLOAD_BYTES + 1);
        let err = encode(&big).unwrap_err();
        assert!(
            err.to_string().contains(&MAX_PAYLOAD_BYTES.to_string()),
            "{err}"
        );
    }

    #[test]
    fn round_trip() {
        let json = encode(&vec![1, 2, 3]).unwrap();
        let back: Vec<i32> = decode(Some(&json)).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
    }
}
