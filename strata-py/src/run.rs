//! Running a computation from Python: on its own thread with the GIL released, while the
//! calling thread wakes every 100 ms to report progress and to look for Ctrl-C, which
//! interrupts the run (its tasks stop within one task's time; nothing is left half-written).

use std::sync::mpsc;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use strata::{ComputeOptions, RunControl};

/// How often the waiting thread takes the GIL back to report progress and check signals.
const TICK: Duration = Duration::from_millis(100);

/// Runs `job(options)` on a thread of its own with the GIL released; `options` carry a
/// [`RunControl`]. `progress(done, total)` is called from the calling thread every tick and
/// once at the end. A `KeyboardInterrupt` (or any exception a signal handler raises)
/// interrupts the run and is raised once it has stopped.
pub fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    mut options: ComputeOptions,
    progress: Option<&Bound<'_, PyAny>>,
    job: impl FnOnce(ComputeOptions) -> strata::Result<T> + Send + 'static,
) -> PyResult<T> {
    let control = RunControl::new();
    options.control = Some(control.clone());
    let (tx, rx) = mpsc::channel();
    // `detach` needs a Sync borrow; only this thread receives
    let rx = std::sync::Mutex::new(rx);
    let worker = std::thread::Builder::new()
        .name("strata-compute".into())
        .spawn(move || {
            let _ = tx.send(job(options));
        })
        .map_err(|e| PyRuntimeError::new_err(format!("starting the compute thread: {e}")))?;
    let mut raised: Option<PyErr> = None;
    let result = loop {
        match py.detach(|| rx.lock().expect("one receiver").recv_timeout(TICK)) {
            Ok(result) => break result,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = py.detach(|| worker.join());
                return Err(PyRuntimeError::new_err("the compute thread ended without a result"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if raised.is_some() {
            continue;
        }
        if let Err(e) = py.check_signals() {
            control.interrupt();
            raised = Some(e);
            continue;
        }
        if let Some(cb) = progress {
            let (done, total) = control.progress();
            if let Err(e) = cb.call1((done, total)) {
                control.interrupt();
                raised = Some(e);
            }
        }
    };
    py.detach(|| worker.join())
        .map_err(|_| PyRuntimeError::new_err("the compute thread panicked"))?;
    if let Some(e) = raised {
        return Err(e);
    }
    if let Some(cb) = progress {
        let (done, total) = control.progress();
        cb.call1((done, total))?;
    }
    result.map_err(crate::errors::to_py)
}
