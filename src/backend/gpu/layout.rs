//! How the reduction kernels see a block: `(outer, len, inner)` around the reduced axes, and
//! groups of axis indices as a counting sort of their labels.

/// `shape` as (outer, len, inner) around `axes`, when they are one run of consecutive axes.
pub(super) fn layout(shape: &[usize], axes: &[usize]) -> Option<(usize, usize, usize)> {
    let (&first, &last) = (axes.iter().min()?, axes.iter().max()?);
    if last >= shape.len() || last - first + 1 != axes.len() {
        return None;
    }
    let p = |r: std::ops::Range<usize>| shape[r].iter().product::<usize>();
    Some((p(0..first), p(first..last + 1), p(last + 1..shape.len())))
}

/// Group g's axis indices are `members[starts[g]..starts[g + 1]]` (a counting sort of labels).
pub(super) fn group_members(labels: &[usize], groups: usize) -> (Vec<u32>, Vec<u32>) {
    let mut starts = vec![0u32; groups + 1];
    for &l in labels {
        starts[l + 1] += 1;
    }
    for g in 0..groups {
        starts[g + 1] += starts[g];
    }
    let mut fill = starts.clone();
    let mut members = vec![0u32; labels.len()];
    for (t, &l) in labels.iter().enumerate() {
        members[fill[l] as usize] = t as u32;
        fill[l] += 1;
    }
    (starts, members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_and_groups_by_hand() {
        assert_eq!(layout(&[2, 3, 4, 5], &[1, 2]), Some((2, 12, 5)));
        assert_eq!(layout(&[2, 3, 4], &[0, 2]), None);
        let (starts, members) = group_members(&[1, 0, 1, 2, 0], 4);
        assert_eq!(starts, vec![0, 2, 4, 5, 5]);
        assert_eq!(members, vec![1, 4, 0, 2, 3]);
    }
}
