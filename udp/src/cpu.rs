//! The calling thread's CPU time, for load measurement: a core's busy share
//! is the CPU its thread used over a sample, which, unlike the wall-clock
//! time between a turn's start and end, does not grow when the thread is
//! descheduled by other work on the host.

use std::time::Duration;

/// CPU time the calling thread has used since it started
/// (`CLOCK_THREAD_CPUTIME_ID`); `None` where the clock is unavailable.
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call, and CLOCK_THREAD_CPUTIME_ID is a clock id every Linux kernel
    // accepts; the call writes only `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_not_with_sleep() {
        let t0 = thread_cpu_time().expect("the clock exists on Linux");
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().unwrap() - t0;
        assert!(slept < Duration::from_millis(25), "{slept:?}");
        let t1 = thread_cpu_time().unwrap();
        let mut x = 0u64;
        while thread_cpu_time().unwrap() - t1 < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_time().unwrap() - t1 >= Duration::from_millis(20));
    }
}
