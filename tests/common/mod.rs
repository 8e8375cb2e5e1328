//! Helpers shared by the scenario tests. Each test file uses only some of them.
#![allow(dead_code)]

pub mod backend;
pub mod fake_backend;
pub mod python;
pub mod stack;
pub mod tools;
