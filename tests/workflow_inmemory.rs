//! The main job against Microsoft's in-memory Durable Task backend (`durabletask` 1.12.0 on
//! 127.0.0.1, through the SDK's interop harness) instead of the embedded task hub: `handler` in
//! serve mode, real Python in the local interpreter, approve, reject and the pending list.

mod common;

use common::backend::Backend;
use common::stack::DevStack;

#[tokio::test]
async fn the_flow_runs_on_the_in_memory_backend() {
    let Some(backend) = Backend::start() else {
        return;
    };
    let stack = DevStack::serve(&backend.connection_string());
    stack.wait_until_ready().await;

    let approve = stack.submit_ok("print(sum(i * i for i in range(4)))").await;
    let reject = stack.submit_ok("raise RuntimeError('nope')").await;

    let waiting = stack.wait_for_stage(&approve, "awaiting_approval").await;
    assert_eq!(waiting["evaluation"]["stdout"], "14\n");
    let failing = stack.wait_for_stage(&reject, "awaiting_approval").await;
    assert_eq!(failing["evaluation"]["status"], "failed");

    let (code, list) = stack.list("awaiting_approval").await;
    assert_eq!(code, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");

    assert_eq!(stack.decide(&approve, true, "fine", &[]).await.0, 202);
    assert_eq!(stack.decide(&reject, false, "raises", &[]).await.0, 202);
    let approved = stack.wait_for_stage(&approve, "approved").await;
    assert_eq!(approved["decision"]["comment"], "fine");
    stack.wait_for_stage(&reject, "rejected").await;
    assert_eq!(stack.decide(&approve, false, "late", &[]).await.0, 410);
}
