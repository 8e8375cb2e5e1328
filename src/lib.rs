//! Secure code evaluation with human approval.
//!
//! Submitted Python code runs in an isolated session under a durable orchestration, its evaluation is
//! published as the orchestration's custom status, and a person approves or rejects it before a
//! durable deadline. See `ARCHITECTURE.md` for the flow of one submission and the glossary.

pub mod app;
pub mod config;
pub mod dev;
pub mod durabletask;
pub mod functions;
pub mod runner;
pub mod sessions;
pub mod taskhub;
pub mod telemetry;
pub mod workflow;
