//! `explain`: the planner's passes, one after the other, as text (polars' `explain`).

use std::fmt;

use super::{Layout, LogicalPlan, Placements, RewriteLog, TaskGraph};

/// What the planner made of a computation: the logical plan as written, the rewrite rules
/// that fired, the optimized plan, its layout of block tables, the task graph they emit, and
/// where each task is placed. Built by `Array::explain`; `Display` prints it all.
#[derive(Debug, Clone)]
pub struct Explain {
    /// the plan as written
    pub written: LogicalPlan,
    /// what the rewrite passes did
    pub rewrites: RewriteLog,
    /// the plan after them
    pub optimized: LogicalPlan,
    /// the block tables it lays out (grids and how each is produced)
    pub layout: Layout,
    /// the task graph they emit
    pub graph: TaskGraph,
    /// where each task runs on the chosen backend
    pub placements: Placements,
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "== logical plan, as written ({} nodes) ==",
            self.written.node_count()
        )?;
        write!(f, "{}", self.written)?;
        writeln!(f, "== rewrite passes ==")?;
        if self.rewrites.fired.is_empty() {
            writeln!(f, "  (no rule fired)")?;
        }
        for (pass, rule, n) in &self.rewrites.fired {
            writeln!(f, "  {pass}: {rule} x{n}")?;
        }
        writeln!(
            f,
            "== logical plan, optimized ({} nodes) ==",
            self.optimized.node_count()
        )?;
        write!(f, "{}", self.optimized)?;
        writeln!(f, "== layout ({} block tables) ==", self.layout.len())?;
        write!(f, "{}", self.layout)?;
        writeln!(f, "== physical plan ==")?;
        let list = |counts: &[(&str, usize)]| {
            counts
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "  {} tasks: {}", self.graph.tasks.len(), list(&self.graph.counts()))?;
        let reads: Vec<&super::Task> = self
            .graph
            .tasks
            .iter()
            .filter(|t| matches!(t.kind, super::TaskKind::Source { .. }))
            .collect();
        let read_bytes: u64 = reads.iter().map(|t| t.out_bytes).sum();
        writeln!(
            f,
            "  source reads: {} blocks, {:.1} MB decoded",
            reads.len(),
            read_bytes as f64 / 1e6
        )?;
        writeln!(f, "== placement ==")?;
        let (device, host) = self.placements.counts(&self.graph);
        writeln!(f, "  {}", self.placements)?;
        writeln!(
            f,
            "  device: {}",
            if device.is_empty() { "-".into() } else { list(&device) }
        )?;
        writeln!(f, "  host: {}", if host.is_empty() { "-".into() } else { list(&host) })?;
        Ok(())
    }
}
