//! [`GraphSpec`]: a lazy expression DAG as plain data, to travel in a job file and be made
//! again in a worker process. Nodes are listed inputs first, each once however many consumers
//! share it; sources travel as their [`ChunkSource::spec`](crate::expr::ChunkSource::spec)
//! and are made again by a [`SourceKinds`] registry. Block sizes are run-length encoded, so a
//! continental array of a million blocks costs a few numbers per axis.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{JobError, SourceKinds};
use crate::expr::{
    AlongOp, AxisMap, BinaryOp, BoundaryMode, ChunkGrid, Chunks, DType, Node, NodeId, Op, ReduceOp, UnaryOp,
};

/// One operation, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpSpec {
    /// every element one value
    Fill {
        /// the value
        #[serde(with = "crate::expr::nonfinite")]
        value: f32,
    },
    /// a chunk source, as its spec
    Source {
        /// `{"kind": .., ..}`
        spec: serde_json::Value,
    },
    /// an elementwise function of one input
    Unary {
        /// the function
        f: UnaryOp,
    },
    /// an elementwise function of two inputs
    Binary {
        /// the function
        f: BinaryOp,
    },
    /// an elementwise function of an input and a scalar
    BinaryScalar {
        /// the function
        f: BinaryOp,
        /// the scalar
        #[serde(with = "crate::expr::nonfinite")]
        scalar: f32,
        /// whether the scalar is the left operand
        scalar_left: bool,
    },
    /// `where(cond, a, b)`
    Where,
    /// conversion to the node's dtype
    Cast,
    /// reading through per-axis index maps
    Select {
        /// how every output axis reads the input
        maps: Vec<AxisMap>,
        /// (input axis, index) of dropped axes
        fixed: Vec<(usize, usize)>,
    },
    /// inputs joined along an axis
    Concat {
        /// the axis
        axis: usize,
    },
    /// the input in the node's chunk grid
    Rechunk,
    /// a reduction over axes
    Reduce {
        /// the reduction
        f: ReduceOp,
        /// the reduced axes
        axes: Vec<usize>,
    },
    /// a reduction by group labels
    GroupReduce {
        /// the reduction
        f: ReduceOp,
        /// the grouped axis
        axis: usize,
        /// every index's group
        labels: Vec<usize>,
        /// groups
        groups: usize,
    },
    /// a reduction of every window
    Coarsen {
        /// the reduction
        f: ReduceOp,
        /// the window along every axis
        windows: Vec<usize>,
    },
    /// scipy's gaussian filter
    Gaussian {
        /// per axis
        sigma: Vec<f64>,
        /// the boundary
        mode: BoundaryMode,
        /// radius factor
        truncate: f64,
    },
    /// work along an axis held whole in every block (a scan, a gap fill, a moving window)
    Along {
        /// the axis
        axis: usize,
        /// the work
        work: AlongOp,
    },
}

/// One node: its operation, inputs (earlier nodes), grid and element type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// the operation
    pub op: OpSpec,
    /// indices of its inputs in [`GraphSpec::nodes`]
    pub inputs: Vec<usize>,
    /// the result's shape
    pub shape: Vec<usize>,
    /// block sizes per axis as (size, repeats) runs
    pub chunks: Vec<Vec<(usize, usize)>>,
    /// the result's element type
    pub dtype: DType,
}

/// A DAG with several roots, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// every node, inputs before consumers
    pub nodes: Vec<NodeSpec>,
    /// the nodes asked for
    pub roots: Vec<usize>,
}

fn runs(sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &s in sizes {
        match out.last_mut() {
            Some((size, n)) if *size == s => *n += 1,
            _ => out.push((s, 1)),
        }
    }
    out
}

impl GraphSpec {
    /// The DAG under `roots` as data.
    ///
    /// **Errors**: [`JobError::NotPortable`] naming the first node that cannot travel: data
    /// in this process's memory, computed blocks, a user function, or a source without a spec.
    pub fn from_roots(roots: &[Arc<Node>]) -> Result<GraphSpec, JobError> {
        let mut index: HashMap<NodeId, usize> = HashMap::new();
        let mut nodes = Vec::new();
        for root in roots {
            for node in root.topo_order() {
                if index.contains_key(&node.id) {
                    continue;
                }
                let refuse = |what: &str| JobError::NotPortable {
                    node: node.op.name(),
                    shape: node.shape().to_vec(),
                    reason: what.to_string(),
                };
                let op = match &node.op {
                    Op::Fill(v) => OpSpec::Fill { value: *v },
                    Op::Source(s) => OpSpec::Source {
                        spec: s.spec().ok_or_else(|| {
                            refuse(&format!(
                                "the source {:?} cannot be described as data (give it a ChunkSource::spec)",
                                s.label()
                            ))
                        })?,
                    },
                    Op::Host(_) => return Err(refuse("its data lives in this process's memory")),
                    Op::Persisted(_) => return Err(refuse("its blocks were computed in this process (persist)")),
                    Op::MapBlocks(_) | Op::MapOverlap { .. } => return Err(refuse("it runs a user function")),
                    Op::Unary(f) => OpSpec::Unary { f: *f },
                    Op::Binary(f) => OpSpec::Binary { f: *f },
                    Op::BinaryScalar {
                        op,
                        scalar,
                        scalar_left,
                    } => OpSpec::BinaryScalar {
                        f: *op,
                        scalar: *scalar,
                        scalar_left: *scalar_left,
                    },
                    Op::Where => OpSpec::Where,
                    Op::Cast => OpSpec::Cast,
                    Op::Select { maps, fixed } => OpSpec::Select {
                        maps: maps.clone(),
                        fixed: fixed.clone(),
                    },
                    Op::Concat { axis } => OpSpec::Concat { axis: *axis },
                    Op::Rechunk => OpSpec::Rechunk,
                    Op::Reduce { op, axes } => OpSpec::Reduce {
                        f: *op,
                        axes: axes.clone(),
                    },
                    Op::GroupReduce {
                        op,
                        axis,
                        labels,
                        groups,
                    } => OpSpec::GroupReduce {
                        f: *op,
                        axis: *axis,
                        labels: labels.as_ref().clone(),
                        groups: *groups,
                    },
                    Op::Coarsen { op, windows } => OpSpec::Coarsen {
                        f: *op,
                        windows: windows.clone(),
                    },
                    Op::Gaussian { sigma, mode, truncate } => OpSpec::Gaussian {
                        sigma: sigma.clone(),
                        mode: *mode,
                        truncate: *truncate,
                    },
                    Op::Along { axis, op } => OpSpec::Along {
                        axis: *axis,
                        work: op.as_ref().clone(),
                    },
                };
                let inputs = node.inputs.iter().map(|i| index[&i.id]).collect();
                index.insert(node.id, nodes.len());
                nodes.push(NodeSpec {
                    op,
                    inputs,
                    shape: node.shape().to_vec(),
                    chunks: node.grid.all_sizes().iter().map(|s| runs(s)).collect(),
                    dtype: node.dtype,
                });
            }
        }
        let roots = roots.iter().map(|r| index[&r.id]).collect();
        Ok(GraphSpec { nodes, roots })
    }

    /// The DAG made again, sources through `kinds`; returns the roots.
    ///
    /// **Errors**: [`JobError::Format`] for an inconsistent graph; the registry's errors for a
    /// source that cannot be made.
    pub fn build(&self, kinds: &SourceKinds) -> Result<Vec<Arc<Node>>, JobError> {
        let mut built: Vec<Arc<Node>> = Vec::with_capacity(self.nodes.len());
        for (i, spec) in self.nodes.iter().enumerate() {
            let bad = |what: String| JobError::Format {
                what: format!("graph node {i}: {what}"),
            };
            let inputs = spec
                .inputs
                .iter()
                .map(|&k| {
                    (k < i)
                        .then(|| built[k].clone())
                        .ok_or_else(|| bad(format!("input {k} is not an earlier node")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let sizes: Vec<Vec<usize>> = spec
                .chunks
                .iter()
                .map(|r| r.iter().flat_map(|&(s, n)| std::iter::repeat_n(s, n)).collect())
                .collect();
            let grid = ChunkGrid::new(&spec.shape, &Chunks::PerAxis(sizes)).map_err(|e| bad(e.to_string()))?;
            let op = match &spec.op {
                OpSpec::Fill { value } => Op::Fill(*value),
                OpSpec::Source { spec: s } => Op::Source(kinds.make(s)?),
                OpSpec::Unary { f } => Op::Unary(*f),
                OpSpec::Binary { f } => Op::Binary(*f),
                OpSpec::BinaryScalar { f, scalar, scalar_left } => Op::BinaryScalar {
                    op: *f,
                    scalar: *scalar,
                    scalar_left: *scalar_left,
                },
                OpSpec::Where => Op::Where,
                OpSpec::Cast => Op::Cast,
                OpSpec::Select { maps, fixed } => Op::Select {
                    maps: maps.clone(),
                    fixed: fixed.clone(),
                },
                OpSpec::Concat { axis } => Op::Concat { axis: *axis },
                OpSpec::Rechunk => Op::Rechunk,
                OpSpec::Reduce { f, axes } => Op::Reduce {
                    op: *f,
                    axes: axes.clone(),
                },
                OpSpec::GroupReduce {
                    f,
                    axis,
                    labels,
                    groups,
                } => Op::GroupReduce {
                    op: *f,
                    axis: *axis,
                    labels: Arc::new(labels.clone()),
                    groups: *groups,
                },
                OpSpec::Coarsen { f, windows } => Op::Coarsen {
                    op: *f,
                    windows: windows.clone(),
                },
                OpSpec::Gaussian { sigma, mode, truncate } => Op::Gaussian {
                    sigma: sigma.clone(),
                    mode: *mode,
                    truncate: *truncate,
                },
                OpSpec::Along { axis, work: op } => {
                    // each block must hold the axis whole, over an input of the same shape, or
                    // every block would be computed on its own piece of the series
                    let whole = *axis < grid.ndim() && grid.sizes(*axis).len() <= 1;
                    let same = inputs.len() == 1 && inputs[0].shape() == grid.shape();
                    if !whole || !same {
                        return Err(bad(format!(
                            "{} along axis {axis} needs one input of its shape {:?} and the axis whole in every block",
                            op.name(),
                            grid.shape()
                        )));
                    }
                    op.check(grid.shape()[*axis]).map_err(|e| bad(e.to_string()))?;
                    Op::Along {
                        axis: *axis,
                        op: Arc::new(op.clone()),
                    }
                }
            };
            built.push(Node::new(op, inputs, grid, spec.dtype));
        }
        self.roots
            .iter()
            .map(|&r| {
                built.get(r).cloned().ok_or_else(|| JobError::Format {
                    what: format!("root {r} of {} nodes", built.len()),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_travel_as_runs() {
        assert_eq!(runs(&[512, 512, 512, 100]), vec![(512, 3), (100, 1)]);
        assert_eq!(runs(&[]), Vec::<(usize, usize)>::new());
    }
}
