//! Merging nearby byte ranges into fewer requests.

use std::ops::Range;

/// One request covering several asked-for ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalescedRange {
    /// the bytes to fetch
    pub range: Range<u64>,
    /// indices (into the input) of the ranges it covers
    pub members: Vec<usize>,
}

/// Groups `ranges` into requests: sorted by start, a range joins the previous request when the
/// gap between them is at most `max_gap` bytes and the request stays within `max_len` bytes.
/// Overlapping and duplicate ranges share a request. Empty ranges get a request of their own
/// only if nothing else covers them. Costs a sort of the ranges.
///
/// ```
/// let groups = strata::io::coalesce(&[0..10, 12..20, 100..110], 4, 1 << 20);
/// assert_eq!(groups.len(), 2);
/// assert_eq!(groups[0].range, 0..20);
/// assert_eq!(groups[0].members, vec![0, 1]);
/// ```
pub fn coalesce(ranges: &[Range<u64>], max_gap: u64, max_len: u64) -> Vec<CoalescedRange> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut out: Vec<CoalescedRange> = Vec::new();
    for i in order {
        let r = &ranges[i];
        if let Some(last) = out.last_mut() {
            let end = last.range.end.max(r.end);
            if r.start <= last.range.end.saturating_add(max_gap) && end - last.range.start <= max_len {
                last.range.end = end;
                last.members.push(i);
                continue;
            }
        }
        out.push(CoalescedRange {
            range: r.clone(),
            members: vec![i],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_gap_and_length() {
        let g = coalesce(&[50..60, 0..10, 10..20, 5..8, 200..300], 30, 100);
        assert_eq!(
            g,
            vec![
                CoalescedRange {
                    range: 0..60,
                    members: vec![1, 3, 2, 0]
                },
                CoalescedRange {
                    range: 200..300,
                    members: vec![4]
                },
            ]
        );
        // max_len splits a run of adjacent ranges
        let g = coalesce(&[0..40, 40..80, 80..120], 0, 100);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].range, 0..80);
        assert!(coalesce(&[], 10, 10).is_empty());
    }
}
