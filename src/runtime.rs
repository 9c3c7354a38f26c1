//! A small tokio runtime of its own, for clients whose sockets must not live on the HTTP
//! workers' runtimes (PostgreSQL, AWS KMS): synchronous callers (the CT log's sequencer,
//! startup) block on it, asynchronous ones await tasks spawned on it. It shuts down without
//! blocking when dropped, so its owner may be dropped anywhere.

use std::future::Future;

/// A multi-threaded tokio runtime owned by one client.
pub(crate) struct Dedicated(Option<tokio::runtime::Runtime>);

impl Dedicated {
    /// Starts `threads` worker threads named `name`.
    pub(crate) fn new(name: &str, threads: usize) -> std::io::Result<Dedicated> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| Dedicated(Some(rt)))
    }

    /// Where to spawn tasks.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the runtime lives until drop")
            .handle()
    }

    /// Runs `f` to completion from synchronous code, also when called inside another
    /// runtime (startup runs inside the server's), by blocking a scoped thread instead.
    pub(crate) fn block_on<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.handle().block_on(f))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            self.handle().block_on(f)
        }
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
