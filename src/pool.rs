//! A fixed set of named threads for CPU-bound work (argon2, RSA signatures), fed by one queue.
//! Unlike tokio's elastic blocking pool, it never grows past its size: N threads on N cores
//! take jobs back to back without parking while the queue is full, and per-thread memory
//! (argon2's 19 MiB blocks) is bounded by N.

use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};

type Job = Box<dyn FnOnce() + Send>;

pub struct WorkPool {
    name: &'static str,
    tx: std::sync::mpsc::Sender<Job>,
}

impl WorkPool {
    /// `threads` threads named `keymint-{name}-{i}`; with `lower_priority` they run at nice 10,
    /// so that their work yields the cores to request handling.
    pub fn new(name: &'static str, threads: usize, lower_priority: bool) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("keymint-{name}-{i}"))
                .spawn(move || {
                    if lower_priority {
                        nice_this_thread();
                    }
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            // A panicking job loses only its own result (its caller gets an
                            // error); the thread lives on, so the pool never shrinks.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .map_err(Error::internal)?;
        }
        Ok(Self { name, tx })
    }

    /// One thread per core.
    pub fn per_core(name: &'static str, lower_priority: bool) -> Result<Self> {
        Self::new(name, cores(), lower_priority)
    }

    /// Run `f` on the pool and wait for its result without blocking the runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.send(move || {
            // The caller gave up (its request timed out or its client left): skip the work.
            if !done.is_closed() {
                let _ = done.send(f());
            }
        })?;
        result
            .await
            .map_err(|_| Error::internal(format!("{} pool lost a job", self.name)))
    }

    /// `run` for signatures: one that fails (no active key, the HSM refused) is 503.
    pub async fn sign<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<T> {
        self.run(f)
            .await?
            .map_err(|e| Error::new(ErrorCode::ServiceUnavailable, format!("cannot sign: {e}")))
    }

    fn send(&self, f: impl FnOnce() + Send + 'static) -> Result<()> {
        self.tx
            .send(Box::new(f))
            .map_err(|_| Error::internal(format!("{} pool stopped", self.name)))
    }
}

/// The machine's cores as this process may use them (2 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Nice 10 for the calling thread (Linux applies setpriority to a single thread id).
#[cfg(target_os = "linux")]
fn nice_this_thread() {
    // SAFETY: gettid and setpriority take and return plain integers; no memory is shared.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(not(target_os = "linux"))]
fn nice_this_thread() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_pool_keeps_its_threads() {
        let pool = WorkPool::new("test", 1, false).unwrap();
        for _ in 0..3 {
            let lost = pool.run(|| -> u32 { panic!("job panics") }).await;
            assert!(lost.is_err(), "the caller hears of the lost job");
        }
        assert_eq!(
            pool.run(|| 7).await.unwrap(),
            7,
            "the one thread still works"
        );
    }
}
