//! Translating client RPC messages to hub operations and back.

use std::time::Duration;

use crate::durabletask::proto::{self, purge_instances_request::Request as Purge};
use crate::taskhub::store::{InstanceFilter, Order};
use crate::taskhub::time::from_timestamp;

/// The default page size of ListInstanceIds.
const DEFAULT_PAGE_SIZE: usize = 100;

/// The gRPC deadline of a request (the `grpc-timeout` header), if it has one.
pub fn deadline<T>(request: &tonic::Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The filter, page size and token of a QueryInstances request.
pub fn query(
    request: proto::QueryInstancesRequest,
) -> (InstanceFilter, usize, Option<String>, bool) {
    let query = request.query.unwrap_or_default();
    let filter = InstanceFilter {
        statuses: query.runtime_status,
        created_from: query.created_time_from.as_ref().map(from_timestamp),
        created_to: query.created_time_to.as_ref().map(from_timestamp),
        id_prefix: query.instance_id_prefix.filter(|p| !p.is_empty()),
        ..Default::default()
    };
    let limit = query.max_instance_count.max(0) as usize;
    (
        filter,
        limit,
        query.continuation_token,
        query.fetch_inputs_and_outputs,
    )
}

/// The filter, page size and token of a ListInstanceIds request (terminal instances only).
pub fn list(request: proto::ListInstanceIdsRequest) -> (InstanceFilter, usize, Option<String>) {
    let filter = InstanceFilter {
        statuses: request.runtime_status,
        completed_from: request.completed_time_from.as_ref().map(from_timestamp),
        completed_to: request.completed_time_to.as_ref().map(from_timestamp),
        terminal_only: true,
        ..Default::default()
    };
    let size = if request.page_size > 0 {
        request.page_size as usize
    } else {
        DEFAULT_PAGE_SIZE
    };
    (filter, size, request.last_instance_key)
}

/// What a PurgeInstances request selects: one id, or a filter.
pub fn purge(
    request: proto::PurgeInstancesRequest,
) -> Result<(Option<String>, InstanceFilter), tonic::Status> {
    match request.request {
        Some(Purge::InstanceId(id)) => Ok((Some(id), InstanceFilter::default())),
        Some(Purge::PurgeInstanceFilter(filter)) => Ok((
            None,
            InstanceFilter {
                statuses: filter.runtime_status,
                created_from: filter.created_time_from.as_ref().map(from_timestamp),
                created_to: filter.created_time_to.as_ref().map(from_timestamp),
                ..Default::default()
            },
        )),
        Some(Purge::InstanceBatch(_)) => Err(tonic::Status::unimplemented(
            "this task hub does not support purging by instance batch; purge by id or by filter",
        )),
        None => Err(tonic::Status::invalid_argument(
            "a purge needs an instance id or a filter",
        )),
    }
}

/// The order used by QueryInstances pages.
pub const QUERY_ORDER: Order = Order::Created;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        let mut request = tonic::Request::new(());
        assert_eq!(deadline(&request), None);
        request
            .metadata_mut()
            .insert("grpc-timeout", "1500m".parse().unwrap());
        assert_eq!(deadline(&request), Some(Duration::from_millis(1500)));
        request
            .metadata_mut()
            .insert("grpc-timeout", "2S".parse().unwrap());
        assert_eq!(deadline(&request), Some(Duration::from_secs(2)));
    }
}
