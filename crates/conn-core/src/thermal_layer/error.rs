//! The thermal layer's refusal.
//!
//! [`Overloaded`] is defined in `helo-transport`, beside `HeloError`, so that the one
//! classification of errors (`helo_transport::Outcome::of`) recognises shed work
//! without depending on this crate; this layer builds it and re-exports it.

pub use helo_transport::Overloaded;
