//! Which worker the current thread is, so per-core resources (each provider's connection pool) are
//! picked without a lock. moatd's thread-per-core server runs one current-thread runtime per core and
//! calls [`enter`] on each of those threads; anywhere else (tests, the CLI, a multi-thread runtime)
//! the thread is worker 0 of 1.
//!
//! Why it matters: a pooled upstream connection is driven by a task on the runtime that opened it.
//! Used from another core's runtime, every request and every chunk would cross threads, the wake-ups
//! a thread-per-core design is meant to remove (docs/BENCHMARKS.md).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many workers there are; per-core resources built after [`set_count`] come in this many copies.
static COUNT: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Sets the number of workers. Call it before building the [`crate::Upstream`]s that should have one
/// pool per worker.
pub fn set_count(workers: usize) {
    COUNT.store(workers.max(1), Ordering::Relaxed);
}

/// The number of workers (at least 1).
pub fn count() -> usize {
    COUNT.load(Ordering::Relaxed)
}

/// Marks the current thread as worker `index`.
pub fn enter(index: usize) {
    INDEX.with(|i| i.set(index));
}

/// The current thread's worker index (0 unless [`enter`] said otherwise).
pub fn current() -> usize {
    INDEX.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_worker_zero_until_they_enter() {
        assert_eq!(current(), 0);
        let seen = std::thread::spawn(|| {
            enter(3);
            current()
        })
        .join()
        .unwrap();
        assert_eq!(seen, 3);
        assert_eq!(current(), 0);
    }
}
