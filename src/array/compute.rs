//! Running an array: `compute`, `persist`, the plan and its picture.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn, SliceInfoElem};

use super::Array;
use crate::backend::CpuBackend;
use crate::exec::{execute, ComputeOptions, ExecReport};
use crate::expr::{Block, DType, Node, Op};
use crate::plan::{PlanOptions, TaskGraph};

fn plan_options(options: &ComputeOptions) -> PlanOptions {
    PlanOptions {
        memory_budget: options.memory_budget,
        split_every: options.split_every,
        max_holistic_block: options.max_holistic_block,
    }
}

/// Computes several arrays in one run, sharing the work they have in common; results come
/// back as f32 (masks as 0.0/1.0), in order, with the run's report.
///
/// **Errors**: the first build, plan or execution error.
pub fn compute_many(arrays: &[&Array], options: &ComputeOptions) -> crate::Result<(Vec<ArrayD<f32>>, ExecReport)> {
    let roots: Vec<Arc<Node>> = arrays.iter().map(|a| a.node().cloned()).collect::<Result<_, _>>()?;
    let graph = TaskGraph::build(&roots, &plan_options(options))?;
    let mut outs: Vec<ArrayD<f32>> = graph
        .outputs
        .iter()
        .map(|o| ArrayD::zeros(IxDyn(o.grid.shape())))
        .collect();
    let report = execute(&graph, &CpuBackend, options, &mut |o, b, block| {
        let grid = &graph.outputs[o].grid;
        let region = grid.region(&crate::expr::unravel(b, &grid.blocks_per_axis()));
        let info: Vec<SliceInfoElem> = region.into_iter().map(SliceInfoElem::from).collect();
        let mut dst = outs[o].slice_mut(info.as_slice());
        match block {
            Block::F32(a) => dst.assign(&a),
            Block::U8(a) => dst.zip_mut_with(&a, |d, &s| *d = f32::from(s)),
        }
    })?;
    Ok((outs, report))
}

impl Array {
    /// Lowers the array to its chunk task graph (no pixel is read), with default options.
    ///
    /// **Errors**: an error recorded while building, or a reduction too big for the budget.
    pub fn plan(&self) -> crate::Result<TaskGraph> {
        self.plan_with(&ComputeOptions::default())
    }

    /// [`Array::plan`] for the given options (the budget shapes median blocks).
    ///
    /// **Errors**: as [`Array::plan`].
    pub fn plan_with(&self, options: &ComputeOptions) -> crate::Result<TaskGraph> {
        Ok(TaskGraph::build(&[self.node()?.clone()], &plan_options(options))?)
    }

    /// Computes the values as f32 (masks as 0.0/1.0) with default options.
    ///
    /// **Errors**: a build or plan error, a budget too small for one task, a failing source
    /// or user function.
    pub fn compute(&self) -> crate::Result<ArrayD<f32>> {
        Ok(self.compute_with(&ComputeOptions::default())?.0)
    }

    /// Computes with `options`, returning the values and the execution report.
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn compute_with(&self, options: &ComputeOptions) -> crate::Result<(ArrayD<f32>, ExecReport)> {
        let (mut outs, report) = compute_many(&[self], options)?;
        Ok((outs.pop().expect("one output"), report))
    }

    /// Computes a mask as u8 (0/1); an f32 array is cast (truncated, NaN → 0).
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn compute_mask(&self) -> crate::Result<ArrayD<u8>> {
        Ok(self.astype(DType::U8).compute()?.mapv(|v| v as u8))
    }

    /// Computes a zero-dimensional result (a reduction over all axes) as one number.
    ///
    /// **Errors**: as [`Array::compute`], or [`crate::ExprError::InvalidArgument`] when the
    /// array has more than one element.
    pub fn compute_scalar(&self) -> crate::Result<f32> {
        let a = self.compute()?;
        if a.len() != 1 {
            return Err(crate::ExprError::InvalidArgument {
                op: "compute_scalar".into(),
                reason: format!("shape {:?} is not a scalar", a.shape()),
            }
            .into());
        }
        Ok(a.iter().next().copied().expect("one element"))
    }

    /// Computes the blocks and keeps them in memory: the returned array reads them instead of
    /// recomputing (dask's `persist`). Costs the array's `nbytes` of memory while it lives.
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn persist(&self) -> crate::Result<Array> {
        self.persist_with(&ComputeOptions::default())
    }

    /// [`Array::persist`] with options.
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn persist_with(&self, options: &ComputeOptions) -> crate::Result<Array> {
        let node = self.node()?.clone();
        let graph = TaskGraph::build(std::slice::from_ref(&node), &plan_options(options))?;
        let out = &graph.outputs[0];
        let mut blocks: Vec<Option<Block>> = vec![None; out.tasks.len()];
        execute(&graph, &CpuBackend, options, &mut |_, b, block| blocks[b] = Some(block))?;
        let blocks: Vec<Block> = blocks.into_iter().map(|b| b.expect("every block computed")).collect();
        let persisted = Node::new(Op::Persisted(Arc::new(blocks)), vec![], out.grid.clone(), node.dtype);
        Ok(self.same_dims(Array::from_node(persisted)))
    }

    /// Writes the task graph as Graphviz DOT to `path`, and beside it an SVG when the `dot`
    /// program is installed (dask's `visualize`). Returns the path of the SVG, or of the DOT
    /// file when no SVG was made.
    ///
    /// **Errors**: a plan error, or an I/O error writing the file.
    pub fn visualize(&self, path: impl AsRef<Path>) -> crate::Result<PathBuf> {
        let graph = self.plan()?;
        let dot_path = path.as_ref().with_extension("dot");
        std::fs::write(&dot_path, graph.to_dot()).map_err(|e| crate::Error::Io {
            path: dot_path.clone(),
            source: e,
        })?;
        let svg = dot_path.with_extension("svg");
        let made = std::process::Command::new("dot")
            .arg("-Tsvg")
            .arg(&dot_path)
            .arg("-o")
            .arg(&svg)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        Ok(if made { svg } else { dot_path })
    }
}
