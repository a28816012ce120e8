//! Wakes a shard's poller as soon as one of its Kafka consumers has
//! something to read, instead of leaving a bar in librdkafka's queue until
//! the poller's next pass.
//!
//! librdkafka calls the callback set by [`Arrivals::watch`] from its own
//! thread whenever a consumer's queue goes from empty to non-empty; the
//! callback only drops a token into a one-slot channel, and the poller
//! waits on that channel (with a time limit, for the work that no message
//! announces, such as refilling an outbox that has room again).

use std::time::Duration;

use glommio::timer::sleep;

use crate::kafka::Reader;

/// One shard's wake-up signal; clones share it.
#[derive(Clone)]
pub struct Arrivals {
    tokens: flume::Sender<()>,
    waiting: flume::Receiver<()>,
}

impl Default for Arrivals {
    fn default() -> Self {
        let (tokens, waiting) = flume::bounded(1);
        Self { tokens, waiting }
    }
}

impl Arrivals {
    /// Makes `consumer` signal here whenever its queue becomes non-empty.
    /// Call before the consumer is shared; the callback lives as long as it.
    pub fn watch(&self, consumer: &mut Reader) {
        let tokens = self.tokens.clone();
        // Runs on a librdkafka thread and must not call into librdkafka; a
        // full slot already means "look again".
        consumer.set_nonempty_callback(move || {
            let _ = tokens.try_send(());
        });
    }

    /// Waits until a watched consumer signals or `at_most` passes; a signal
    /// that came while the poller was busy ends the wait at once.
    pub async fn wait(&self, at_most: Duration) {
        futures_lite::future::or(
            async {
                let _ = self.waiting.recv_async().await;
            },
            sleep(at_most),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::runtime::spawn_pinned;

    #[test]
    fn a_signal_ends_the_wait_at_once_and_is_used_up() {
        let arrivals = Arrivals::default();
        // What the librdkafka callback does, from another thread.
        let tokens = arrivals.tokens.clone();
        let executor = spawn_pinned("arrivals-test", 0, move || async move {
            let signaller = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                tokens.try_send(()).is_ok()
            });
            let started = Instant::now();
            arrivals.wait(Duration::from_secs(60)).await;
            let woken_after = started.elapsed();
            let sent = signaller.join().unwrap_or(false);
            // Used up: with no further signal the next wait runs to its limit.
            let started = Instant::now();
            arrivals.wait(Duration::from_millis(20)).await;
            (sent, woken_after, started.elapsed())
        })
        .expect("executor starts");
        let (sent, woken_after, second) = executor.join().expect("executor finishes");
        assert!(sent);
        assert!(woken_after < Duration::from_secs(60), "not woken by the signal: {woken_after:?}");
        assert!(second >= Duration::from_millis(20), "woken without a signal after {second:?}");
    }
}
