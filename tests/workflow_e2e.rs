//! The main job end to end through HTTP on the embedded default (`handler dev`): real Python in
//! the local interpreter, the embedded task hub, the worker, the three functions.

mod common;

use common::stack::DevStack;

fn stack(env: &[(&str, &str)]) -> (DevStack, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (DevStack::start(dir.path(), env), dir)
}

#[tokio::test]
async fn approve_a_computation() {
    let (stack, _dir) = stack(&[]);
    let id = stack
        .submit_ok("import math\nprint(math.factorial(5))\n6 * 7")
        .await;

    let waiting = stack.wait_for_stage(&id, "awaiting_approval").await;
    assert_eq!(waiting["runtimeStatus"], "Running");
    assert_eq!(waiting["evaluation"]["status"], "succeeded");
    assert_eq!(waiting["evaluation"]["stdout"], "120\n");
    assert!(waiting["approvalDeadline"].is_string());
    assert!(waiting.get("decision").is_none());
    assert_eq!(
        waiting["code"], "import math\nprint(math.factorial(5))\n6 * 7",
        "reviewers see the code"
    );

    let (code, body) = stack
        .decide(
            &id,
            true,
            "looks right",
            &[("x-ms-client-principal-name", "rev@example.com")],
        )
        .await;
    assert_eq!(code, 202, "{body}");

    let done = stack.wait_for_stage(&id, "approved").await;
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(done["decision"]["approved"], true);
    assert_eq!(done["decision"]["by"], "rev@example.com");
    assert_eq!(done["decision"]["comment"], "looks right");
    assert_eq!(
        done["evaluation"]["stdout"], "120\n",
        "the evaluation stays visible"
    );
}

#[tokio::test]
async fn reject_code_that_raises_and_code_that_does_not_compile() {
    let (stack, _dir) = stack(&[]);
    let raises = stack
        .submit_ok("def f():\n    raise ValueError('bad input')\nf()")
        .await;
    let broken = stack.submit_ok("def f(:\n    pass").await;

    let raised = stack.wait_for_stage(&raises, "awaiting_approval").await;
    assert_eq!(raised["evaluation"]["status"], "failed");
    let stderr = raised["evaluation"]["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("ValueError") && stderr.contains("bad input"),
        "{stderr}"
    );

    let syntax = stack.wait_for_stage(&broken, "awaiting_approval").await;
    assert_eq!(syntax["evaluation"]["status"], "failed");
    assert!(
        syntax["evaluation"]["stderr"]
            .as_str()
            .unwrap()
            .contains("SyntaxError")
    );

    let (code, _) = stack.decide(&raises, false, "raises", &[]).await;
    assert_eq!(code, 202);
    let done = stack.wait_for_stage(&raises, "rejected").await;
    assert_eq!(done["decision"]["approved"], false);
    assert_eq!(done["decision"]["comment"], "raises");
}

#[tokio::test]
async fn nobody_answering_means_timed_out() {
    let (stack, _dir) = stack(&[("APPROVAL_TIMEOUT", "2s")]);
    let id = stack.submit_ok("print('hello')").await;
    let done = stack.wait_for_stage(&id, "timed_out").await;
    assert_eq!(done["runtimeStatus"], "Completed");
    assert_eq!(done["decision"]["approved"], false);
    assert!(done["decision"]["by"].is_null());

    let (code, body) = stack.decide(&id, true, "too late", &[]).await;
    assert_eq!(code, 410, "{body}");
    assert_eq!(body["status"], 410);
    let after = stack.wait_for_stage(&id, "timed_out").await;
    assert_eq!(
        after["decision"]["approved"], false,
        "a late approval changes nothing"
    );
}

#[tokio::test]
async fn slow_code_runs_and_endless_code_times_out() {
    let (stack, _dir) = stack(&[("EXECUTION_TIMEOUT", "4s")]);
    let slow = stack
        .submit_ok("import time\ntime.sleep(1.5)\nprint('done')")
        .await;
    let endless = stack.submit_ok("while True:\n    pass").await;

    let slow = stack.wait_for_stage(&slow, "awaiting_approval").await;
    assert_eq!(slow["evaluation"]["status"], "succeeded");
    assert_eq!(slow["evaluation"]["stdout"], "done\n");
    assert!(slow["evaluation"]["durationMs"].as_u64().unwrap() >= 1500);

    let endless = stack.wait_for_stage(&endless, "awaiting_approval").await;
    assert_eq!(endless["evaluation"]["status"], "timed_out", "{endless}");
    let stderr = endless["evaluation"]["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("time limit") || stderr.contains("Timeout"),
        "{stderr}"
    );
}

#[tokio::test]
async fn duplicate_approvals_and_unknown_ids_and_self_approval() {
    let (stack, _dir) = stack(&[]);
    let alice = [
        ("x-ms-client-principal-id", "alice-oid"),
        ("x-ms-client-principal-name", "alice@example.com"),
    ];
    let (code, body) = stack.submit("1 + 1", &alice).await;
    assert_eq!(code, 202);
    let id = body["id"].as_str().unwrap().to_owned();
    stack.wait_for_stage(&id, "awaiting_approval").await;

    let (code, body) = stack.decide(&id, true, "mine", &alice).await;
    assert_eq!(code, 403, "{body}");

    let bob = [("x-ms-client-principal-id", "bob-oid")];
    let (first, _) = stack.decide(&id, false, "first", &bob).await;
    assert_eq!(first, 202);
    let (second, _) = stack.decide(&id, true, "second", &bob).await;
    assert!(second == 202 || second == 410, "got {second}");
    let done = stack.wait_for_stage(&id, "rejected").await;
    assert_eq!(
        done["decision"]["comment"], "first",
        "the first decision stands"
    );

    let (code, _) = stack.status("0123456789abcdef0123456789abcdef").await;
    assert_eq!(code, 404);
    let (code, _) = stack
        .decide("0123456789abcdef0123456789abcdef", true, "", &[])
        .await;
    assert_eq!(code, 404);
    let (code, _) = stack.status("not-an-id").await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn idempotent_resubmission_and_the_pending_list() {
    let (stack, _dir) = stack(&[]);
    let key = [("idempotency-key", "webhook-delivery-7")];
    let (first, one) = stack.submit("print('once')", &key).await;
    let (again, two) = stack.submit("print('once')", &key).await;
    assert_eq!((first, again), (202, 202));
    assert_eq!(one["id"], two["id"]);
    let id = one["id"].as_str().unwrap().to_owned();

    let other = stack.submit_ok("print('other')").await;
    stack.wait_for_stage(&id, "awaiting_approval").await;
    stack.wait_for_stage(&other, "awaiting_approval").await;

    let (code, list) = stack.list("awaiting_approval").await;
    assert_eq!(code, 200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(
        list["items"][0].get("code").is_none(),
        "listings leave the code out"
    );
    assert!(ids.contains(&id.as_str()) && ids.contains(&other.as_str()));

    stack.decide(&other, true, "", &[]).await;
    stack.wait_for_stage(&other, "approved").await;
    let (_, list) = stack.list("awaiting_approval").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, approved) = stack.list("approved").await;
    assert_eq!(approved["items"][0]["id"], other.as_str());

    // Paging one at a time visits both, then stops.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (code, page) = stack.list_page(1, token.as_deref()).await;
        assert_eq!(code, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["continuationToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 2, "paging does not end: {seen:?}");
    }
    seen.sort();
    let mut expected = vec![id.clone(), other.clone()];
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_crash_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = DevStack::start(dir.path(), &[]);
    let id = stack.submit_ok("print(sum(range(10)))").await;
    stack.wait_for_stage(&id, "awaiting_approval").await;

    stack.restart();
    let waiting = stack.wait_for_stage(&id, "awaiting_approval").await;
    assert_eq!(waiting["evaluation"]["stdout"], "45\n");
    let (code, _) = stack.decide(&id, true, "after restart", &[]).await;
    assert_eq!(code, 202);
    let done = stack.wait_for_stage(&id, "approved").await;
    assert_eq!(done["decision"]["comment"], "after restart");
}
