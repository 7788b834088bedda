//! Graphviz DOT rendering of a task graph, drawn as dask draws its graphs: one ellipse per
//! task (operation), one box per result block, bottom to top.

use std::fmt::Write;

use super::{TaskGraph, TaskKind};

fn colour(kind: &TaskKind) -> &'static str {
    match kind {
        TaskKind::Fill { .. } | TaskKind::Host { .. } | TaskKind::Source { .. } | TaskKind::Persisted { .. } => {
            "#d8e8f8"
        }
        TaskKind::Fused { .. } => "#f8e0c0",
        TaskKind::Gather { .. } => "#e8e8e8",
        TaskKind::ReducePartial { .. }
        | TaskKind::ReduceCombine { .. }
        | TaskKind::Holistic { .. }
        | TaskKind::GroupReduce { .. } => "#d8f0d0",
        TaskKind::Gaussian { .. } | TaskKind::GaussianTiles(_) | TaskKind::Map { .. } => "#f0d8f0",
    }
}

pub(super) fn render(graph: &TaskGraph) -> String {
    let mut out = String::from("digraph strata {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n");
    for (i, t) in graph.tasks.iter().enumerate() {
        let block = t.block.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
        let what = match &t.kind {
            TaskKind::Fused { program, .. } => format!("fused ({} ops)", program.op_count()),
            TaskKind::ReducePartial { op, .. } => format!("{}-chunk", op.name()),
            TaskKind::ReduceCombine { op, finalize: true } => format!("{}-agg", op.name()),
            TaskKind::ReduceCombine { op, finalize: false } => format!("{}-combine", op.name()),
            kind => kind.name().to_string(),
        };
        let _ = writeln!(
            out,
            "  t{i} [label=\"{}\\n{what}\", shape=ellipse, style=filled, fillcolor=\"{}\"];",
            t.label.replace('"', "'"),
            colour(&t.kind)
        );
        let _ = writeln!(out, "  b{i} [label=\"({block})\\n{} B\", shape=box];", t.out_bytes);
        let _ = writeln!(out, "  t{i} -> b{i};");
        for d in &t.deps {
            let _ = writeln!(out, "  b{d} -> t{i};");
        }
    }
    out.push_str("}\n");
    out
}
