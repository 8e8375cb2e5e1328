//! The generated protocol types and gRPC stubs of `TaskHubSidecarService`.
//!
//! The `.proto` has no package, so prost writes everything into a module named `_`; it is included
//! here under a real name. Clippy lints are relaxed for generated code only.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/_.rs"));
