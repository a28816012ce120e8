//! Executors, pinning and shutdown. Every role runs on a glommio executor
//! pinned to its own core; this module starts them and turns io_uring
//! start-up failures into messages that say what to do.

pub mod shutdown;

use std::future::Future;

use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;

pub use shutdown::Shutdown;

/// Memory glommio registers with io_uring per executor. Sockets do not use
/// it, so it stays small enough for the default 8 MiB memlock limit.
pub const IO_MEMORY_BYTES: usize = 512 * 1024;

/// Depth of each executor's io_uring rings.
pub const RING_DEPTH: usize = 512;

/// Memlock limit this process asks for, so io_uring rings fit with room.
const WANT_MEMLOCK_BYTES: u64 = 64 * 1024 * 1024;

/// Why an executor did not start or ended badly.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// glommio could not create the executor (io_uring setup, memlock,
    /// pinning).
    #[error(
        "could not start the {name} executor on core {core}: {reason}.\n  klinecast needs Linux io_uring \
         (kernel 5.8 or newer) and enough locked memory: check `ulimit -l` (raise it, e.g. `ulimit -l 65536`, \
         or set LimitMEMLOCK= in a systemd unit) and that io_uring is not disabled (sysctl kernel.io_uring_disabled)."
    )]
    Start {
        /// Executor name.
        name: String,
        /// The core it was to be pinned to.
        core: usize,
        /// glommio's error, as text (it is not `Sync`).
        reason: String,
    },
    /// The executor's task panicked or the thread died.
    #[error("the {name} executor failed: {reason}")]
    Join {
        /// Executor name.
        name: String,
        /// What happened.
        reason: String,
    },
}

/// A started executor.
pub struct Executor<T: Send + 'static> {
    name: String,
    handle: glommio::ExecutorJoinHandle<T>,
}

impl<T: Send + 'static> Executor<T> {
    /// Waits for the executor's main task to finish.
    pub fn join(self) -> Result<T, RuntimeError> {
        self.handle.join().map_err(|e| RuntimeError::Join { name: self.name, reason: e.to_string() })
    }
}

/// Starts `main` on a new executor named `name`, pinned to `core`.
pub fn spawn_pinned<F, Fut, T>(name: &str, core: usize, main: F) -> Result<Executor<T>, RuntimeError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let handle = LocalExecutorBuilder::new(Placement::Fixed(core))
        .name(name)
        .io_memory(IO_MEMORY_BYTES)
        .ring_depth(RING_DEPTH)
        .spawn(main)
        .map_err(|e| RuntimeError::Start { name: name.to_owned(), core, reason: e.to_string() })?;
    Ok(Executor { name: name.to_owned(), handle })
}

/// The cores executors are pinned to: `wanted` if given, else every core the
/// process may run on. Never empty.
pub fn cores(wanted: &[usize]) -> Vec<usize> {
    if !wanted.is_empty() {
        return wanted.to_vec();
    }
    let mut ids: Vec<usize> = core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
    if ids.is_empty() {
        ids.push(0);
    }
    ids
}

/// Raises the soft limits this process needs: open files (one per client
/// connection) and locked memory (io_uring rings and glommio's buffers).
pub fn raise_limits() {
    raise_nofile(WANT_NOFILE);
    raise_memlock();
}

/// Open files this process asks for: 50,000+ connections need more than
/// the usual defaults (1,024 soft, often 20,000 hard).
pub const WANT_NOFILE: u64 = 262_144;

/// Raises the open-files limit to `want`: the hard limit too where allowed
/// (root), else the soft limit up to the hard one.
pub fn raise_nofile(want: u64) {
    let Ok((soft, hard)) = rlimit::Resource::NOFILE.get() else { return };
    if soft >= want {
        return;
    }
    if rlimit::Resource::NOFILE.set(want, want.max(hard)).is_err() {
        let _ = rlimit::Resource::NOFILE.set(want.min(hard), hard);
    }
    if let Ok((now, _)) = rlimit::Resource::NOFILE.get()
        && now < want
    {
        tracing::info!(open_files = now, "open-file limit below {want}; connections beyond it are refused");
    }
}

/// Raises the soft memlock limit towards [`WANT_MEMLOCK_BYTES`] (within the
/// hard limit).
fn raise_memlock() {
    let Ok((soft, hard)) = rlimit::Resource::MEMLOCK.get() else { return };
    if soft >= WANT_MEMLOCK_BYTES {
        return;
    }
    if let Err(error) = rlimit::Resource::MEMLOCK.set(WANT_MEMLOCK_BYTES.min(hard), hard) {
        tracing::debug!(%error, soft, "could not raise RLIMIT_MEMLOCK");
    }
}
