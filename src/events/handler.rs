//! What reacts to events: the [`EventHandler`] trait, [`Topic`]s to subscribe to, and a
//! closure adapter for small handlers and tests.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;

use super::EventEnvelope;
use crate::domain::EventType;

/// Why a handler failed. Handlers report anything; the bus only logs and counts it.
pub type HandlerError = anyhow::Error;

/// Something that reacts to committed domain events.
///
/// Handlers must be idempotent: durable subscribers deliver at least once across crashes,
/// and an admin may replay events into them.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// A stable name, used in logs, statistics and as a durable subscriber's checkpoint key.
    fn name(&self) -> &str;

    /// Reacts to one event. An error, a panic or running past the bus's time-out is logged
    /// and counted; it never reaches the publisher or the other handlers.
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError>;
}

/// What a subscription listens to: one event type, or every event (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every event (written `*`).
    All,
    /// Events of one type.
    Type(EventType),
}

impl Topic {
    /// Whether an event of type `event_type` is delivered to this topic.
    pub fn matches(&self, event_type: EventType) -> bool {
        match self {
            Self::All => true,
            Self::Type(t) => *t == event_type,
        }
    }
}

impl From<EventType> for Topic {
    fn from(value: EventType) -> Self {
        Self::Type(value)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Type(t) => t.fmt(f),
        }
    }
}

impl FromStr for Topic {
    type Err = String;

    /// `*` for every event, otherwise an event type name (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "*" {
            return Ok(Self::All);
        }
        s.parse::<EventType>().map(Self::Type)
    }
}

/// An [`EventHandler`] made from a closure; see [`handler_fn`].
pub struct FnHandler<F> {
    name: String,
    f: F,
}

/// Makes a handler from a closure that takes the event and returns a future.
///
/// The closure reads what it needs from the borrowed event and returns a `'static` future,
/// which keeps closures free of lifetime gymnastics:
///
/// ```
/// # use personae::events::handler_fn;
/// let handler = handler_fn("print-sequence", |event| {
///     let sequence = event.sequence;
///     async move {
///         println!("{sequence}");
///         Ok(())
///     }
/// });
/// # let _ = handler;
/// ```
pub fn handler_fn<F, Fut>(name: impl Into<String>, f: F) -> Arc<FnHandler<F>>
where
    F: Fn(&EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    Arc::new(FnHandler {
        name: name.into(),
        f,
    })
}

#[async_trait]
impl<F, Fut> EventHandler for FnHandler<F>
where
    F: Fn(&EventEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        (self.f)(event).await
    }
}

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnHandler")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_is_the_wildcard_topic() {
        assert_eq!("*".parse::<Topic>().unwrap(), Topic::All);
        assert_eq!(" * ".parse::<Topic>().unwrap(), Topic::All);
    }

    #[test]
    fn event_type_names_parse_to_typed_topics() {
        assert_eq!(
            "PersonalityRemoved".parse::<Topic>().unwrap(),
            Topic::Type(EventType::PersonalityRemoved)
        );
        assert!("NoSuchEvent".parse::<Topic>().is_err());
    }

    #[test]
    fn topics_print_as_they_parse() {
        for topic in EventType::ALL
            .into_iter()
            .map(Topic::Type)
            .chain([Topic::All])
        {
            assert_eq!(topic.to_string().parse::<Topic>().unwrap(), topic);
        }
    }

    #[test]
    fn the_wildcard_matches_every_type_and_a_type_only_itself() {
        for t in EventType::ALL {
            assert!(Topic::All.matches(t));
            assert!(Topic::Type(t).matches(t));
        }
        assert!(!Topic::Type(EventType::PersonalityCreated).matches(EventType::PersonalityRemoved));
    }
}
