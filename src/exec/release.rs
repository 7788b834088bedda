//! Gives the memory a run has freed back to the operating system while the run goes on.

use std::time::{Duration, Instant};

/// Watches the bytes the scheduler holds and, once they have fallen well below their
/// high-water mark, asks the allocator to return its free pages to the system.
///
/// Why: glibc keeps freed blocks in one arena per thread, each at its own high-water mark,
/// and the sum of those marks is what the process keeps resident. On the tutorial's 1024²
/// area that was about 75 MB over what the run held at its peak, for the whole run. In
/// exploratory runs of that tutorial with the step and the interval as temporary knobs (3
/// runs each, one build): no release 501–524 MB peak resident, a release every 16 MiB
/// 442–468 MB, every 8 MiB 441–445 MB; later, with HTTP bodies copied out of hyper's
/// buffers, 8 MiB / 50 ms 360–375 MB, 4 MiB / 20 ms 355–370 MB, 2 MiB / 20 ms 346–362 MB
/// (releasing at every fall: 334–340 MB, but 17% more compute time). Cost: one
/// `malloc_trim` (a walk over the free lists, a millisecond or so) at most every 20 ms, and
/// page faults when the memory is used again (1–4% of the tutorial's compute time at 2 MiB /
/// 20 ms against 8 MiB / 50 ms).
#[derive(Debug)]
pub(super) struct FreedMemory {
    mark: u64,
    last: Instant,
}

impl Default for FreedMemory {
    fn default() -> Self {
        FreedMemory {
            mark: 0,
            last: Instant::now(),
        }
    }
}

impl FreedMemory {
    /// How far below the mark the held bytes must fall before memory is given back.
    const STEP: u64 = 2 << 20;
    /// The least time between two releases.
    const EVERY: Duration = Duration::from_millis(20);

    /// Notes that the run now holds `held` bytes; gives free memory back when that is well
    /// below the most held since the last release. Returns whether it did.
    pub(super) fn observe(&mut self, held: u64) -> bool {
        self.mark = self.mark.max(held);
        if held + Self::STEP >= self.mark || self.last.elapsed() < Self::EVERY {
            return false;
        }
        release_free_pages();
        self.mark = held;
        self.last = Instant::now();
        true
    }
}

/// Fixes glibc's thresholds for the process, once, before the first run, unless the user
/// set them (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, `GLIBC_TUNABLES`): blocks of
/// 4 MiB and more are mapped and unmapped on their own, and an arena hands back the free
/// memory at its top once it passes 1 MiB.
///
/// Why: glibc raises its mmap threshold to the largest mapped block ever freed (a run frees
/// many blocks of several MiB) and the trim threshold to twice that, so each thread's arena
/// went on keeping tens of MB free at its top. On the 32-scene tutorial (3 runs each, one
/// build) the peak resident memory was 353–362 MB with glibc's defaults and 334–342 MB with
/// these, in the same compute time (3.0–3.3 s against 3.1–3.2 s). Cost: two `mallopt` calls;
/// blocks of 4 MiB and more cost a map and an unmap each (their pages are written whole
/// anyway).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn fix_thresholds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let set_by_user = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if set_by_user {
            return;
        }
        // SAFETY: mallopt only changes the allocator's own parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
        }
    });
}

/// Nothing to do where the allocator is not glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn fix_thresholds() {}

/// Hands the free pages of the allocator's arenas back to the OS (glibc's `malloc_trim`;
/// nothing elsewhere). Costs about a millisecond per GB of heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn release_free_pages() {
    // SAFETY: malloc_trim only returns unused pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Nothing to do where the allocator is not glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn release_free_pages() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_goes_back_only_after_a_large_drop_and_not_too_often() {
        let mut m = FreedMemory {
            mark: 0,
            last: Instant::now() - Duration::from_secs(1),
        };
        assert!(!m.observe(100 << 20), "rising: nothing freed");
        assert!(
            !m.observe((100 << 20) - FreedMemory::STEP / 2),
            "half a step below: not enough"
        );
        assert!(
            m.observe((100 << 20) - 2 * FreedMemory::STEP),
            "two steps below: released"
        );
        // the mark is now 100 MiB - 2 steps, and the last release just happened
        assert!(!m.observe(80 << 20), "too soon after the last release");
        m.last = Instant::now() - Duration::from_secs(1);
        assert!(m.observe(80 << 20));
    }
}
