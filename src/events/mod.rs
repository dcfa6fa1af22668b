//! Committed domain events and who reacts to them: the in-process bus, handlers and topics,
//! and durable subscribers with checkpoints, retries and dead letters.

mod bus;
mod durable;
mod envelope;
mod handler;
mod isolation;
mod log;
mod stats;

pub use bus::{
    BusConfig, EventBus, HandlerFailure, PublishReport, Subscription, DEFAULT_HANDLER_TIMEOUT,
};
pub use durable::{
    CatchUpReport, DispatchError, Dispatcher, DurableConfig, DurableStatus, DurableSubscriber,
    RetryFailure, RetryPolicy, RetryReport,
};
pub use envelope::{EventEnvelope, SCHEMA_VERSION};
pub use handler::{handler_fn, EventHandler, FnHandler, HandlerError, Topic};
pub(crate) use isolation::panic_message;
pub use isolation::FailureKind;
pub use log::{DeadLetter, EventLog, LogError};
pub use stats::BusStats;
