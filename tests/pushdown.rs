//! Selection pushdown through the public API: the notebook's order (resample the whole stack
//! by month, then cut the area with `loc`) reads exactly the source regions the cut-first order
//! reads, also through a gaussian's halo; and a window of a large lazy array plans only the
//! window's blocks. Plan shapes, compared between the two orders, and values equal.

use std::ops::Range;
use std::sync::Arc;

use strata::labelled::DataArray;
use strata::plan::{TaskGraph, TaskKind};
use strata::{Array, BoundaryMode, ComputeOptions, Slice};

/// The source regions a plan reads, sorted (what its I/O is).
fn reads(graph: &TaskGraph) -> Vec<Vec<Range<usize>>> {
    let mut r: Vec<Vec<Range<usize>>> = graph
        .tasks()
        .iter()
        .filter_map(|t| match t.kind() {
            TaskKind::Source { region, .. } => Some(region.clone()),
            _ => None,
        })
        .collect();
    r.sort_by_key(|v| v.iter().map(|x| (x.start, x.end)).collect::<Vec<_>>());
    r
}

fn pixels(regions: &[Vec<Range<usize>>]) -> usize {
    regions
        .iter()
        .map(|r| r.iter().map(|x| x.len()).product::<usize>())
        .sum()
}

/// A stack of the embedded catalog on loopback (the server is returned: keep it).
fn stack() -> (strata::loopback::Server, DataArray) {
    let server = strata::loopback::Server::start(None).unwrap();
    let embedded = strata::loopback::landsat::SyntheticLandsat {
        scenes: 8,
        size: 256,
        ..Default::default()
    };
    embedded.serve(&server).unwrap();
    let store = strata::io::ObjectStore::new(strata::io::StoreOptions::default()).unwrap();
    let params = strata::stac::SearchParams {
        collections: vec!["landsat-c2-l2".into()],
        ..Default::default()
    };
    let items = strata::stac::search(&store, &server.url(), &params).unwrap().items;
    let options = strata::stack::StackOptions {
        assets: ["red", "green", "blue"].map(String::from).to_vec(),
        resolution: Some((30.0, 30.0)),
        chunks_yx: (64, 64),
        ..Default::default()
    };
    let s = strata::stack::stack(&items, &options, Arc::new(strata::io::CogReader::new(store))).unwrap();
    (server, s.labelled())
}

#[test]
fn the_notebooks_order_reads_what_cutting_first_reads() {
    let (_server, stack) = stack();
    let x = stack.f64_coord("x").unwrap().to_vec();
    let y = stack.f64_coord("y").unwrap().to_vec();
    // an area not on block edges: rows 37..121, columns 50..140 of the stack
    let (x0, x1, y0, y1) = (x[50], x[139], y[37], y[120]);
    let rgb = stack.sel_many("band", &["red", "green", "blue"]).unwrap();
    // the notebook: resample, then cut the area
    let notebook = rgb
        .resample("time", "MS")
        .unwrap()
        .median()
        .loc("y", y0, y1)
        .unwrap()
        .loc("x", x0, x1)
        .unwrap();
    // cut first
    let cut_first = rgb
        .loc("y", y0, y1)
        .unwrap()
        .loc("x", x0, x1)
        .unwrap()
        .resample("time", "MS")
        .unwrap()
        .median();
    let options = ComputeOptions {
        backend: strata::backend::gpu::BackendChoice::Cpu,
        ..Default::default()
    };
    let (a, b) = (
        notebook.data().plan_with(&options).unwrap(),
        cut_first.data().plan_with(&options).unwrap(),
    );
    assert_eq!(reads(&a), reads(&b), "both orders read the same regions");
    let area = (121 - 37) * (140 - 50);
    assert!(pixels(&reads(&a)) <= area * 8 * 3, "only the area is read");
    // and compute the same values
    let (va, vb) = (
        notebook.data().compute_with(&options).unwrap().0,
        cut_first.data().compute_with(&options).unwrap().0,
    );
    assert_eq!(va.shape(), vb.shape());
    assert!(va
        .iter()
        .zip(vb.iter())
        .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan())));

    // Through a gaussian: the cut widens by the halo (radius 4 for sigma 1), no further.
    let lum = rgb.sel("band", "red").unwrap().median("time").unwrap();
    let smoothed_then_cut = lum
        .gaussian(&[1.0, 1.0], BoundaryMode::Reflect)
        .loc("y", y0, y1)
        .unwrap()
        .loc("x", x0, x1)
        .unwrap();
    let graph = smoothed_then_cut.data().plan_with(&options).unwrap();
    let halo = (121 - 37 + 8) * (140 - 50 + 8) * 8;
    assert!(
        pixels(&reads(&graph)) <= halo,
        "{} pixels read for an area of {} with its halo",
        pixels(&reads(&graph)),
        halo
    );
    let whole = lum
        .gaussian(&[1.0, 1.0], BoundaryMode::Reflect)
        .data()
        .compute_with(&options)
        .unwrap()
        .0;
    let cut = smoothed_then_cut.data().compute_with(&options).unwrap().0;
    let expected = whole.slice(ndarray::s![37..121, 50..140]);
    assert!(cut
        .iter()
        .zip(expected.iter())
        .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan())));
}

#[test]
fn a_window_of_a_large_array_plans_only_its_blocks() {
    // 10^6 blocks; a 3 x 3 block window of the median of a product plans a handful of tasks.
    let n = 1024 * 1000;
    let cube = Array::full(&[12, n, n], 0.5, [12, 1024, 1024]);
    let median = (&cube * 2.0).nanmedian(0);
    let window = median.slice(&[Slice::range(5000, 8000), Slice::range(300_000, 303_000)]);
    let graph = window.plan().unwrap();
    assert!(graph.tasks().len() < 100, "{} tasks", graph.tasks().len());
    assert!(graph
        .tasks()
        .iter()
        .all(|t| !matches!(t.kind(), TaskKind::Gather { .. }) || t.deps().len() <= 4));
}
