//! The prune pass: drops the tasks no result reads.

use super::{OutputTable, Task, TaskGraph};

/// Drops tasks no output needs (lowering may build a natural table it then regrids) and
/// renumbers the rest, keeping their order.
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
