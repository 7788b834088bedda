//! The placement pass: decides, before any value exists, where each task runs (on a backend's
//! device or on the host) and where each transfer between them happens.
//!
//! A backend answers one question per task, "would your device run this kernel on inputs of
//! these shapes, types and places?" (its kernel descriptors' limits: bindings, index widths,
//! column lengths); this pass asks it in topological order, so each task's inputs are where
//! their producers were placed. The executor follows the result, checking each placement
//! again against the values that arrive (a source may hand over decoded values instead of
//! stored codes) and reporting any task that ran elsewhere.

use std::fmt;

use super::{TaskGraph, TaskKind};
use crate::expr::DType;

/// Where a task runs, and why: the executor's guide for moving values between host and
/// device, and what the execution report records per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Placement {
    /// on the backend's device (else on the host, by the CPU kernels)
    pub device: bool,
    /// why, in a few words
    pub reason: &'static str,
}

impl Placement {
    /// On the device, because `reason`.
    pub fn device(reason: &'static str) -> Self {
        Placement { device: true, reason }
    }

    /// On the host, because `reason`.
    pub fn host(reason: &'static str) -> Self {
        Placement { device: false, reason }
    }
}

/// What a task is given, as far as placement needs to know: known from the plan before a run,
/// or read off a value during one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueDesc {
    /// the block's shape (of the kept elements, for a partial reduction state)
    pub shape: Vec<usize>,
    /// element type (f32 for a partial state)
    pub dtype: DType,
    /// in device memory (else host memory)
    pub on_device: bool,
    /// a partial reduction state rather than a block
    pub partial: bool,
}

/// One value crossing between host and device memory: `from`'s result read by `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// the producing task
    pub from: usize,
    /// the task reading it on the other side (`None`: a result block, read back into the
    /// output)
    pub to: Option<usize>,
    /// towards the device (else back to the host)
    pub upload: bool,
    /// bytes moved
    pub bytes: u64,
}

/// Task counts by kind name, sorted by name.
pub type KindCounts = Vec<(&'static str, usize)>;

/// A graph's placement: one [`Placement`] per task and the transfers it implies.
#[derive(Debug, Clone)]
pub struct Placements {
    /// the backend placed for
    pub(crate) backend: String,
    pub(crate) tasks: Vec<Placement>,
    pub(crate) transfers: Vec<Transfer>,
}

impl Placements {
    /// Every task's placement, in task order.
    pub fn tasks(&self) -> &[Placement] {
        &self.tasks
    }

    /// Every value that crosses between host and device (a device result read by several
    /// host tasks is read back once: listed once, for its first reader).
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// Tasks on the device, by kind name (sorted), then those on the host.
    pub fn counts(&self, graph: &TaskGraph) -> (KindCounts, KindCounts) {
        let on = |device: bool| {
            let placed = graph.tasks.iter().zip(&self.tasks);
            super::count_kinds(placed.filter(move |(_, p)| p.device == device).map(|(t, _)| t))
        };
        (on(true), on(false))
    }
}

/// The shape a task's result has, from its kind and its inputs' shapes; `partial` when it is
/// a reduction state that is not yet final.
fn output_desc(kind: &TaskKind, inputs: &[ValueDesc]) -> (Vec<usize>, bool) {
    let first = || inputs.first().map(|d| d.shape.clone()).unwrap_or_default();
    let without = |axes: &[usize]| crate::expr::without_axes(&first(), axes);
    match kind {
        TaskKind::Fill { shape, .. } | TaskKind::Fused { shape, .. } | TaskKind::Gather { shape, .. } => {
            (shape.clone(), false)
        }
        TaskKind::Host { region, .. } | TaskKind::Source { region, .. } => {
            (region.iter().map(|r| r.len()).collect(), false)
        }
        TaskKind::Persisted { block } => (block.shape().to_vec(), false),
        TaskKind::ReducePartial { axes, finalize, .. } => (without(axes), !finalize),
        TaskKind::ReduceCombine { finalize, .. } => (first(), !finalize),
        TaskKind::Holistic { axes, .. } => (without(axes), false),
        TaskKind::GroupReduce { axis, groups, .. } => {
            let mut s = first();
            if let Some(n) = s.get_mut(*axis) {
                *n = *groups;
            }
            (s, false)
        }
        TaskKind::Coarsen { windows, .. } => (first().iter().zip(windows).map(|(n, k)| n / k).collect(), false),
        TaskKind::Gaussian { passes, .. } => {
            let mut s = first();
            for (a, w) in passes {
                s[*a] = s[*a].saturating_sub(w.len() - 1);
            }
            (s, false)
        }
        TaskKind::GaussianTiles(spec) => (spec.shape.clone(), false),
        TaskKind::Along { .. } => (first(), false),
        TaskKind::Map { trim, .. } => (
            first().iter().zip(trim).map(|(n, t)| n.saturating_sub(2 * t)).collect(),
            false,
        ),
    }
}

impl TaskGraph {
    /// The placement pass: asks `place` (a backend's kernel check) about every task in
    /// topological order, each with its inputs described where their producers were placed,
    /// and lists the transfers that follow. `backend` names the backend for reports. O(tasks +
    /// edges).
    pub fn place(&self, backend: &str, place: &dyn Fn(&TaskKind, &[ValueDesc]) -> Placement) -> Placements {
        let mut descs: Vec<ValueDesc> = Vec::with_capacity(self.tasks.len());
        let mut placed = Vec::with_capacity(self.tasks.len());
        let mut transfers = Vec::new();
        let mut read_back = vec![false; self.tasks.len()];
        for (t, task) in self.tasks.iter().enumerate() {
            let inputs: Vec<ValueDesc> = task.deps.iter().map(|&d| descs[d].clone()).collect();
            let p = place(&task.kind, &inputs);
            for (&d, input) in task.deps.iter().zip(&inputs) {
                if input.on_device && !p.device && !read_back[d] {
                    read_back[d] = true;
                    transfers.push(Transfer {
                        from: d,
                        to: Some(t),
                        upload: false,
                        bytes: self.tasks[d].out_bytes,
                    });
                } else if !input.on_device && p.device && !input.partial {
                    // the block's values move, whatever the producer cost (a view costs 0)
                    let elems: u64 = input.shape.iter().map(|&n| n as u64).product();
                    transfers.push(Transfer {
                        from: d,
                        to: Some(t),
                        upload: true,
                        bytes: elems * input.dtype.size() as u64,
                    });
                }
            }
            let (shape, partial) = output_desc(&task.kind, &inputs);
            // A device source uploads stored codes and decodes them there: its result is on
            // the device, with no transfer of decoded values.
            descs.push(ValueDesc {
                shape,
                dtype: if partial { DType::F32 } else { task.dtype },
                on_device: p.device && !partial,
                partial,
            });
            placed.push(p);
        }
        // Result blocks on the device come back to the host's output, once each.
        for out in &self.outputs {
            for &t in &out.tasks {
                if descs[t].on_device && !read_back[t] {
                    read_back[t] = true;
                    transfers.push(Transfer {
                        from: t,
                        to: None,
                        upload: false,
                        bytes: self.tasks[t].out_bytes,
                    });
                }
            }
        }
        Placements {
            backend: backend.to_string(),
            tasks: placed,
            transfers,
        }
    }
}

impl fmt::Display for Placements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (up, down): (Vec<&Transfer>, Vec<&Transfer>) = self.transfers.iter().partition(|t| t.upload);
        let mb = |ts: &[&Transfer]| ts.iter().map(|t| t.bytes).sum::<u64>() as f64 / 1e6;
        write!(
            f,
            "placed for {}: {} uploads ({:.1} MB), {} read-backs ({:.1} MB; {} of them results)",
            self.backend,
            up.len(),
            mb(&up),
            down.len(),
            mb(&down),
            down.iter().filter(|t| t.to.is_none()).count()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::expr::{BinaryOp, ChunkGrid, Node, Op, ReduceOp};
    use crate::plan::rewrite::tests::leaf;
    use crate::plan::PlanOptions;

    /// `median(x * 2, axis 0)` of a (4, 6) array in (2, 3) blocks: the median wants axis 0
    /// whole, which the host array and the elementwise product follow, so 2 host blocks of
    /// (4, 3), 2 fused, 2 medians.
    fn graph() -> TaskGraph {
        let x = leaf(&[4, 6], &[2, 3]);
        let grid = x.grid.clone();
        let op = Op::BinaryScalar {
            op: BinaryOp::Mul,
            scalar: 2.0,
            scalar_left: false,
        };
        let doubled = Node::new(op, vec![x], grid, DType::F32);
        let op = Op::Reduce {
            op: ReduceOp::Median,
            axes: vec![0],
        };
        let median = Node::new(op, vec![doubled], ChunkGrid::from_sizes(vec![vec![3, 3]]), DType::F32);
        TaskGraph::build(&[median], &PlanOptions::default()).unwrap()
    }

    #[test]
    fn transfers_follow_where_producers_and_readers_are_placed() {
        let g = graph();
        assert_eq!(g.counts(), [("array", 2), ("fused", 2), ("median", 2)], "{g}");
        // elementwise kernels on the device, everything else on the host
        let seen = Mutex::new(Vec::new());
        let placed = g.place("test", &|kind, inputs| {
            seen.lock().unwrap().push((kind.name(), inputs.to_vec()));
            if matches!(kind, TaskKind::Fused { .. }) {
                Placement::device("test")
            } else {
                Placement::host("test")
            }
        });
        let device: Vec<bool> = placed.tasks().iter().map(|p| p.device).collect();
        let fused: Vec<usize> = (0..g.tasks.len())
            .filter(|&t| g.tasks[t].kind.name() == "fused")
            .collect();
        assert!(fused.iter().all(|&t| device[t]));
        assert_eq!(device.iter().filter(|&&d| d).count(), 2);
        // each fused task uploads its host block and is read back for its median
        let ups: Vec<&Transfer> = placed.transfers().iter().filter(|t| t.upload).collect();
        let downs: Vec<&Transfer> = placed.transfers().iter().filter(|t| !t.upload).collect();
        assert_eq!(ups.len(), 2);
        assert!(ups
            .iter()
            .all(|t| g.tasks[t.from].kind.name() == "array" && t.to.is_some_and(|to| device[to])));
        // host f32 blocks are views (they cost the plan nothing) but their values move
        assert!(ups.iter().all(|t| t.bytes == 4 * 3 * 4), "{ups:?}");
        assert_eq!(downs.len(), 2);
        assert!(downs
            .iter()
            .all(|t| g.tasks[t.from].kind.name() == "fused" && t.to.is_some_and(|to| !device[to])));
        assert_eq!(downs.iter().map(|t| t.bytes).sum::<u64>(), 2 * 4 * 3 * 4);
        // the inputs described to the placer: shapes from the plan, places from the producers
        let seen = seen.into_inner().unwrap();
        for (name, inputs) in &seen {
            match *name {
                "array" => assert!(inputs.is_empty()),
                "fused" => assert_eq!(described(inputs), [(vec![4, 3], false)]),
                "median" => assert_eq!(described(inputs), [(vec![4, 3], true)]),
                other => panic!("unexpected {other}"),
            }
        }
    }

    fn described(inputs: &[ValueDesc]) -> Vec<(Vec<usize>, bool)> {
        inputs.iter().map(|d| (d.shape.clone(), d.on_device)).collect()
    }

    #[test]
    fn a_host_only_placer_moves_nothing() {
        let g = graph();
        let placed = g.place("cpu", &|_, _| Placement::host("the CPU backend"));
        assert!(placed.tasks().iter().all(|p| !p.device));
        assert!(placed.transfers().is_empty());
        let (device, host) = placed.counts(&g);
        assert!(device.is_empty());
        assert_eq!(host.iter().map(|(_, n)| n).sum::<usize>(), g.tasks.len());
    }

    #[test]
    fn results_on_the_device_come_back_to_the_output() {
        let g = graph();
        let placed = g.place("gpu", &|kind, _| Placement {
            device: matches!(kind, TaskKind::Holistic { .. }),
            reason: "test",
        });
        let back: Vec<&Transfer> = placed.transfers().iter().filter(|t| !t.upload).collect();
        assert_eq!(back.len(), 2);
        // each median block: 3 columns of f32
        assert!(back.iter().all(|t| t.to.is_none() && t.bytes == 3 * 4), "{back:?}");
    }
}
