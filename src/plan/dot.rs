//! Graphviz DOT rendering of a task graph, drawn as dask draws its graphs: one ellipse per
//! task (operation), one box per result block, bottom to top.

use std::fmt::Write;

use super::{Placements, TaskGraph, TaskKind};

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
        | TaskKind::GroupReduce { .. }
        | TaskKind::Coarsen { .. } => "#d8f0d0",
        TaskKind::Gaussian { .. } | TaskKind::GaussianTiles(_) | TaskKind::Along { .. } | TaskKind::Map { .. } => {
            "#f0d8f0"
        }
    }
}

/// The graph in DOT; with `placed`, device tasks are drawn with a thick red border and a
/// `[device]` line, and every transfer as a dashed edge marked `upload` or `read back`.
pub(super) fn render(graph: &TaskGraph, placed: Option<&Placements>) -> String {
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
        let on_device = placed.is_some_and(|p| p.tasks[i].device);
        let (place, border) = match placed {
            Some(_) if on_device => ("\\n[device]", ", penwidth=2.5, color=\"#c0392b\""),
            Some(_) => ("\\n[host]", ""),
            None => ("", ""),
        };
        let _ = writeln!(
            out,
            "  t{i} [label=\"{}\\n{what}{place}\", shape=ellipse, style=filled, fillcolor=\"{}\"{border}];",
            t.label.replace('"', "'"),
            colour(&t.kind)
        );
        let _ = writeln!(out, "  b{i} [label=\"({block})\\n{} B\", shape=box];", t.out_bytes);
        let _ = writeln!(out, "  t{i} -> b{i};");
        for d in &t.deps {
            let moved = placed.and_then(|p| p.transfers.iter().find(|x| x.from == *d && x.to == Some(i)));
            match moved {
                Some(x) if x.upload => {
                    let _ = writeln!(
                        out,
                        "  b{d} -> t{i} [style=dashed, color=\"#c0392b\", label=\"upload\"];"
                    );
                }
                Some(_) => {
                    let _ = writeln!(
                        out,
                        "  b{d} -> t{i} [style=dashed, color=\"#2c3e50\", label=\"read back\"];"
                    );
                }
                None => {
                    let _ = writeln!(out, "  b{d} -> t{i};");
                }
            }
        }
    }
    out.push_str("}\n");
    out
}
