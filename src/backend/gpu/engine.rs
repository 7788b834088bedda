//! [`Engine`]: the one owner of the device queue's completions. Workers record their work and
//! hand it to [`Engine::submit`] with what to run once the device has finished it (pooled
//! buffers going home, a mapped read-back announcing itself); one completion thread waits for
//! each submission in turn and runs those callbacks. So no worker ever blocks in
//! `device.poll`, and a wait covers exactly one submission, not everyone's.
//!
//! wgpu's `device.poll(Wait)` holds only a shared lock while it waits, so submissions from
//! workers go on while the completion thread waits (an explicit `Buffer::destroy` would take
//! that lock exclusively and stall them: strata never calls it).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Work to run on the completion thread once a submission is done. Keep it short: it delays
/// every later completion.
pub(super) type Completion = Box<dyn FnOnce() + Send>;

/// Counters of the engine, for reports and tests.
#[derive(Debug, Default)]
pub(super) struct EngineCounters {
    /// command buffers submitted
    pub(super) submissions: AtomicU64,
    /// blocking waits for the device by any thread other than the completion thread
    pub(super) blocking_waits: AtomicU64,
    /// of those, waits by rayon worker threads (the executor's workers)
    pub(super) worker_waits: AtomicU64,
    /// nanoseconds the completion thread spent waiting for the device
    pub(super) device_wait_ns: AtomicU64,
}

struct State {
    /// submissions not yet seen complete, oldest first: our sequence number, wgpu's index,
    /// and what to run when it is done
    pending: VecDeque<(u64, wgpu::SubmissionIndex, Vec<Completion>)>,
    /// sequence number of the last submission
    submitted: u64,
    /// a buffer mapping was asked for outside a submission: poll once even with nothing pending
    poll_wanted: bool,
    /// the context is going away
    closing: bool,
}

struct Shared {
    device: wgpu::Device,
    queue: wgpu::Queue,
    state: Mutex<State>,
    /// wakes the completion thread
    work: Condvar,
    counters: Arc<EngineCounters>,
    /// the context's first device failure (see `GpuContext::check`)
    failure: Arc<std::sync::OnceLock<String>>,
}

/// The queue's submissions and completions, and the thread that waits for them.
pub(super) struct Engine {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts the completion thread for this device and queue.
    pub(super) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        counters: Arc<EngineCounters>,
        failure: Arc<std::sync::OnceLock<String>>,
    ) -> Self {
        let shared = Arc::new(Shared {
            device,
            queue,
            state: Mutex::new(State {
                pending: VecDeque::new(),
                submitted: 0,
                poll_wanted: false,
                closing: false,
            }),
            work: Condvar::new(),
            counters,
            failure,
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("strata-gpu-completions".into())
            .spawn(move || completion_loop(&worker))
            .expect("spawning the GPU completion thread");
        Engine {
            shared,
            thread: Some(thread),
        }
    }

    /// Submits `commands`; `then` runs on the completion thread once the device has finished
    /// them. Returns the submission's sequence number. Costs the
    /// driver's submit (microseconds); never waits for the device.
    pub(super) fn submit(&self, commands: wgpu::CommandBuffer, then: Vec<Completion>) -> u64 {
        let s = &self.shared;
        // One lock around submit and enqueue keeps sequence numbers in submission order.
        let mut state = lock(&s.state);
        let index = s.queue.submit([commands]);
        state.submitted += 1;
        let seq = state.submitted;
        state.pending.push_back((seq, index, then));
        drop(state);
        s.counters.submissions.fetch_add(1, Ordering::Relaxed);
        s.work.notify_one();
        seq
    }

    /// A handle that asks the completion thread to poll (see [`Kicker::poll_soon`]).
    pub(super) fn kicker(&self) -> Kicker {
        Kicker(self.shared.clone())
    }

    /// Counts a blocking wait for the device by the calling thread (a worker's separately):
    /// the executor's paths never take one; direct calls from outside a computation and the
    /// pieces of blocks beyond one binding do.
    pub(super) fn count_blocking_wait(&self) {
        let c = &self.shared.counters;
        c.blocking_waits.fetch_add(1, Ordering::Relaxed);
        if rayon::current_thread_index().is_some() {
            c.worker_waits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Submissions not yet complete.
    pub(super) fn pending(&self) -> usize {
        lock(&self.shared.state).pending.len()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        lock(&self.shared.state).closing = true;
        self.shared.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks the completion thread to poll once.
#[derive(Clone)]
pub(super) struct Kicker(Arc<Shared>);

impl Kicker {
    /// Polls soon: a mapping was requested on a buffer whose last use may already be complete,
    /// so no pending submission would resolve it.
    pub(super) fn poll_soon(&self) {
        lock(&self.0.state).poll_wanted = true;
        self.0.work.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The completion thread: waits for the oldest pending submission (mappings and completions
/// of later ones that finished meanwhile fire in the same poll), then runs its callbacks.
fn completion_loop(s: &Shared) {
    loop {
        let next = {
            let mut state = lock(&s.state);
            while state.pending.is_empty() && !state.poll_wanted && !state.closing {
                state = s.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.closing && state.pending.is_empty() {
                return;
            }
            state.poll_wanted = false;
            state.pending.front().map(|(seq, index, _)| (*seq, index.clone()))
        };
        let began = Instant::now();
        // wgpu panics in poll on a lost device rather than returning an error: caught, that is
        // a failure like any other (the context's `check` reports it), not a dead thread
        // whose waiters never hear back
        let poll = || match &next {
            Some((_, index)) => s.device.poll(wgpu::PollType::Wait {
                submission_index: Some(index.clone()),
                timeout: None,
            }),
            None => s.device.poll(wgpu::PollType::Poll),
        };
        let polled = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(poll)) {
            Ok(polled) => polled.is_ok(),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|m| m.to_string()))
                    .unwrap_or_default();
                let _ = s.failure.set(format!("waiting for the device panicked: {message}"));
                false
            }
        };
        s.counters
            .device_wait_ns
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let mut state = lock(&s.state);
        if !polled {
            // A lost device: drop every callback (their buffers go with them); wgpu fails the
            // mappings, so readers hear of it, and later submissions report the loss.
            state.pending.clear();
            continue;
        }
        if next.is_none() {
            continue;
        }
        // The entry stays queued until its callbacks ran, so "nothing pending" means settled.
        let callbacks = match state.pending.front_mut() {
            Some((_, _, callbacks)) => std::mem::take(callbacks),
            None => continue,
        };
        drop(state);
        for callback in callbacks {
            callback();
        }
        lock(&s.state).pending.pop_front();
    }
}
