//! Device-side decoding of stored samples (u8, u16, i16) into physical f32 values, with the
//! CPU reference it must match bitwise. A tile crosses the bus as its stored bytes: half (u16)
//! or a quarter (u8) of its f32 size.

use wgpu::util::DeviceExt;

use super::{GpuContext, GpuError};

const SHADER: &str = include_str!("../../../shaders/decode.wgsl");

/// The stored sample type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredType {
    /// unsigned 8-bit
    U8,
    /// unsigned 16-bit
    U16,
    /// signed 16-bit
    I16,
}

impl StoredType {
    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            StoredType::U8 => 1,
            _ => 2,
        }
    }
}

/// How stored samples become physical values: `f32(v) * scale + offset`, rounded after the
/// multiply and after the add (no fused multiply-add), and `nodata` → NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeSpec {
    /// the stored type
    pub stored: StoredType,
    /// multiplier (raster:bands `scale`)
    pub scale: f32,
    /// addend (raster:bands `offset`)
    pub offset: f32,
    /// the stored value meaning "no data"
    pub nodata: Option<i32>,
}

impl DecodeSpec {
    /// One stored value's physical value: the reference the device matches bitwise.
    pub fn value(&self, v: i32) -> f32 {
        if self.nodata == Some(v) {
            return f32::NAN;
        }
        let scaled = v as f32 * self.scale;
        scaled + self.offset
    }

    /// Decodes little-endian stored bytes on the CPU. Costs one pass.
    pub fn decode_cpu(&self, raw: &[u8]) -> Vec<f32> {
        match self.stored {
            StoredType::U8 => raw.iter().map(|&b| self.value(i32::from(b))).collect(),
            StoredType::U16 => raw
                .chunks_exact(2)
                .map(|b| self.value(i32::from(u16::from_le_bytes([b[0], b[1]]))))
                .collect(),
            StoredType::I16 => raw
                .chunks_exact(2)
                .map(|b| self.value(i32::from(i16::from_le_bytes([b[0], b[1]]))))
                .collect(),
        }
    }
}

/// Decodes little-endian stored bytes on the device: uploads the bytes (padded to whole u32
/// words), runs `shaders/decode.wgsl`, reads the f32 back.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Device`]; a sample count beyond one binding
/// is [`GpuError::Device`] (callers split tiles first).
pub fn decode(ctx: &GpuContext, raw: &[u8], spec: &DecodeSpec) -> Result<Vec<f32>, GpuError> {
    let n = raw.len() / spec.stored.size();
    if n == 0 {
        return Ok(Vec::new());
    }
    if (n as u64) * 4 > ctx.adapter.max_storage_binding {
        return Err(GpuError::Device(format!("{n} samples exceed one storage binding")));
    }
    let pipeline = ctx.pipeline(SHADER)?;
    let device = &ctx.device;
    let mut padded = raw[..n * spec.stored.size()].to_vec();
    padded.resize(padded.len().div_ceil(4) * 4, 0);
    let words = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("stored samples"),
        contents: &padded,
        usage: wgpu::BufferUsages::STORAGE,
    });
    let bytes = (n * 4) as u64;
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("decoded"),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let kind = match spec.stored {
        StoredType::U8 => 0u32,
        StoredType::U16 => 1,
        StoredType::I16 => 2,
    };
    let params: [u32; 8] = [
        n as u32,
        kind,
        u32::from(spec.nodata.is_some()),
        spec.nodata.unwrap_or(0) as u32,
        spec.scale.to_bits(),
        spec.offset.to_bits(),
        0,
        0,
    ];
    let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("decode params"),
        contents: bytemuck::cast_slice(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let bind_group = super::elementwise::bind_buffers(ctx, &pipeline, "decode", &[&words, &output, &params])?;
    let mut out = vec![0f32; n];
    super::elementwise::dispatch_and_read(ctx, &pipeline, &bind_group, &output, n, 256, &mut out)?;
    Ok(out)
}
