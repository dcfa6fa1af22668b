//! Middleware: sees each published event before any handler and may transform or drop it.

use std::fmt;
use std::sync::Arc;

use super::EventEnvelope;

/// A step every published event goes through, in the order middleware was added, before the
/// bus hands it to the live handlers.
///
/// It is synchronous on purpose: it runs on the command's path for every event, so it
/// should only look at or rewrite the envelope (filter, enrich, count), never do I/O.
/// Durable subscribers are not affected by middleware: they see events exactly as stored,
/// so their live path and their catch-up from the events table agree.
pub trait Middleware: Send + Sync + 'static {
    /// A name for logs.
    fn name(&self) -> &str {
        "middleware"
    }

    /// Returns the event to pass on (the same `Arc`, or a changed copy), or `None` to drop
    /// it for the live handlers.
    fn process(&self, event: Arc<EventEnvelope>) -> Option<Arc<EventEnvelope>>;
}

/// A [`Middleware`] made from a closure; see [`middleware_fn`].
pub struct FnMiddleware<F> {
    name: String,
    f: F,
}

/// Makes a middleware from a closure.
pub fn middleware_fn<F>(name: impl Into<String>, f: F) -> Arc<FnMiddleware<F>>
where
    F: Fn(Arc<EventEnvelope>) -> Option<Arc<EventEnvelope>> + Send + Sync + 'static,
{
    Arc::new(FnMiddleware {
        name: name.into(),
        f,
    })
}

impl<F> Middleware for FnMiddleware<F>
where
    F: Fn(Arc<EventEnvelope>) -> Option<Arc<EventEnvelope>> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&self, event: Arc<EventEnvelope>) -> Option<Arc<EventEnvelope>> {
        (self.f)(event)
    }
}

impl<F> fmt::Debug for FnMiddleware<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnMiddleware")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
