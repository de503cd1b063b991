//! Real-time scheduling for the agent process (SCHED_RR), as heartbeat daemons such as
//! corosync and keepalived use: on a node whose cores are busy with workloads, a
//! normal-priority agent runs its timers and reads its socket late, its peers count
//! it dead and groups move without a fault. Measured in docs/comparison.md.
//!
//! Owns the one system call that changes the scheduling policy. Must never be called
//! after the runtime started its threads: a policy set here applies to the calling
//! thread, and only threads created afterwards inherit it.
#![allow(unsafe_code)]

use std::io;

/// Lowest and highest SCHED_RR priority Linux accepts.
pub const PRIORITIES: std::ops::RangeInclusive<u8> = 1..=99;

#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("SCHED_RR priority {0} is outside 1..=99")]
    OutOfRange(u8),
    #[error(
        "cannot run at SCHED_RR priority {priority}: the process needs CAP_SYS_NICE (and, \
         on kernels with real-time group scheduling, a real-time CPU budget for its cgroup)"
    )]
    Denied {
        priority: u8,
        #[source]
        source: io::Error,
    },
}

/// Switches the calling thread, and so every thread it creates afterwards, to
/// SCHED_RR at `priority`.
pub fn run_realtime(priority: u8) -> Result<(), RealtimeError> {
    if !PRIORITIES.contains(&priority) {
        return Err(RealtimeError::OutOfRange(priority));
    }
    let param = sched_param(i32::from(priority));
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call;
    // pid 0 names the calling thread. The call reads `param` and changes nothing else.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(RealtimeError::Denied {
            priority,
            source: io::Error::last_os_error(),
        })
    }
}

/// A sched_param at `priority`. Not a struct literal: musl's sched_param has more
/// fields than glibc's (the SCHED_SPORADIC ones, unused by SCHED_RR), and the image's
/// static musl build must compile too.
fn sched_param(priority: i32) -> libc::sched_param {
    // SAFETY: sched_param is a C struct of integers (and, on musl, timespecs of
    // integers): all zeroes is a valid value of it.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = priority;
    param
}

/// The calling thread's scheduling policy and priority.
pub fn current() -> io::Result<(i32, i32)> {
    // SAFETY: sched_getscheduler takes no pointer; pid 0 is the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut param = sched_param(0);
    // SAFETY: `param` is valid for writes for the duration of the call.
    if unsafe { libc::sched_getparam(0, &mut param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((policy, param.sched_priority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_priorities_are_refused_before_any_call() {
        assert!(matches!(run_realtime(0), Err(RealtimeError::OutOfRange(0))));
        assert!(matches!(
            run_realtime(100),
            Err(RealtimeError::OutOfRange(100))
        ));
    }

    /// In a thread of its own, so the test harness keeps its policy.
    #[test]
    fn a_thread_runs_at_the_priority_and_its_children_inherit_it() {
        let outcome = std::thread::spawn(|| {
            run_realtime(7).map(|()| {
                let own = current().expect("own policy");
                let child = std::thread::spawn(|| current().expect("child policy"))
                    .join()
                    .expect("child thread");
                (own, child)
            })
        })
        .join()
        .expect("test thread");
        match outcome {
            Ok((own, child)) => {
                assert_eq!(own, (libc::SCHED_RR, 7));
                assert_eq!(child, (libc::SCHED_RR, 7));
            }
            // Without CAP_SYS_NICE: the refusal must say so.
            Err(e @ RealtimeError::Denied { .. }) => {
                assert!(e.to_string().contains("CAP_SYS_NICE"));
                assert!(!has_cap_sys_nice(), "refused with CAP_SYS_NICE: {e}");
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    /// Whether CAP_SYS_NICE (bit 23) is in this process's effective set.
    fn has_cap_sys_nice() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            })
            .is_some_and(|caps| caps & (1 << 23) != 0)
    }
}
