//! Conversions between protobuf timestamps and `chrono` times.

use chrono::{DateTime, TimeZone, Utc};
use prost_types::Timestamp;

/// A protobuf timestamp for a UTC time.
pub fn to_timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// The UTC time of a protobuf timestamp; out-of-range values clamp to the Unix epoch.
pub fn from_timestamp(timestamp: &Timestamp) -> DateTime<Utc> {
    let nanos = timestamp.nanos.clamp(0, 999_999_999) as u32;
    Utc.timestamp_opt(timestamp.seconds, nanos)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The UTC time of an optional timestamp.
pub fn from_optional(timestamp: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    timestamp.map(from_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_nanoseconds() {
        let time = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(time)), time);
    }
}
