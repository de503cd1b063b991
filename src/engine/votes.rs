//! The vote arithmetic of a claim: how many votes it needs, and until when the votes
//! a claimant counts still make a majority (DESIGN.md section 5). Pure: which votes
//! count (the echo, the incarnation, the drift allowance) is the engine's to decide;
//! this module only adds them up.

use std::time::Duration;

use crate::placement::{ClusterModel, QuorumMode};

/// One vote a claimant counts: valid until `until` (its own conservative local
/// time), cast under `epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CountedVote {
    pub until: Duration,
    pub epoch: u64,
}

/// The votes a claim needs: its own with quorum `none`, else a majority of the
/// voters, the witness included.
pub(super) fn needed(model: &ClusterModel) -> usize {
    match model.quorum {
        QuorumMode::None => 1,
        _ => model.votes_needed(),
    }
}

/// When the `needed` longest-lived of `votes` stop being enough (the `needed`-th
/// latest expiry), and the highest epoch among those; `None` with fewer votes than
/// `needed`. Among votes that expire together, the earlier in `votes` counts first.
pub(super) fn majority(mut votes: Vec<CountedVote>, needed: usize) -> Option<(Duration, u64)> {
    if needed == 0 || votes.len() < needed {
        return None;
    }
    votes.sort_by_key(|v| std::cmp::Reverse(v.until));
    let until = votes[needed - 1].until;
    let epoch = votes
        .iter()
        .take(needed)
        .map(|v| v.epoch)
        .max()
        .unwrap_or(0);
    Some((until, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{FailbackPolicy, GroupModel, MemberModel};

    fn model(members: usize, quorum: QuorumMode) -> ClusterModel {
        ClusterModel {
            cluster: "ns/c".into(),
            members: (1..=members)
                .map(|i| MemberModel {
                    name: format!("n{i}"),
                    priority: 100,
                    paused: false,
                })
                .collect(),
            quorum,
            interval: Duration::from_millis(200),
            dead_after: Duration::from_secs(1),
            quarantine: None,
            groups: vec![GroupModel {
                name: "web".into(),
                preferred_owners: vec![],
                failback: FailbackPolicy::Never,
                failover_limit: None,
                owner: None,
            }],
        }
    }

    fn vote(until_ms: u64, epoch: u64) -> CountedVote {
        CountedVote {
            until: Duration::from_millis(until_ms),
            epoch,
        }
    }

    #[test]
    fn a_claim_needs_a_majority_of_the_voters_and_the_witness_votes() {
        assert_eq!(needed(&model(3, QuorumMode::Majority)), 2);
        assert_eq!(needed(&model(4, QuorumMode::Majority)), 3);
        assert_eq!(needed(&model(5, QuorumMode::Majority)), 3);
        // Two members and the witness: three voters, two of them needed.
        assert_eq!(needed(&model(2, QuorumMode::Witness)), 2);
        assert_eq!(needed(&model(3, QuorumMode::None)), 1);
    }

    #[test]
    fn fewer_votes_than_needed_make_no_majority() {
        assert_eq!(majority(vec![vote(500, 1)], 2), None);
        assert_eq!(majority(vec![vote(500, 1), vote(900, 1)], 3), None);
        assert_eq!(majority(Vec::new(), 1), None);
    }

    #[test]
    fn three_members_hold_until_the_second_latest_vote_lapses() {
        let votes = vec![vote(400, 1), vote(900, 1), vote(700, 1)];
        assert_eq!(majority(votes, 2), Some((Duration::from_millis(700), 1)));
    }

    #[test]
    fn five_members_hold_until_the_third_latest_vote_lapses() {
        let votes = vec![
            vote(300, 1),
            vote(900, 1),
            vote(500, 1),
            vote(800, 1),
            vote(100, 1),
        ];
        assert_eq!(majority(votes, 3), Some((Duration::from_millis(500), 1)));
    }

    #[test]
    fn the_epoch_is_the_highest_among_the_votes_that_make_the_majority() {
        // The vote of epoch 9 lapses first: the majority is made without it.
        let votes = vec![vote(100, 9), vote(900, 2), vote(700, 4)];
        assert_eq!(majority(votes, 2), Some((Duration::from_millis(700), 4)));
    }
}
