//! Blocking Kafka client work (creating and destroying consumers, offset
//! look-ups) runs here, on threads started from the unpinned main thread:
//! librdkafka's own threads inherit the creating thread's CPU affinity, and
//! a gateway shard must never block on a network round trip.

use std::thread;

use thiserror::Error;

/// Jobs waiting for a worker; when full, `run` waits (async) for room.
pub const MAX_QUEUED_JOBS: usize = 4096;

/// A unit of blocking work.
type Job = Box<dyn FnOnce() + Send>;

/// The workers went away (process shutting down).
#[derive(Debug, Error)]
#[error("Kafka worker threads stopped")]
pub struct WorkersGone;

/// Handle on the worker threads; cheap to clone, one per shard.
#[derive(Clone)]
pub struct KafkaWorkers {
    jobs: flume::Sender<Job>,
}

impl KafkaWorkers {
    /// Starts `threads` workers. Call from an unpinned thread.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = flume::bounded::<Job>(MAX_QUEUED_JOBS);
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            thread::Builder::new().name(format!("kafka-worker-{i}")).spawn(move || {
                while let Ok(job) = queue.recv() {
                    job();
                }
            })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a worker thread and waits for its result without
    /// blocking the executor.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, WorkersGone> {
        let (reply, result) = flume::bounded(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs.send_async(job).await.map_err(|_| WorkersGone)?;
        result.recv_async().await.map_err(|_| WorkersGone)
    }

    /// Runs `work` on a worker thread without waiting (e.g. dropping a
    /// consumer, which joins librdkafka's threads).
    pub fn detach(&self, work: impl FnOnce() + Send + 'static) {
        if let Err(flume::TrySendError::Full(job)) = self.jobs.try_send(Box::new(work)) {
            // Queue full: do it here rather than leak; rare and bounded.
            (job)();
        }
    }
}
