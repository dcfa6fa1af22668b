//! Tests of the application built in this process from the library: the service, the bus and
//! durable delivery, the caches, validation, and crashes of a child process running it.
//!
//! One binary for all of them, so they link once. The crash tests re-run this binary as the
//! child with an exact test name (`module::test`).

mod backup;
mod bus;
mod concurrency;
mod crash_consistency;
mod dependencies;
mod durability;
mod durable;
mod hostile_input;
mod properties;
mod service;
mod several;
mod startup;
mod tracking;
mod upgrade;
mod validation;
