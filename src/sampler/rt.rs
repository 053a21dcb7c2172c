//! The few system calls of the sampler thread: the monotonic clock, an
//! absolute-deadline sleep on it, real-time scheduling and locked memory.
//! The only `unsafe` of the crate lives here, each call a plain libc
//! function given valid pointers to locals.

use std::io;

/// Nanoseconds on CLOCK_MONOTONIC (what `std::time::Instant` uses on Linux).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until CLOCK_MONOTONIC reads `deadline_ns` (TIMER_ABSTIME: an
/// absolute deadline, so time spent working never shifts the schedule).
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        // `as _`: time_t's alias is deprecated on musl (its width will change).
        tv_sec: (deadline_ns / 1_000_000_000) as _,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; the remainder pointer may be null
        // with TIMER_ABSTIME.
        let rc =
            unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) };
        // Interrupted by a signal: sleep again to the same deadline.
        if rc != libc::EINTR {
            return;
        }
    }
}

/// Puts the calling thread under SCHED_FIFO at `priority` (1-99).
pub fn set_fifo(priority: u8) -> io::Result<()> {
    // Field by field: musl's sched_param has more fields than glibc's.
    // SAFETY: sched_param is plain integers, valid all zero.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = i32::from(priority.clamp(1, 99));
    // pthread_setschedparam, not sched_setscheduler: musl (the Pi build)
    // leaves that one unimplemented (ENOSYS), as Linux applies it to a thread
    // where POSIX means the process.
    // SAFETY: pthread_self() is the calling thread; `param` is valid.
    match unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) } {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Locks the process's memory, now and future, so no page fault stalls the
/// sampler.
pub fn lock_memory() -> io::Result<()> {
    // SAFETY: no pointers; flags are valid.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_advances_and_absolute_sleeps_end_after_their_deadline() {
        let t0 = monotonic_ns();
        let deadline = t0 + 2_000_000;
        sleep_until_ns(deadline);
        let t1 = monotonic_ns();
        assert!(t1 >= deadline, "woke {} ns early", deadline - t1);
        // A deadline in the past returns at once.
        sleep_until_ns(t0);
        assert!(monotonic_ns() >= t1);
    }
}
