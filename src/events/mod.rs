//! The event bus, its middleware, and the durable dispatcher with checkpoints and dead letters.

mod bus;
mod durable;
mod envelope;
mod handler;
mod log;
mod memory_log;
mod middleware;
mod stats;

pub use bus::{
    BusConfig, EventBus, FailureKind, HandlerFailure, PublishReport, Subscription,
    DEFAULT_HANDLER_TIMEOUT,
};
pub use durable::{
    CatchUpReport, DispatchError, Dispatcher, DurableConfig, DurableStatus, DurableSubscriber,
    RetryFailure, RetryPolicy, RetryReport,
};
pub use envelope::{EventEnvelope, SCHEMA_VERSION};
pub use handler::{handler_fn, EventHandler, FnHandler, HandlerError, Topic};
pub use log::{DeadLetter, EventLog, LogError};
pub use memory_log::InMemoryEventLog;
pub use middleware::{middleware_fn, FnMiddleware, Middleware};
pub use stats::BusStats;
