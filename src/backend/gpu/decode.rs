//! Device-side decoding of stored samples: a [`RawBlock`] (16-bit codes and a decode table
//! per plane) goes up at two bytes per element and is decoded by a table lookup
//! (`shaders/decode.wgsl`), bitwise equal to [`RawBlock::decode_cpu`] and so to the source's
//! own f32 read.

use super::kernels::KernelSource;
use super::recording::{Bind, ConstantBuffer, Pending, Recording};
use super::{GpuContext, GpuError};
use std::sync::{Arc, Weak};

use crate::expr::{DType, DecodeTable, RawBlock};

const SHADER: &str = include_str!("../../../shaders/decode.wgsl");

/// Whether the device decodes this block: codes, tables and values each within one binding.
pub(super) fn fits(ctx: &GpuContext, raw: &RawBlock) -> bool {
    let n = raw.codes.len() as u64;
    let limit = ctx.adapter.max_storage_binding;
    n > 0 && n * 4 <= limit && (raw.tables.len() * crate::expr::TABLE_LEN * 4) as u64 <= limit && raw.plane_len() > 0
}

/// Records the decode of `raw` (uploading its codes, tables and plane map).
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] when a staging
/// buffer cannot be mapped.
pub(super) fn run<'c>(ctx: &'c GpuContext, raw: &RawBlock) -> Result<Pending<'c>, GpuError> {
    let n = raw.codes.len();
    let pipeline = ctx.pipeline(KernelSource::Fixed("decode.wgsl", SHADER))?;
    let mut rec = Recording::new(ctx, "decode");
    // Two codes to a shader word; an odd count leaves the last word half zero.
    let codes: &[u8] = bytemuck::cast_slice(&raw.codes);
    let codes = rec.upload_with(codes.len(), |mut dst| dst.copy_from_slice(codes))?;
    let tables = device_tables(ctx, &raw.tables);
    let plane_table = ConstantBuffer::storage(ctx, "plane tables", &raw.plane_table);
    let result = rec.result("decoded", (n * 4) as u64);
    let params = ConstantBuffer::uniform(ctx, "decode params", &[n as u32, raw.plane_len() as u32, 0, 0]);
    let binds = [
        Bind::Held(codes),
        Bind::Result(&result),
        Bind::Constant(&tables),
        Bind::Constant(&plane_table),
        Bind::Constant(&params),
    ];
    let group = rec.bind(&pipeline, "decode", &binds)?;
    rec.dispatch(&pipeline, &group, "decode", n, 256);
    Ok(Pending {
        rec,
        result,
        shape: raw.shape.clone(),
        dtype: DType::F32,
    })
}

/// Device tables kept for this many distinct table sets (blocks of one stack share one set).
const TABLE_SETS: usize = 8;

/// The tables concatenated in a device buffer: uploaded once per set of host tables (compared
/// by identity; a stack shares its tables between blocks), so a small block does not send
/// 256 KiB per table again.
fn device_tables(ctx: &GpuContext, tables: &[Arc<DecodeTable>]) -> ConstantBuffer {
    let same = |held: &[Weak<DecodeTable>]| {
        held.len() == tables.len()
            && held
                .iter()
                .zip(tables)
                .all(|(w, t)| w.upgrade().is_some_and(|w| Arc::ptr_eq(&w, t)))
    };
    let mut cache = ctx.tables.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, buffer)) = cache.iter().find(|(held, _)| same(held)) {
        return buffer.clone();
    }
    let mut values = Vec::with_capacity(tables.len() * crate::expr::TABLE_LEN);
    for t in tables {
        values.extend_from_slice(&t.values);
    }
    let buffer = ConstantBuffer::storage(ctx, "decode tables", bytemuck::cast_slice(&values));
    cache.retain(|(held, _)| held.iter().all(|w| w.strong_count() > 0));
    if cache.len() >= TABLE_SETS {
        cache.remove(0);
    }
    cache.push((tables.iter().map(Arc::downgrade).collect(), buffer.clone()));
    buffer
}

/// Decodes `raw` on the device and reads the values back (what a test compares with
/// [`RawBlock::decode_cpu`]); waits for the device.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; a block beyond one binding is
/// [`GpuError::Internal`].
#[cfg(test)]
fn decode(ctx: &GpuContext, raw: &RawBlock) -> Result<ndarray::ArrayD<f32>, GpuError> {
    if !fits(ctx, raw) {
        return Err(GpuError::Internal(format!(
            "a raw block of shape {:?} does not fit one binding",
            raw.shape
        )));
    }
    let out: Vec<f32> = bytemuck::cast_vec(run(ctx, raw)?.read_now()?);
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&raw.shape), out).map_err(|e| GpuError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_decode_is_bitwise_the_cpu_decode() {
        use crate::expr::{DecodeSpec, DecodeTable, RawBlock, StoredType};
        use std::sync::Arc;
        let Some(ctx) = super::super::context_for_test("device decode", super::super::shared_context) else {
            return;
        };
        let spec = |scale, offset, nodata: Option<f64>, fill| DecodeSpec {
            scale,
            offset,
            nodata,
            rescale: true,
            fill,
        };
        // Every code of each stored type, one plane per (type, spec), plus a plane no item covers.
        let cases = [
            // Landsat Collection 2 surface reflectance
            (StoredType::U16, spec(2.75e-5, -0.2, Some(0.0), f32::NAN)),
            (StoredType::U16, spec(1.0, 0.0, None, f32::NAN)),
            (StoredType::I16, spec(0.01, 0.5, Some(-9999.0), f32::NAN)),
            (StoredType::I16, spec(-3.0e-3, 149.0, None, -1.0)),
            (StoredType::U8, spec(0.5, 1.0, Some(255.0), f32::NAN)),
            (StoredType::U8, spec(1.0 / 255.0, 0.0, None, 0.0)),
        ];
        let mut tables: Vec<Arc<DecodeTable>> = cases.iter().map(|(t, s)| Arc::new(DecodeTable::new(*t, s))).collect();
        tables.push(Arc::new(DecodeTable::all(f32::NAN)));
        let planes = tables.len();
        // An odd element count leaves the last word half used.
        let odd = RawBlock {
            shape: vec![1, 65535],
            codes: (0..u16::MAX).collect(),
            plane_table: vec![0],
            tables: vec![tables[0].clone()],
        };
        let (cpu, gpu) = (odd.decode_cpu(), decode(&ctx, &odd).unwrap());
        for (i, (c, g)) in cpu.iter().zip(gpu.iter()).enumerate() {
            assert!(c.to_bits() == g.to_bits(), "element {i}: cpu {c:e} gpu {g:e}");
        }
        let full = RawBlock {
            shape: vec![planes, 1, 65536],
            codes: (0..planes).flat_map(|_| 0..=u16::MAX).collect(),
            plane_table: (0..planes as u32).collect(),
            tables,
        };
        let (cpu, gpu) = (full.decode_cpu(), decode(&ctx, &full).unwrap());
        for (i, (c, g)) in cpu.iter().zip(gpu.iter()).enumerate() {
            let (p, code) = (i / 65536, i % 65536);
            assert!(c.to_bits() == g.to_bits(), "plane {p} code {code}: cpu {c:e} gpu {g:e}");
        }
        // The tables are the CPU stack's rule: Landsat DN 7273 → 7273 * 2.75e-5 - 0.2 in f64.
        assert_eq!(gpu[[0, 0, 7273]], (7273.0f64 * 2.75e-5 - 0.2) as f32);
        assert!(gpu[[0, 0, 0]].is_nan() && gpu[[planes - 1, 0, 123]].is_nan());
    }
}
