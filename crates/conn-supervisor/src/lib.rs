//! The fleet supervisor: configuration, the tower stack, the supervision loop and the
//! admin API, wired from the library crates.

pub mod admin;
pub mod changes;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod demo;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
pub mod nofile;
pub mod observer;
pub mod report;
pub mod settings;
pub mod stack;
mod supervise;
pub mod tools;
