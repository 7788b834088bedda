//! Dense outputs hand each block to one writer: a second view of the same block, which would
//! alias the first (undefined behaviour from safe code), is refused with a panic naming the
//! block; the executor, which asks once per block, fills every block.

use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{Array2, ArrayD, IxDyn};
use strata::backend::ResultMemory;
use strata::exec::{DenseOutputs, OutputSink};
use strata::expr::{Block, ChunkGrid, Chunks};

fn grid() -> ChunkGrid {
    ChunkGrid::new(&[4, 6], &Chunks::Block(vec![2, 3])).unwrap()
}

fn panic_text(r: std::thread::Result<()>) -> String {
    let p = r.expect_err("a second lease panics");
    p.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn a_block_asked_for_twice_is_refused() {
    let mut memory = ArrayD::from_elem(IxDyn(&[4, 6]), MaybeUninit::<f32>::uninit());
    let sink = DenseOutputs::new(vec![memory.view_mut()], vec![grid()], ResultMemory::Reused);
    let mut first = sink.direct(0, 1).expect("a view of block 1");
    first.fill(MaybeUninit::new(1.0));
    // The same block again, while the first view lives: refused.
    let msg = panic_text(catch_unwind(AssertUnwindSafe(|| {
        let _second = sink.direct(0, 1);
    })));
    assert!(msg.contains("block 1 of output 0 was asked for twice"), "{msg}");
    // Nor can it be written by value behind the view's back.
    let value = Block::F32(Array2::<f32>::zeros((2, 3)).into_dyn().into_shared());
    let msg = panic_text(catch_unwind(AssertUnwindSafe(|| sink.accept(0, 1, value.clone()))));
    assert!(msg.contains("asked for twice"), "{msg}");
    // Other blocks are still each handed out once; three of four were.
    sink.accept(0, 0, value.clone());
    sink.accept(0, 2, value);
    assert_eq!(sink.unwritten_blocks(), 1);
    drop(first);
}

#[test]
fn the_executor_leases_every_block_once() {
    // Through the public API: a result of 6 x 4 blocks, each written once, all of them.
    let a = strata::Array::from_fn(&[12, 16], vec![2, 4], "iota", |r| {
        let shape: Vec<usize> = r.iter().map(|r| r.len()).collect();
        ArrayD::from_shape_fn(shape, |i| ((r[0].start + i[0]) * 16 + r[1].start + i[1]) as f32)
    });
    let got = (&a + 1.0).compute().unwrap();
    for ((y, x), v) in got.into_dimensionality::<ndarray::Ix2>().unwrap().indexed_iter() {
        assert_eq!(*v, (y * 16 + x) as f32 + 1.0);
    }
}
