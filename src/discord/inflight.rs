//! Work in progress, so that a shutdown lets it finish: messages being answered and slash
//! commands being run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashSet;
use tokio::sync::Notify;

/// Counts what is in flight and wakes a waiter when nothing is.
#[derive(Default)]
pub struct InFlight {
    messages: AtomicUsize,
    commands: DashSet<u64>,
    idle: Notify,
}

/// Marks one message as being answered until dropped.
pub struct MessageGuard<'a>(&'a InFlight);

impl Drop for MessageGuard<'_> {
    fn drop(&mut self) {
        self.0.messages.fetch_sub(1, Ordering::AcqRel);
        self.0.idle.notify_waiters();
    }
}

impl InFlight {
    /// A message starts being answered.
    pub fn message(&self) -> MessageGuard<'_> {
        self.messages.fetch_add(1, Ordering::AcqRel);
        MessageGuard(self)
    }

    /// A command (by interaction id) starts.
    pub fn command_started(&self, interaction: u64) {
        self.commands.insert(interaction);
    }

    /// A command finished, successfully or not. Safe to call twice.
    pub fn command_finished(&self, interaction: u64) {
        if self.commands.remove(&interaction).is_some() {
            self.idle.notify_waiters();
        }
    }

    /// How much is in flight.
    pub fn count(&self) -> usize {
        self.messages.load(Ordering::Acquire) + self.commands.len()
    }

    /// Waits until nothing is in flight; false if `timeout` passed first.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() == 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn waits_for_messages_and_commands_to_finish() {
        let inflight = Arc::new(InFlight::default());
        inflight.command_started(1);
        let worker = Arc::clone(&inflight);
        let task = tokio::spawn(async move {
            let _guard = worker.message();
            tokio::time::sleep(Duration::from_millis(50)).await;
            worker.command_finished(1);
            worker.command_finished(1);
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(inflight.count(), 2);
        assert!(!inflight.wait_idle(Duration::from_millis(5)).await);
        assert!(inflight.wait_idle(Duration::from_secs(5)).await);
        task.await.unwrap();
        assert_eq!(inflight.count(), 0);
    }
}
