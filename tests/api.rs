//! Behaviour through the public API: the tutorial's introduction, persist, the graph's shape,
//! the execution report, and typed errors for bad input.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use strata::backend::BackendError;
use strata::exec::Progress;
use strata::plan::TaskKind;
use strata::{Array, Axes, ComputeOptions, Error, ExecError, ExprError, Slice};

fn quiet() -> ComputeOptions {
    ComputeOptions {
        progress: Progress::Off,
        ..Default::default()
    }
}

#[test]
fn tutorial_introduction() {
    let ones = Array::ones(&[1000, 4000], [1000, 1000]);
    assert_eq!(ones.chunks(), vec![vec![1000], vec![1000; 4]]);
    assert_eq!(ones.nbytes(), 16_000_000);
    let values = ones.compute().unwrap();
    assert_eq!(values.shape(), &[1000, 4000]);
    assert!(values.iter().all(|&v| v == 1.0));

    let mean = (&ones * &ones.slice(&[Slice::reverse(), Slice::reverse()])).mean(Axes::All);
    assert_eq!(mean.shape(), &[] as &[usize]);
    assert_eq!(mean.compute_scalar().unwrap(), 1.0);
}

#[test]
fn the_graph_has_dasks_structure() {
    // dask draws: 4 ones → 4 getitem (flip) → 4 mul → 4 mean_chunk → 1 mean_agg
    let ones = Array::ones(&[1000, 4000], [1000, 1000]);
    let mean = (&ones * &ones.slice(&[Slice::reverse(), Slice::reverse()])).mean(Axes::All);
    let graph = mean.plan().unwrap();
    let count = |f: &dyn Fn(&TaskKind) -> bool| graph.tasks().iter().filter(|t| f(t.kind())).count();
    assert_eq!(count(&|k| matches!(k, TaskKind::Fill { .. })), 4);
    assert_eq!(count(&|k| matches!(k, TaskKind::Gather { .. })), 4);
    assert_eq!(count(&|k| matches!(k, TaskKind::Fused { .. })), 4);
    assert_eq!(count(&|k| matches!(k, TaskKind::ReducePartial { .. })), 4);
    assert_eq!(
        count(&|k| matches!(k, TaskKind::ReduceCombine { finalize: true, .. })),
        1
    );
    // the flip of block (0, j) reads block (0, 3 - j): each gather has one input
    for t in graph
        .tasks()
        .iter()
        .filter(|t| matches!(t.kind(), TaskKind::Gather { .. }))
    {
        assert_eq!(t.deps().len(), 1);
        assert_eq!(graph.tasks()[t.deps()[0]].block()[1], 3 - t.block()[1]);
    }
    let dot = graph.to_dot();
    assert!(dot.starts_with("digraph"));
    assert_eq!(dot.matches("mean-chunk").count(), 4);
    assert_eq!(dot.matches("mean-agg").count(), 1);
}

#[test]
fn visualize_draws_the_graph_as_svg() {
    // Graphviz renders the DOT (`.ci/run` installs it); without `dot` the test says how to get it.
    let dot_ok = std::process::Command::new("dot")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        dot_ok,
        "graphviz's `dot` is missing: apt-get install graphviz (visualize then writes only the .dot file)"
    );
    let ones = Array::ones(&[1000, 4000], [1000, 1000]);
    let mean = (&ones * &ones.slice(&[Slice::reverse(), Slice::reverse()])).mean(Axes::All);
    let dir = std::env::temp_dir().join(format!("strata-visualize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = mean.visualize(dir.join("mean")).unwrap();
    assert_eq!(svg.extension().and_then(|e| e.to_str()), Some("svg"), "{svg:?}");
    let text = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(text.contains("<svg"), "not an SVG");
    // As dask draws it: an ellipse per task (17: 4 fills, 4 flips, 4 fused, 4 mean-chunks,
    // 1 mean-agg) and a box per result, an edge from each task to its result and from each
    // result to every consumer.
    let graph = mean.plan().unwrap();
    assert_eq!(graph.tasks().len(), 17);
    let reads: usize = graph.tasks().iter().map(|t| t.deps().len()).sum();
    assert_eq!(text.matches("class=\"node\"").count(), 2 * 17);
    assert_eq!(text.matches("class=\"edge\"").count(), 17 + reads);
    assert_eq!(text.matches("mean&#45;agg").count(), 1, "graphviz writes - as &#45;");
}

#[test]
fn elementwise_chains_fuse_into_one_task_per_block() {
    let a = Array::from_fn(&[64, 64], [32, 32], "a", |r| {
        ArrayD::from_elem(IxDyn(&[r[0].len(), r[1].len()]), 2.0)
    });
    let b = Array::full(&[64, 64], 3.0, [32, 32]);
    let expr = ((&a - &b) / (&a + &b) * 2.0 + 0.5).sqrt();
    let graph = expr.plan().unwrap();
    // a result computed into one array runs in blocks of whole rows: 2 of (32, 64)
    assert_eq!(
        graph.counts(),
        vec![("fused", 2), ("source", 2)],
        "one fused task per block, constants folded in"
    );
    assert_eq!(graph.outputs()[0].grid().max_block_shape(), [32, 64]);
    let TaskKind::Fused { program, .. } = &graph
        .tasks()
        .iter()
        .find(|t| t.kind().name() == "fused")
        .unwrap()
        .kind()
    else {
        unreachable!()
    };
    assert_eq!(program.op_count(), 6);
    let v = expr.compute().unwrap();
    assert_eq!(v[[0, 0]], ((2.0f32 - 3.0) / (2.0 + 3.0) * 2.0 + 0.5).sqrt());
}

/// Results of several MiB are written with streaming stores: every element, through every
/// path (a fresh result, a reused one, and blocks of a larger result written row by row),
/// equals the formula evaluated element by element.
#[test]
fn large_band_math_results_hold_every_element() {
    let (h, w) = (1100, 2048);
    let plane = |k: usize| {
        ArrayD::from_shape_fn(IxDyn(&[h, w]), move |i| {
            ((i[0] * 131 + i[1] * 197 + k * 7) % 1009) as f32 / 1009.0 + 0.01
        })
    };
    let (pa, pb, pc) = (plane(0), plane(1), plane(2));
    let expected = ndarray::Zip::from(&pa)
        .and(&pb)
        .and(&pc)
        .map_collect(|&a, &b, &c| (a - b) / (a + b) * c + 0.5);
    // one whole block (contiguous), and two column halves of 4.3 MiB each (rows of a larger result)
    for chunks in [vec![h, w], vec![h, w / 2]] {
        let arr = |p: &ArrayD<f32>| Array::from_ndarray(p.clone(), chunks.clone());
        let (a, b, c) = (arr(&pa), arr(&pb), arr(&pc));
        let expr = (&a - &b) / (&a + &b) * &c + 0.5;
        assert_eq!(
            expr.compute_with(&quiet()).unwrap().0,
            expected,
            "fresh result, chunks {chunks:?}"
        );
        let mut out = ArrayD::from_elem(IxDyn(&[h, w]), f32::NAN);
        expr.compute_into(out.view_mut(), &quiet()).unwrap();
        assert_eq!(out, expected, "reused result, chunks {chunks:?}");
    }
}

#[test]
fn median_rechunks_its_input_by_itself() {
    // (time=16, 64, 64) in single-scene blocks; the median needs whole time columns, and the
    // source produces them directly (no gather of 16 blocks).
    let cube = Array::from_fn(&[16, 64, 64], [1, 64, 64], "cube", |r| {
        ArrayD::from_shape_fn(IxDyn(&[r[0].len(), r[1].len(), r[2].len()]), |i| {
            (r[0].start + i[0]) as f32
        })
    });
    let med = cube.nanmedian(0);
    let graph = med.plan().unwrap();
    assert!(graph
        .tasks()
        .iter()
        .all(|t| !matches!(t.kind(), TaskKind::Gather { .. })));
    let src = graph.tasks().iter().find(|t| t.kind().name() == "source").unwrap();
    let TaskKind::Source { region, .. } = src.kind() else {
        unreachable!()
    };
    assert_eq!(region[0], 0..16, "a source task reads the whole time axis");
    assert!(med.compute().unwrap().iter().all(|&v| v == 7.5));
}

#[test]
fn persist_computes_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let a = Array::from_fn(&[10, 10], [5, 5], "counted", move |r| {
        seen.fetch_add(1, Ordering::SeqCst);
        ArrayD::from_elem(IxDyn(&[r[0].len(), r[1].len()]), 1.5)
    });
    let p = (&a * 2.0).persist().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(p.sum(Axes::All).compute_scalar().unwrap(), 300.0);
    assert_eq!(p.mean(0).compute().unwrap()[[3]], 3.0);
    assert_eq!(calls.load(Ordering::SeqCst), 4, "persisted blocks are reused");
}

#[test]
fn the_report_records_every_task() {
    let a = Array::ones(&[100, 100], [50, 50]);
    let (_, report) = a.sum(Axes::All).compute_with(&quiet()).unwrap();
    assert_eq!(report.backend, "cpu");
    assert_eq!(report.tasks.len(), a.sum(Axes::All).plan().unwrap().tasks().len());
    assert!(
        report.tasks.iter().all(|t| t.thread < report.threads),
        "threads are pool indices"
    );
    assert!(report.peak_bytes > 0);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(json["tasks"].as_array().unwrap().len() == report.tasks.len());
}

#[test]
fn a_budget_held_below_its_limit() {
    let a = Array::from_fn(&[32, 256, 256], [1, 128, 128], "cube", |r| {
        ArrayD::zeros(IxDyn(&[r[0].len(), r[1].len(), r[2].len()]))
    });
    let options = ComputeOptions {
        memory_budget: Some(4 << 20),
        ..quiet()
    };
    let (mean, report) = a.nanmean(0).compute_with(&options).unwrap();
    assert_eq!(mean.shape(), &[256, 256]);
    assert!(
        report.peak_bytes <= 4 << 20,
        "peak {} over a 4 MiB budget",
        report.peak_bytes
    );
    assert_eq!(report.over_budget_starts, 0);
    // the budget is what held it back: unconstrained, the same run holds more
    let (_, free) = a
        .nanmean(0)
        .compute_with(&ComputeOptions {
            memory_budget: Some(1 << 30),
            lookahead: 8,
            ..quiet()
        })
        .unwrap();
    assert!(free.peak_bytes > 4 << 20, "unconstrained peak {}", free.peak_bytes);
}

#[test]
fn reductions_of_nothing_give_numpys_answers() {
    let empty = Array::zeros(&[0, 5], [1, 5]);
    assert_eq!(
        empty.sum(0).compute().unwrap().into_raw_vec_and_offset().0,
        vec![0.0; 5]
    );
    assert_eq!(
        empty.count(0).compute().unwrap().into_raw_vec_and_offset().0,
        vec![0.0; 5]
    );
    assert!(empty.nanmean(0).compute().unwrap().iter().all(|v| v.is_nan()));
    assert!(empty.nanmedian(0).compute().unwrap().iter().all(|v| v.is_nan()));
    assert!(empty.median(Axes::All).compute_scalar().unwrap().is_nan());
    assert_eq!(
        empty.all(0).compute_mask().unwrap().into_raw_vec_and_offset().0,
        vec![1u8; 5]
    );
    assert!(
        matches!(empty.min(0).check(), Err(ExprError::InvalidArgument { .. })),
        "numpy refuses min of nothing"
    );
    assert_eq!(empty.mean(1).compute().unwrap().shape(), &[0]);
    let g = empty
        .group_reduce(strata::ReduceOp::NanSum, 0, &[], 3)
        .compute()
        .unwrap();
    assert_eq!(g.shape(), &[3, 5]);
    assert!(g.iter().all(|&v| v == 0.0));
}

#[test]
fn zero_threads_means_the_default_pool() {
    let a = Array::ones(&[64, 64], [16, 16]);
    let (v, report) = a
        .sum(Axes::All)
        .compute_with(&ComputeOptions {
            threads: Some(0),
            ..quiet()
        })
        .unwrap();
    assert_eq!(v.sum(), 4096.0);
    assert!(report.threads >= 1);
}

#[test]
fn compute_nested_in_a_one_thread_pool_finishes() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let sum = pool.install(|| {
        Array::ones(&[256, 256], [32, 32])
            .sum(Axes::All)
            .compute_scalar()
            .unwrap()
    });
    assert_eq!(sum, 65536.0);
}

#[test]
fn a_mask_is_filtered_as_values_with_an_f32_halo() {
    let mask = Array::ones(&[1, 5], [1, 5]).gt(0.5);
    // constant 0.5 beyond the edge: the first output sums 0.25 * 0.5 + 0.5 * 1 + 0.25 * 1
    let w = strata::plan::gaussian_weights(0.5, 4.0);
    assert_eq!(w.len(), 5, "radius int(4 * 0.5 + 0.5) = 2");
    let out = mask
        .gaussian(&[0.0, 0.5], strata::BoundaryMode::Constant(0.5))
        .compute()
        .unwrap();
    let expected = 0.0 + w[0] * 0.5 + w[1] * 0.5 + w[2] * 1.0 + w[3] * 1.0 + w[4] * 1.0;
    assert!((out[[0, 0]] - expected).abs() < 1e-6, "{} vs {expected}", out[[0, 0]]);
}

#[test]
fn bad_arguments_are_errors() {
    let a = Array::ones(&[4, 4], [2, 2]);
    assert!(a.sum([0, 0]).check().is_err(), "duplicate axes");
    assert!(
        a.gaussian(&[1e12], strata::BoundaryMode::Reflect).check().is_err(),
        "a radius of 4e12"
    );
    assert!(a
        .map_overlap("f", &[usize::MAX, 0], strata::BoundaryMode::Reflect, |b| b.to_owned())
        .check()
        .is_err());
    let s = a.slice(&[Slice::new(None, None, isize::MAX), Slice::new(None, None, isize::MIN)]);
    assert_eq!(s.shape(), &[1, 1], "Python gives one element for huge steps");
    assert_eq!(s.compute().unwrap()[[0, 0]], 1.0);
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let a = Array::ones(&[3, 4], [3, 4]);
    let b = Array::ones(&[4, 3], [4, 3]);
    let c = &a + &b;
    let err = c.compute().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Plan(strata::plan::PlanError::Expr(ExprError::ShapeMismatch { .. }))
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("[3, 4]") && err.to_string().contains("[4, 3]"),
        "{err}"
    );
    // the error follows the array through later operations
    assert!(c.mean(0).sqrt().check().is_err());
    assert!(matches!(
        a.mean(5).check(),
        Err(ExprError::AxisOutOfRange { axis: 5, ndim: 2, .. })
    ));
    assert!(matches!(
        a.take(1, &[7]).check(),
        Err(ExprError::IndexOutOfBounds { index: 7, len: 4, .. })
    ));
    assert!(Array::concatenate(&[a.clone(), b.clone()], 0).check().is_err());
    assert!(
        Array::ones(&[4], [2, 2]).check().is_err(),
        "chunk rank differs from shape rank"
    );
    assert!(
        a.group_reduce(strata::ReduceOp::NanMean, 0, &[0, 1], 2)
            .check()
            .is_err(),
        "labels of the wrong length"
    );
}

#[test]
fn a_budget_too_small_fails_before_running() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let a = Array::from_fn(&[1024, 1024], [1024, 1024], "big", move |r| {
        seen.fetch_add(1, Ordering::SeqCst);
        ArrayD::zeros(IxDyn(&[r[0].len(), r[1].len()]))
    });
    let options = ComputeOptions {
        memory_budget: Some(1 << 20),
        ..quiet()
    };
    match (&a + 1.0).compute_with(&options) {
        Err(Error::Exec(ExecError::BudgetTooSmall { task, needed, budget })) => {
            assert!(task.contains("big"), "{task}");
            assert_eq!(needed, 4 << 20);
            assert_eq!(budget, 1 << 20);
        }
        other => panic!("expected BudgetTooSmall, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing ran");
}

#[derive(Debug)]
struct Failing;

impl strata::expr::ChunkSource for Failing {
    fn read(&self, region: &[std::ops::Range<usize>]) -> Result<ArrayD<f32>, strata::expr::SourceError> {
        if region[0].start >= 4 {
            Err("tile 2 is corrupt".into())
        } else {
            Ok(ArrayD::zeros(IxDyn(&[region[0].len()])))
        }
    }
    fn label(&self) -> String {
        "flaky".into()
    }
}

#[test]
fn source_and_user_function_failures_carry_context() {
    let a = Array::from_source(&[8], [2], Arc::new(Failing));
    match a.sum(Axes::All).compute() {
        Err(Error::Exec(ExecError::Task {
            task,
            source: BackendError::Source { label, region, .. },
        })) => {
            assert_eq!(label, "flaky");
            assert!(region[0].start >= 4, "{region:?}");
            assert!(task.contains("flaky"), "{task}");
        }
        other => panic!("expected a source error, got {other:?}"),
    }
    let wrong = Array::from_fn(&[4, 4], [2, 2], "short", |_| ArrayD::zeros(IxDyn(&[1, 1])));
    assert!(matches!(
        wrong.compute(),
        Err(Error::Exec(ExecError::Task {
            source: BackendError::SourceShape { .. },
            ..
        }))
    ));
    let ones = Array::ones(&[4, 4], [2, 2]);
    let shrink = ones.map_blocks("shrink", |b| b.slice(ndarray::s![..1, ..]).to_owned().into_dyn());
    assert!(matches!(
        shrink.compute(),
        Err(Error::Exec(ExecError::Task {
            source: BackendError::MapShape { .. },
            ..
        }))
    ));
    let boom = ones.map_blocks("boom", |_| panic!("user bug"));
    match boom.compute() {
        Err(Error::Exec(ExecError::Task {
            source: BackendError::MapPanicked { name, message },
            ..
        })) => {
            assert_eq!(name, "boom");
            assert!(message.contains("user bug"));
        }
        other => panic!("expected a panic turned into an error, got {other:?}"),
    }
}

#[test]
fn dims_follow_operations() {
    let a = Array::ones(&[3, 4, 5], [3, 4, 5]).with_dims(&["time", "y", "x"]);
    let m = a.nanmean("time");
    assert_eq!(m.dims().unwrap(), &["y".to_string(), "x".to_string()]);
    assert_eq!(m.shape(), &[4, 5]);
    assert_eq!((&m * 2.0).dims().unwrap().len(), 2);
    assert_eq!(a.index(1, 0).dims().unwrap(), &["time".to_string(), "x".to_string()]);
    assert!(a.mean("band").check().is_err());
    let text = a.to_string();
    assert!(text.contains("shape=(3, 4, 5)") && text.contains("float32"), "{text}");
}

#[test]
fn dtypes_convert_on_load() {
    let raw = ndarray::Array::from_shape_vec(IxDyn(&[2, 2]), vec![0u16, 1, 65535, 7]).unwrap();
    let a = Array::from_ndarray(raw, [1, 2]);
    assert_eq!(
        a.compute().unwrap().into_raw_vec_and_offset().0,
        vec![0.0, 1.0, 65535.0, 7.0]
    );
    let neg = ndarray::Array::from_shape_vec(IxDyn(&[3]), vec![-5i16, 0, 300]).unwrap();
    assert_eq!(
        Array::from_ndarray(neg, [2]).sum(Axes::All).compute_scalar().unwrap(),
        295.0
    );
    let mask = Array::ones(&[4], [4]).gt(0.5);
    assert_eq!(mask.dtype(), strata::DType::U8);
    assert_eq!(mask.compute_mask().unwrap().into_raw_vec_and_offset().0, vec![1u8; 4]);
    let cast = Array::full(&[3], 300.7, [3]).astype(strata::DType::U8);
    assert_eq!(cast.compute_mask().unwrap().into_raw_vec_and_offset().0, vec![255u8; 3]);
}

#[test]
fn chained_selections_read_only_the_selected_pixels_of_a_source() {
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let src = Array::from_fn(&[4, 100, 100], [1, 64, 64], "counted", move |region| {
        counter.fetch_add(region.iter().map(|r| r.len()).product(), Ordering::SeqCst);
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
            ((region[0].start + ix[0]) * 10000 + (region[1].start + ix[1]) * 100 + region[2].start + ix[2]) as f32
        })
    });
    // a time pick, then rows across a block edge and columns reversed: one selection of the source
    let cut = src
        .take(0, &[3, 1])
        .slice(&[Slice::all(), Slice::range(50, 80), Slice::new(Some(70), Some(40), -1)]);
    let v = cut.compute_with(&quiet()).unwrap().0;
    assert_eq!(v.shape(), &[2, 30, 30]);
    assert_eq!(v[[0, 0, 0]], (3 * 10000 + 50 * 100 + 70) as f32);
    assert_eq!(v[[1, 29, 29]], (10000 + 79 * 100 + 41) as f32);
    assert_eq!(
        read.load(Ordering::SeqCst),
        2 * 30 * 30,
        "only the selected pixels are read"
    );
    let sources = cut
        .plan()
        .unwrap()
        .tasks()
        .iter()
        .filter(|t| matches!(t.kind(), TaskKind::Source { .. }))
        .count();
    assert_eq!(
        sources,
        2 * 2 * 2,
        "two times, each cut at the block edges of rows and columns"
    );
}

/// A run watched and interrupted through its `RunControl` (what Ctrl-C in a notebook does):
/// its progress counts up, and once interrupted it starts no more tasks and says so.
#[test]
fn a_run_control_shows_progress_and_interrupts_the_run() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    // 400 blocks of 10 ms each: seconds of work on two threads
    let a = Array::from_fn(&[400, 8], [1, 8], "slow", move |r| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(10));
        ndarray::ArrayD::from_elem(ndarray::IxDyn(&[r[0].len(), r[1].len()]), 1.0)
    });
    let control = strata::RunControl::new();
    let options = ComputeOptions {
        threads: Some(2),
        control: Some(control.clone()),
        progress: Progress::Off,
        ..Default::default()
    };
    let watcher = {
        let control = control.clone();
        let calls = calls.clone();
        std::thread::spawn(move || {
            while control.progress().0 < 10 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            control.interrupt();
            calls.load(Ordering::SeqCst)
        })
    };
    let result = (&a + 1.0).compute_with(&options);
    let at_interrupt = watcher.join().unwrap();
    match result {
        Err(Error::Exec(ExecError::Interrupted { finished, total })) => {
            assert!(finished >= 10 && finished < total, "{finished} of {total}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // only tasks already started finish: at most the tasks in flight (2 threads x (1 + 2 ahead)
    // plus the read look-ahead) begin after the interrupt
    let after = calls.load(Ordering::SeqCst) - at_interrupt;
    assert!(after <= 2 * 3 + 16, "{after} blocks read after the interrupt");
    let (done, planned) = control.progress();
    assert!(done >= 10 && planned >= 400, "{done} / {planned}");
    assert!(control.is_interrupted());
}
