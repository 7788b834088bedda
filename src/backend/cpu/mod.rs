//! The CPU backend: ndarray kernels, parallel inside a task with rayon where a task is large.

mod along;
mod arg_extreme;
mod batch;
mod coarsen;
mod fill;
mod fused;
mod gather;
mod gaussian;
use super::layout;
mod median;
mod reduce;
mod scan;
mod tiles;
mod window;

use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{ArrayD, ArrayViewMutD, IxDyn, Slice};

use super::{Backend, BackendError, ResultMemory, Value};
use crate::expr::{Block, DType};
use crate::plan::TaskKind;

use super::partial::finalize;
pub(crate) use fused::{run_fused, run_fused_into};
pub(crate) use median::holistic_reduce_parts;
pub(crate) use reduce::{group_reduce, partial_reduce};
pub(crate) use tiles::uses_fma;

/// A user function's panic as the error naming it.
fn map_panicked(f: &crate::expr::BlockFn, e: Box<dyn std::any::Any + Send>) -> BackendError {
    BackendError::MapPanicked {
        name: f.name.clone(),
        message: e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

/// The CPU backend (stateless; cheap to create).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

/// The task's inputs as blocks (an error naming the task for a partial state).
fn blocks<'v>(kind: &TaskKind, inputs: &[&'v Value]) -> Result<Vec<&'v Block>, BackendError> {
    inputs.iter().map(|v| v.to_block(kind.name())).collect()
}

fn f32_input(task: &'static str, v: &Value) -> Result<ndarray::ArcArray<f32, IxDyn>, BackendError> {
    Ok(v.to_block(task)?.to_f32())
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".into()
    }

    // Every task runs here: no value needs describing (the default builds a description of
    // each input, on the scheduler's path for every task).
    fn placement(&self, kind: &TaskKind, _inputs: &[&Value]) -> crate::backend::Placement {
        self.place(kind, &[])
    }

    fn run_into(
        &self,
        kind: &TaskKind,
        inputs: &[&Value],
        mut dst: ArrayViewMutD<'_, MaybeUninit<f32>>,
        memory: ResultMemory,
    ) -> Result<(), BackendError> {
        // kernels that can write straight into the destination skip a block and a copy
        let written = match kind {
            TaskKind::Fused { program, .. } => run_fused_into(program, &blocks(kind, inputs)?, &mut dst, memory),
            TaskKind::GaussianTiles(spec) => tiles::gaussian_tiles_into(spec, &blocks(kind, inputs)?, &mut dst),
            TaskKind::GroupReduce { op, axis, labels, .. } => match reduce::group_median(*op, *axis) {
                Some(skip_nan) => {
                    let x = f32_input(kind.name(), inputs[0])?;
                    reduce::group_median_into(skip_nan, &x.view(), labels, &mut dst)
                }
                None => false,
            },
            TaskKind::Coarsen { op, windows } => {
                let x = f32_input(kind.name(), inputs[0])?;
                coarsen::coarsen_into(*op, &x.view(), windows, &mut dst)
            }
            TaskKind::Along { op, axis } => {
                let x = f32_input(kind.name(), inputs[0])?;
                along::along_into(op, x.view(), &mut dst, *axis)
            }
            TaskKind::Fill { value, dtype, .. } => {
                // a mask's fill reads as 0.0 or 1.0, as its block would be written
                let v = if *dtype == DType::U8 {
                    f32::from(*value as u8)
                } else {
                    *value
                };
                dst.fill(MaybeUninit::new(v));
                true
            }
            _ => false,
        };
        if written {
            return Ok(());
        }
        let value = self.run(kind, inputs)?;
        super::write_block(dst, value.to_block(kind.name())?);
        Ok(())
    }

    fn run(&self, kind: &TaskKind, inputs: &[&Value]) -> Result<Value, BackendError> {
        let name = kind.name();
        let block = match kind {
            TaskKind::Fill { shape, value, dtype } => match dtype {
                DType::F32 => Block::F32(ArrayD::from_elem(IxDyn(shape), *value).into_shared()),
                DType::U8 => Block::U8(ArrayD::from_elem(IxDyn(shape), *value as u8).into_shared()),
            },
            TaskKind::Host { array, region } => array.block(region),
            TaskKind::Source { source, region } => {
                let data = source
                    .read(region)
                    .map_err(|e| super::source_error(source.as_ref(), region, e))?;
                super::check_source_shape(source.as_ref(), region, data.shape())?;
                Block::F32(data.into_shared())
            }
            TaskKind::Persisted { block } => block.clone(),
            TaskKind::Fused { program, shape } => {
                let blocks = blocks(kind, inputs)?;
                run_fused(program, &blocks, shape)
            }
            TaskKind::Gather {
                shape,
                dtype,
                fill,
                out_axes,
                pieces,
            } => {
                let blocks = blocks(kind, inputs)?;
                gather::run_gather(shape, *dtype, *fill, out_axes, pieces, &blocks)?
            }
            TaskKind::ReducePartial {
                op,
                axes,
                finalize: fin,
            } => {
                let blocks = blocks(kind, inputs)?;
                let p = partial_reduce(*op, &blocks, axes);
                if *fin {
                    finalize(&p)
                } else {
                    return Ok(Value::Partial(p));
                }
            }
            TaskKind::ReduceCombine { finalize: fin, .. } => {
                let mut parts = inputs.iter().map(|v| match v {
                    Value::Partial(p) => Ok(p),
                    Value::Block(_) | Value::Device(_) => Err(BackendError::BadInput {
                        task: name,
                        what: "a block where a partial state was expected".into(),
                    }),
                });
                let mut acc = parts.next().expect("a combine has inputs")?.clone();
                for p in parts {
                    acc.merge(p?);
                }
                if *fin {
                    finalize(&acc)
                } else {
                    return Ok(Value::Partial(acc));
                }
            }
            TaskKind::Holistic { op, axes } => {
                // the steps of the reduced axis, one input or several laid along axis 0
                let parts = inputs
                    .iter()
                    .map(|v| f32_input(name, v))
                    .collect::<Result<Vec<_>, _>>()?;
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                Block::F32(holistic_reduce_parts(*op, &views, axes).into_shared())
            }
            TaskKind::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => {
                let x = inputs[0].to_block(name)?;
                group_reduce(*op, x, *axis, labels, *groups)
            }
            TaskKind::Coarsen { op, windows } => {
                let x = f32_input(name, inputs[0])?;
                let out = coarsen::coarsen(*op, &x.view(), windows).ok_or_else(|| BackendError::BadInput {
                    task: name,
                    what: format!("{} is not a window reduction", op.name()),
                })?;
                Block::F32(out.into_shared())
            }
            TaskKind::Gaussian { passes, constant } => {
                let x = f32_input(name, inputs[0])?;
                Block::F32(gaussian::separable(&x.view(), passes, constant.as_ref()).into_shared())
            }
            TaskKind::GaussianTiles(spec) => {
                let blocks = blocks(kind, inputs)?;
                let mut out = ArrayD::<f32>::uninit(IxDyn(&spec.shape));
                let written = tiles::gaussian_tiles_into(spec, &blocks, &mut out.view_mut());
                assert!(written, "a fresh array has contiguous rows");
                // SAFETY: gaussian_tiles_into wrote every element.
                Block::F32(unsafe { out.assume_init() }.into_shared())
            }
            TaskKind::Along { op, axis } => {
                let x = f32_input(name, inputs[0])?;
                Block::F32(along::along(op, x.view(), *axis).into_shared())
            }
            TaskKind::Map { f, trim } => {
                let x = f32_input(name, inputs[0])?;
                let out = catch_unwind(AssertUnwindSafe(|| (f.f)(x.view()))).map_err(|e| map_panicked(f, e))?;
                if out.shape() != x.shape() {
                    return Err(BackendError::MapShape {
                        name: f.name.clone(),
                        expected: x.shape().to_vec(),
                        found: out.shape().to_vec(),
                    });
                }
                let mut out = out.into_shared();
                for (a, &t) in trim.iter().enumerate() {
                    if t > 0 {
                        let n = out.shape()[a] as isize;
                        out.slice_axis_inplace(ndarray::Axis(a), Slice::new(t as isize, Some(n - t as isize), 1));
                    }
                }
                Block::F32(out)
            }
        };
        Ok(Value::Block(block))
    }
}
