//! Fetches started ahead are owned by tickets: a region prefetched and never read (the run
//! failed first) is cancelled when the run ends, its bytes freed; a region that was read is
//! not cancelled; what was fetched ahead was inside the memory budget.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndarray::ArrayD;
use strata::expr::{ChunkSource, Prefetch, SourceError};
use strata::{Array, ComputeOptions};

/// A remote-like source: `prefetch` "fetches" a region into memory (bytes held until read or
/// cancelled), `read` takes them; reading block 1 along the first axis fails.
#[derive(Debug, Default)]
struct Ahead {
    /// region start → bytes fetched and not yet read
    fetched: Arc<Mutex<HashMap<usize, Vec<f32>>>>,
    read: Mutex<Vec<usize>>,
    cancelled: Arc<Mutex<Vec<usize>>>,
    prefetched: Mutex<Vec<usize>>,
    /// most regions fetched and not yet read at once
    peak_held: Mutex<usize>,
}

impl ChunkSource for Ahead {
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<f32>, SourceError> {
        let at = region[0].start;
        std::thread::sleep(Duration::from_millis(20)); // decoding
        self.fetched.lock().unwrap().remove(&at);
        self.read.lock().unwrap().push(at);
        if at == 8 {
            return Err("block 1 is corrupt".into());
        }
        Ok(ArrayD::from_elem(vec![region[0].len(), region[1].len()], at as f32))
    }

    fn waits_on_io(&self) -> bool {
        true
    }

    fn prefetch(&self, region: &[Range<usize>]) -> Prefetch {
        let at = region[0].start;
        self.prefetched.lock().unwrap().push(at);
        {
            let mut fetched = self.fetched.lock().unwrap();
            fetched.insert(at, vec![0.0; region[0].len() * region[1].len()]);
            let mut peak = self.peak_held.lock().unwrap();
            *peak = (*peak).max(fetched.len());
        }
        let (fetched, cancelled) = (self.fetched.clone(), self.cancelled.clone());
        Prefetch::cancelling(move || {
            if fetched.lock().unwrap().remove(&at).is_some() {
                cancelled.lock().unwrap().push(at);
            }
        })
    }
}

#[test]
fn fetches_never_read_are_cancelled_and_freed_when_the_run_fails() {
    let source = Arc::new(Ahead::default());
    let a = Array::from_source(&[64 * 8, 256], vec![8, 256], source.clone());
    // 16 blocks of 8 KiB: fewer than the 22 reads the look-ahead would otherwise admit
    let budget = 128 << 10;
    let err = a
        .sum(strata::Axes::All)
        .compute_with(&ComputeOptions {
            threads: Some(2),
            memory_budget: Some(budget),
            ..Default::default()
        })
        .unwrap_err();
    match &err {
        strata::Error::Exec(strata::ExecError::Task {
            source: strata::backend::BackendError::Source { region, source, .. },
            ..
        }) => {
            assert_eq!(region[0].start, 8, "block 1");
            assert_eq!(source.to_string(), "block 1 is corrupt");
        }
        other => panic!("{other:?}"),
    }
    let prefetched = source.prefetched.lock().unwrap().clone();
    let read = source.read.lock().unwrap().clone();
    let cancelled = source.cancelled.lock().unwrap().clone();
    // Reads ran ahead of the failure: some regions were fetched and never read.
    assert!(
        prefetched.len() > read.len(),
        "prefetched {prefetched:?}, read {read:?}"
    );
    // Every one of those, and only those, was cancelled; nothing fetched is left held.
    let mut unread: Vec<usize> = prefetched.iter().copied().filter(|p| !read.contains(p)).collect();
    let mut cancelled_sorted = cancelled.clone();
    unread.sort_unstable();
    cancelled_sorted.sort_unstable();
    assert_eq!(cancelled_sorted, unread);
    assert!(
        source.fetched.lock().unwrap().is_empty(),
        "bytes still held after the run"
    );
    // What was fetched ahead at once stayed inside the budget the run reserved for it.
    let block_bytes = 8 * 256 * 4;
    let peak = *source.peak_held.lock().unwrap();
    assert!(
        peak > 1 && peak * block_bytes <= budget as usize,
        "{peak} blocks held at once"
    );
}

#[test]
fn a_successful_run_reads_every_prefetch_and_cancels_none() {
    #[derive(Debug, Default)]
    struct Fine(Ahead);
    impl ChunkSource for Fine {
        fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<f32>, SourceError> {
            self.0.fetched.lock().unwrap().remove(&region[0].start);
            Ok(ArrayD::from_elem(vec![region[0].len(), region[1].len()], 1.0))
        }
        fn waits_on_io(&self) -> bool {
            true
        }
        fn prefetch(&self, region: &[Range<usize>]) -> Prefetch {
            self.0.prefetch(region)
        }
    }
    let source = Arc::new(Fine::default());
    let a = Array::from_source(&[64 * 8, 256], vec![8, 256], source.clone());
    let budget = 128 << 10;
    let (got, report) = a
        .sum(strata::Axes::All)
        .compute_with(&ComputeOptions {
            threads: Some(2),
            memory_budget: Some(budget),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(got.sum(), (64 * 8 * 256) as f32);
    // The report shows the bytes held for reads in flight: at least what the source held
    // fetched and unread at once, and inside what the scheduler held, inside the budget.
    let block_bytes = 8 * 256 * 4;
    let held_by_source = *source.0.peak_held.lock().unwrap() as u64 * block_bytes;
    assert!(
        held_by_source > 0
            && report.peak_read_ahead_bytes >= held_by_source
            && report.peak_read_ahead_bytes <= report.peak_bytes
            && report.peak_bytes <= budget,
        "source held {held_by_source}, report {} of {} held, budget {budget}",
        report.peak_read_ahead_bytes,
        report.peak_bytes
    );
    assert_eq!(
        source.0.prefetched.lock().unwrap().len(),
        64,
        "every block fetched ahead once"
    );
    assert!(source.0.cancelled.lock().unwrap().is_empty());
    assert!(source.0.fetched.lock().unwrap().is_empty());
}
