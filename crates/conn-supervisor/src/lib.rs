//! The fleet supervisor: configuration, the tower stack, the supervision loop and the
//! admin API, wired from the library crates.

pub mod cli;
pub mod commands;
pub mod config;
pub mod logging;
pub mod tools;
