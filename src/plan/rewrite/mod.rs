//! The optimizer: an ordered list of rewrite passes over the [`LogicalPlan`], run before
//! lowering. Each pass returns a new plan and counts the rules it fired, so `explain` shows
//! what moved.
//!
//! Today's pass is selection pushdown: a selection (a slice, `loc`, `isel`, `sel`) moves
//! below elementwise operations, reductions over other axes, group reductions along a whole
//! grouped axis, and gaussians (widened by their halo, cut back above). Sources then read only
//! what the result needs, the notebook's order (resample, then cut the area) costs what
//! cutting first costs, and a window of a huge array plans in time proportional to the
//! window. Values are unchanged: every kernel is independent of how its input is cut. Each
//! rule lives in its own file with a before → after plan test.
//!
//! Only selections that keep their input's axis order and add no axis move (the slices and
//! label cuts users write); one rewritten per (node, selection) pair, so results that cut the
//! same node the same way still share it.

use std::collections::HashMap;
use std::sync::Arc;

use super::logical::LogicalPlan;
use crate::expr::{AxisMap, ChunkGrid, Node, NodeId, Op};

mod elementwise;
mod fill;
mod gaussian;
mod group;
mod merge;
mod reduce;

/// One way a selection moves below the node it selects from.
trait SelectionRule: Sync {
    /// The rule's name, as `explain` lists it.
    fn name(&self) -> &'static str;

    /// `x` selected by `sel`, rewritten with the selection below `x`'s operation (through
    /// `push`, which moves it on down), or `None` when this rule does not apply.
    fn push(&self, push: &mut Pushdown, x: &Arc<Node>, sel: &Selection) -> Option<Arc<Node>>;
}

/// The pushdown's rules, tried in this order on every selection.
const RULES: [&dyn SelectionRule; 6] = [
    &merge::MergeSelections,
    &elementwise::ThroughElementwise,
    &fill::CutFill,
    &reduce::ThroughReduce,
    &group::ThroughGroupReduce,
    &gaussian::ThroughGaussian,
];

/// A selection's index maps (one per output axis) and dropped axes (see [`Op::Select`]).
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub maps: Vec<AxisMap>,
    pub fixed: Vec<(usize, usize)>,
}

/// How many times each rule of a pass fired, in the passes' order (what `explain` prints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteLog {
    /// (pass, rule, times fired), rules that never fired left out
    pub fired: Vec<(&'static str, &'static str, usize)>,
}

/// Runs the optimizer's passes in order. O(nodes × selections through them).
pub(crate) fn optimize(plan: &LogicalPlan) -> (LogicalPlan, RewriteLog) {
    let mut p = Pushdown::default();
    let roots = plan.roots.iter().map(|r| p.rewrite(r)).collect::<Vec<_>>();
    let fired = RULES
        .iter()
        .filter_map(|r| p.fired.get(r.name()).map(|&n| ("selection pushdown", r.name(), n)))
        .collect();
    (LogicalPlan { roots }, RewriteLog { fired })
}

/// The selection pushdown pass: walks the plan once, moving every selection it meets down as
/// far as the rules take it.
#[derive(Default)]
pub(crate) struct Pushdown {
    rebuilt: HashMap<NodeId, Arc<Node>>,
    selected: HashMap<(NodeId, String), Arc<Node>>,
    fired: HashMap<&'static str, usize>,
}

/// The grid of a selection of an input of grid `input`.
pub(crate) fn select_grid(input: &ChunkGrid, maps: &[AxisMap]) -> ChunkGrid {
    let sizes = maps
        .iter()
        .map(|m| match m {
            AxisMap::Strided { axis, start, step, len } => {
                input.cut_along(*axis, (0..*len).map(|i| (*start as isize + step * i as isize) as usize))
            }
            AxisMap::List { axis, indices } => input.cut_along(*axis, indices.iter().copied()),
            AxisMap::New { len } => vec![*len],
        })
        .map(|s| if s.is_empty() { vec![] } else { s })
        .collect();
    ChunkGrid::from_sizes(sizes)
}

/// Whether a selection keeps its input's axis order and adds no axis.
fn order_preserving(maps: &[AxisMap]) -> bool {
    let axes: Vec<Option<usize>> = maps.iter().map(AxisMap::input_axis).collect();
    axes.iter().all(Option::is_some) && axes.windows(2).all(|w| w[0] < w[1])
}

/// The whole of input axis `axis` of length `n`.
pub(crate) fn whole(axis: usize, n: usize) -> AxisMap {
    AxisMap::Strided {
        axis,
        start: 0,
        step: 1,
        len: n,
    }
}

/// A selection node of `input` (no rewrite visits it again).
pub(crate) fn select_node(input: Arc<Node>, maps: Vec<AxisMap>, fixed: Vec<(usize, usize)>) -> Arc<Node> {
    let grid = select_grid(&input.grid, &maps);
    let dtype = input.dtype;
    Node::new(Op::Select { maps, fixed }, vec![input], grid, dtype)
}

impl Pushdown {
    fn rewrite(&mut self, node: &Arc<Node>) -> Arc<Node> {
        if let Some(done) = self.rebuilt.get(&node.id) {
            return done.clone();
        }
        let out = match &node.op {
            Op::Select { maps, fixed } => {
                let sel = Selection {
                    maps: maps.clone(),
                    fixed: fixed.clone(),
                };
                self.select(&node.inputs[0], &sel, Some(node))
            }
            _ => {
                let inputs: Vec<Arc<Node>> = node.inputs.iter().map(|i| self.rewrite(i)).collect();
                if inputs.iter().zip(&node.inputs).all(|(a, b)| Arc::ptr_eq(a, b)) {
                    node.clone()
                } else {
                    Node::new(node.op.clone(), inputs, node.grid.clone(), node.dtype)
                }
            }
        };
        self.rebuilt.insert(node.id, out.clone());
        out
    }

    /// `x` selected by `sel`, moved as far down as the rules go: what a rule calls for the
    /// selection it moves below a node.
    pub(crate) fn below(&mut self, x: &Arc<Node>, maps: Vec<AxisMap>, fixed: Vec<(usize, usize)>) -> Arc<Node> {
        self.select(x, &Selection { maps, fixed }, None)
    }

    /// `x` selected by `sel`; `original` is the selection node as built, kept where nothing
    /// moves and its input is unchanged.
    fn select(&mut self, x: &Arc<Node>, sel: &Selection, original: Option<&Arc<Node>>) -> Arc<Node> {
        let key = (x.id, format!("{:?}{:?}", sel.maps, sel.fixed));
        if let Some(done) = self.selected.get(&key) {
            return done.clone();
        }
        let moved = if order_preserving(&sel.maps) {
            RULES.iter().find_map(|rule| {
                let out = rule.push(self, x, sel)?;
                *self.fired.entry(rule.name()).or_insert(0) += 1;
                Some(out)
            })
        } else {
            None
        };
        let out = moved.unwrap_or_else(|| {
            let input = self.rewrite(x);
            match original {
                Some(o) if Arc::ptr_eq(&input, x) => o.clone(),
                _ => select_node(input, sel.maps.clone(), sel.fixed.clone()),
            }
        });
        self.selected.insert(key, out.clone());
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::expr::{Chunks, DType, HostArray};

    /// A host array leaf of `shape` in blocks of `block`.
    pub fn leaf(shape: &[usize], block: &[usize]) -> Arc<Node> {
        let values = ndarray::ArcArray::<f32, ndarray::IxDyn>::zeros(shape);
        let grid = ChunkGrid::new(shape, &Chunks::Block(block.to_vec())).unwrap();
        Node::new(Op::Host(HostArray::F32(values)), vec![], grid, DType::F32)
    }

    /// `x[start..start+len]` on every axis in `ranges` (whole on the others).
    pub fn slice(x: &Arc<Node>, ranges: &[(usize, usize)]) -> Arc<Node> {
        let maps = ranges
            .iter()
            .enumerate()
            .map(|(axis, &(start, len))| AxisMap::Strided {
                axis,
                start,
                step: 1,
                len,
            })
            .collect();
        select_node(x.clone(), maps, vec![])
    }

    /// The plan before and after the optimizer, and what fired.
    pub fn optimized(root: &Arc<Node>) -> (String, String, RewriteLog) {
        let plan = LogicalPlan::bind(std::slice::from_ref(root));
        let (after, log) = optimize(&plan);
        (plan.to_string(), after.to_string(), log)
    }

    /// Lines of a plan without the leading two spaces of nesting under `result 0:`.
    pub fn lines(plan: &str) -> Vec<&str> {
        plan.lines().skip(1).map(|l| l.trim_end()).collect()
    }

    #[test]
    fn a_selection_nothing_moves_is_kept_as_built() {
        // a reversed axis order (a transpose) is not order preserving
        let x = leaf(&[4, 6], &[2, 3]);
        let maps = vec![whole(1, 6), whole(0, 4)];
        let t = select_node(x, maps, vec![]);
        let plan = LogicalPlan::bind(std::slice::from_ref(&t));
        let (after, log) = optimize(&plan);
        assert!(Arc::ptr_eq(&after.roots[0], &t));
        assert!(log.fired.is_empty());
    }
}
