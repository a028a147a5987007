//! Majority math over one or several configs, as pure functions.

use std::collections::BTreeSet;

use crate::node::{LogIndex, NodeId};

/// True when `granted` holds for a majority of every config.
pub fn is_quorum(configs: &[BTreeSet<NodeId>], granted: impl Fn(NodeId) -> bool) -> bool {
    configs.iter().all(|config| {
        let votes = config.iter().filter(|id| granted(**id)).count();
        votes * 2 > config.len()
    })
}

/// The greatest index that a majority of every config has reached.
///
/// `matched(id)` is how far node `id`'s log is known to match the leader's.
pub fn committed_index(configs: &[BTreeSet<NodeId>], matched: impl Fn(NodeId) -> LogIndex) -> LogIndex {
    let mut scratch = Vec::with_capacity(8);
    configs
        .iter()
        .map(|config| {
            scratch.clear();
            scratch.extend(config.iter().map(|id| matched(*id)));
            // descending: the majority-th greatest is reached by a majority
            scratch.sort_unstable_by(|a, b| b.cmp(a));
            scratch.get(config.len() / 2).copied().unwrap_or(LogIndex(0))
        })
        .min()
        .unwrap_or(LogIndex(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn majority_of_three_needs_two() {
        let configs = [set(&[1, 2, 3])];
        assert!(!is_quorum(&configs, |id| id == NodeId(1)));
        assert!(is_quorum(&configs, |id| id != NodeId(3)));
    }

    #[test]
    fn joint_quorum_needs_majority_of_each_config() {
        let configs = [set(&[1, 2, 3]), set(&[3, 4, 5])];
        // majority of old only
        assert!(!is_quorum(&configs, |id| [1, 2].map(NodeId).contains(&id)));
        // majority of new only
        assert!(!is_quorum(&configs, |id| [4, 5].map(NodeId).contains(&id)));
        assert!(is_quorum(&configs, |id| [2, 3, 4].map(NodeId).contains(&id)));
    }

    #[test]
    fn committed_index_is_min_over_configs_of_majority_match() {
        let configs = [set(&[1, 2, 3]), set(&[3, 4, 5])];
        let matched = |id: NodeId| LogIndex([0, 10, 9, 5, 7, 1][id.0 as usize]);
        // old: 10,9,5 -> 9 ; new: 7,5,1 -> 5
        assert_eq!(committed_index(&configs, matched), LogIndex(5));
        assert_eq!(committed_index(&configs[..1], matched), LogIndex(9));
    }

    #[test]
    fn even_config_needs_more_than_half() {
        let configs = [set(&[1, 2, 3, 4])];
        assert!(!is_quorum(&configs, |id| id <= NodeId(2)));
        let matched = |id: NodeId| LogIndex([0, 4, 3, 2, 1][id.0 as usize]);
        assert_eq!(committed_index(&configs, matched), LogIndex(2));
    }
}
