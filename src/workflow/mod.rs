//! The code-evaluation workflow: the orchestration and its run-code activity.
