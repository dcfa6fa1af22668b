//! Running one handler on one event so that whatever goes wrong stays with that handler: an
//! error, a panic or running past the time-out comes back as a [`FailureKind`].

use std::any::Any;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tracing::Instrument;

use super::{EventEnvelope, EventHandler};

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// It returned an error (the message, with its causes).
    Error(String),
    /// It panicked (the panic message, when it had one).
    Panicked(String),
    /// It ran past the time-out and was stopped.
    TimedOut(Duration),
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => write!(f, "failed: {e}"),
            Self::Panicked(p) => write!(f, "panicked: {p}"),
            Self::TimedOut(t) => write!(f, "timed out after {t:?}"),
        }
    }
}

/// Runs `handler` on `event`, stopping it (dropping its future) after `timeout`, in a
/// span that carries the event's correlation id and actor: whatever the handler logs can
/// be followed back to the command that caused it.
///
/// `handle` is called inside the caught future, so a panic while building the handler's
/// future is caught like one while polling it. Unwind safety is asserted because a handler
/// that panicked is only reported, never called again on state it may have left behind
/// within this call.
pub(crate) async fn run_isolated(
    handler: &dyn EventHandler,
    event: &EventEnvelope,
    timeout: Duration,
) -> Result<(), FailureKind> {
    let span = tracing::info_span!(
        "handler",
        handler = handler.name(),
        sequence = event.sequence,
        event_id = %event.event_id,
        correlation_id = %event.correlation_id,
        actor = %event.actor,
    );
    let call = AssertUnwindSafe(async { handler.handle(event).await }).catch_unwind();
    match tokio::time::timeout(timeout, call).instrument(span).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(error))) => Err(FailureKind::Error(format!("{error:#}"))),
        Ok(Err(panic)) => Err(FailureKind::Panicked(panic_message(&*panic))),
        Err(_elapsed) => Err(FailureKind::TimedOut(timeout)),
    }
}

/// The text of a panic payload (panics carry a `&str` or a `String` in practice).
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let from_str = std::panic::catch_unwind(|| panic!("boom")).unwrap_err();
        assert_eq!(panic_message(&*from_str), "boom");
        let from_string = std::panic::catch_unwind(|| panic!("{} {}", "formatted", 1)).unwrap_err();
        assert_eq!(panic_message(&*from_string), "formatted 1");
    }
}
