//! The cull pass (dask's `cull`): drops the blocks no result reads. A selection reads only
//! the source blocks inside it and a concatenation's block only the inputs it spans; the
//! layout lays out whole tables, so their other blocks go here.

use super::{OutputTable, Task, TaskGraph};

/// Drops tasks no output needs and renumbers the rest, keeping their order. O(tasks + deps).
pub(super) fn prune(tasks: Vec<Task>, mut outputs: Vec<OutputTable>) -> TaskGraph {
    let mut live = vec![false; tasks.len()];
    let mut stack: Vec<usize> = outputs.iter().flat_map(|o| o.tasks.iter().copied()).collect();
    while let Some(t) = stack.pop() {
        if !live[t] {
            live[t] = true;
            stack.extend(tasks[t].deps.iter().copied());
        }
    }
    let mut new_id = vec![usize::MAX; tasks.len()];
    let mut kept = Vec::new();
    for (i, mut task) in tasks.into_iter().enumerate() {
        if live[i] {
            new_id[i] = kept.len();
            task.deps.iter_mut().for_each(|d| *d = new_id[*d]);
            kept.push(task);
        }
    }
    for out in &mut outputs {
        out.tasks.iter_mut().for_each(|t| *t = new_id[*t]);
    }
    TaskGraph { tasks: kept, outputs }
}
