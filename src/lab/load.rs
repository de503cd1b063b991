//! Bounded CPU load: busy workers on every core for the length of a scenario, so the
//! lab measures failover on a machine whose cores are busy (a node that also runs
//! workloads), not only on an idle one.
//!
//! Owns: the busy worker threads and their stop. Must never: outlive its deadline or
//! its guard — every worker checks both on every round of work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a load may last, whatever the caller asks: a forgotten guard must not
/// keep a machine busy for good.
pub const MAX_DURATION: Duration = Duration::from_secs(3 * 60 * 60);

/// How much work a worker does between two looks at its stop flag and deadline.
const SLICE: u32 = 20_000;

/// Busy workers running until the guard is dropped or `stop` is called, or until
/// their deadline.
pub struct CpuLoad {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<u64>>,
}

impl CpuLoad {
    /// Starts `workers` busy threads (0 starts none) that stop by themselves after
    /// `max` (at most [`MAX_DURATION`]).
    pub fn start(workers: usize, max: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + max.min(MAX_DURATION);
        let workers = (0..workers)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || spin(&stop, deadline))
            })
            .collect();
        CpuLoad { stop, workers }
    }

    /// One worker per core of this machine.
    pub fn every_core(max: Duration) -> Self {
        Self::start(cores(), max)
    }

    /// How many workers run.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Stops the workers and waits for them; returns the rounds of work they did in
    /// all (a proof that they ran).
    pub fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.workers
            .drain(..)
            .map(|worker| worker.join().unwrap_or(0))
            .sum()
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Cores this process may run on (1 when the system does not say).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Integer work the optimiser cannot remove, until told to stop or past `deadline`.
fn spin(stop: &AtomicBool, deadline: Instant) -> u64 {
    let mut rounds = 0u64;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        for _ in 0..SLICE {
            // xorshift: cheap, branch-free, keeps one core at 100 %.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        rounds = rounds.wrapping_add(1);
        std::hint::black_box(x);
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_run_and_stop_when_asked() {
        let load = CpuLoad::start(2, Duration::from_secs(60));
        assert_eq!(load.workers(), 2);
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        assert!(load.stop() > 0, "the workers did no work");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn workers_stop_by_themselves_at_the_deadline() {
        let load = CpuLoad::start(1, Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(200));
        assert!(load.workers.iter().all(|w| w.is_finished()));
    }

    #[test]
    fn no_workers_is_no_load() {
        assert_eq!(CpuLoad::start(0, Duration::from_secs(1)).stop(), 0);
    }
}
