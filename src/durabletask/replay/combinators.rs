//! Waiting on several tasks at once. These are local: nothing about them is recorded in history.

use std::future::Future;
use std::pin::pin;

pub use futures::future::Either;

/// Waits for the first of `tasks` to finish and returns its index and output. The others are
/// dropped, which cancels them: a losing timer no longer matters, a losing event waiter takes no
/// later event. Ties go to the lowest index.
pub async fn when_any<F>(tasks: Vec<F>) -> (usize, F::Output)
where
    F: Future + Unpin,
{
    assert!(!tasks.is_empty(), "when_any needs at least one task");
    let (output, index, _losers) = futures::future::select_all(tasks).await;
    (index, output)
}

/// Waits for the first of two tasks of different types; the loser is dropped and so cancelled.
pub async fn race<A, B>(first: A, second: B) -> Either<A::Output, B::Output>
where
    A: Future,
    B: Future,
{
    let first = pin!(first);
    let second = pin!(second);
    match futures::future::select(first, second).await {
        Either::Left((output, _)) => Either::Left(output),
        Either::Right((output, _)) => Either::Right(output),
    }
}

/// Waits for every task and returns their outputs in order.
pub async fn when_all<F: Future>(tasks: Vec<F>) -> Vec<F::Output> {
    futures::future::join_all(tasks).await
}
