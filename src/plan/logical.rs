//! The logical plan: the expression DAG bound once, as the optimizer's passes read and rewrite
//! it, before any block exists. Its `Display` is the plan `explain` prints: one line per node,
//! inputs indented under their consumer, a node read by several consumers written once and
//! referred to by a `%k` tag after.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::expr::{AxisMap, Node, NodeId, Op};

/// The roots of a computation as the optimizer sees them: plain data, rewritten by passes that
/// return a new plan (shared subtrees stay shared).
#[derive(Debug, Clone)]
pub struct LogicalPlan {
    pub(crate) roots: Vec<Arc<Node>>,
}

impl LogicalPlan {
    /// Binds the requested results into one plan. Costs a clone of each root's pointer.
    pub fn bind(roots: &[Arc<Node>]) -> Self {
        LogicalPlan { roots: roots.to_vec() }
    }

    /// The requested results, in the order asked.
    pub fn roots(&self) -> &[Arc<Node>] {
        &self.roots
    }

    /// Number of distinct nodes in the plan (shared ones once). O(nodes).
    pub fn node_count(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<&Arc<Node>> = self.roots.iter().collect();
        while let Some(n) = stack.pop() {
            if seen.insert(n.id) {
                stack.extend(n.inputs.iter());
            }
        }
        seen.len()
    }
}

/// One node's line: what it does, its shape and blocks.
fn describe(node: &Node) -> String {
    let what = match &node.op {
        Op::Select { maps, fixed } => {
            let mut parts: Vec<String> = maps.iter().map(describe_map).collect();
            parts.extend(fixed.iter().map(|(a, i)| format!("a{a}={i}")));
            format!("getitem [{}]", parts.join(", "))
        }
        Op::Reduce { op, axes } => format!("{} over {axes:?}", op.name()),
        Op::GroupReduce { op, axis, groups, .. } => format!("group-{} of axis {axis} into {groups}", op.name()),
        Op::Coarsen { op, windows } => format!("coarsen-{} by {windows:?}", op.name()),
        Op::Gaussian { sigma, mode, .. } => format!("gaussian sigma {sigma:?} {mode:?}"),
        Op::Concat { axis } => format!("concatenate along {axis}"),
        Op::Along { axis, op } => format!("{} along {axis}", op.name()),
        op => op.name(),
    };
    format!(
        "{what}  {:?} in {:?} {}",
        node.shape(),
        node.grid.max_block_shape(),
        node.dtype
    )
}

/// `a2[10:30]`, `a1[::-1]`, `a0[3 picked]`, `new(4)`: which input axis, which indices.
fn describe_map(m: &AxisMap) -> String {
    match m {
        AxisMap::Strided { axis, start, step, len } => {
            if *step == 1 {
                format!("a{axis}[{start}:{}]", start + len)
            } else {
                format!("a{axis}[{start}::{step} x{len}]")
            }
        }
        AxisMap::List { axis, indices } => format!("a{axis}[{} picked]", indices.len()),
        AxisMap::New { len } => format!("new({len})"),
    }
}

impl fmt::Display for LogicalPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tag the nodes read more than once, in the order they are first written.
        let mut readers: HashMap<NodeId, usize> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<&Arc<Node>> = self.roots.iter().collect();
        for r in &self.roots {
            *readers.entry(r.id).or_insert(0) += 1;
        }
        while let Some(n) = stack.pop() {
            if seen.insert(n.id) {
                for i in &n.inputs {
                    *readers.entry(i.id).or_insert(0) += 1;
                    stack.push(i);
                }
            }
        }
        let mut tags: HashMap<NodeId, usize> = HashMap::new();
        for (k, root) in self.roots.iter().enumerate() {
            writeln!(f, "result {k}:")?;
            write_node(f, root, 1, &readers, &mut tags)?;
        }
        Ok(())
    }
}

fn write_node(
    f: &mut fmt::Formatter<'_>,
    node: &Arc<Node>,
    depth: usize,
    readers: &HashMap<NodeId, usize>,
    tags: &mut HashMap<NodeId, usize>,
) -> fmt::Result {
    let pad = "  ".repeat(depth);
    if let Some(tag) = tags.get(&node.id) {
        return writeln!(f, "{pad}%{tag} (above)");
    }
    let tag = if readers.get(&node.id).copied().unwrap_or(0) > 1 {
        let t = tags.len() + 1;
        tags.insert(node.id, t);
        format!("%{t} ")
    } else {
        String::new()
    };
    writeln!(f, "{pad}{tag}{}", describe(node))?;
    for input in &node.inputs {
        write_node(f, input, depth + 1, readers, tags)?;
    }
    Ok(())
}
