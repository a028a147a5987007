//! Calls with a change id are answered as one change.
//!
//! The simulator repeats some changes under their first call's id (after an
//! unknown outcome, a crash, on another node, much later) and reuses some ids
//! for another change. For each id:
//!
//! - **Retries agree.** Once a call under the id got a definite outcome from
//!   the log (done at an entry, rolled back at an entry, superseded), every
//!   later answer to a call asking the same change that is definite too names
//!   the same outcome (done or rolled back at the same entry). A refusal
//!   ("invalid", "precondition failed") after such an outcome is a lie: the
//!   change took effect. Transient answers (not the leader, learner not ready,
//!   unknown) promise nothing and are not compared.
//! - **A reused id changes nothing.** A call asking another change under an
//!   id whose change had committed entries when it was made must not
//!   succeed; a call asking the same change must not be refused as a reuse.
//! - **Done means its entry.** A success names an entry tagged with the id
//!   that committed (in the id's run, see `change_id_once`); a success with
//!   an untagged entry (a change that found a joint config already as asked)
//!   must not be followed by a committed entry tagged with the id: the change
//!   would have been applied twice.

use std::collections::HashMap;

use ferraft::{BasicNode, ChangeMembers, ChangeMembershipError, LogId, NodeId, StoredMembership};

use super::change_id_once::Runs;
use super::{Check, Violation};

const RULE: &str = "change id answers";

type SimStored = StoredMembership<BasicNode>;
type Answer = Result<SimStored, ChangeMembershipError<BasicNode>>;

/// What a call under a change id asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdAsked {
    /// The change.
    pub change: ChangeMembers<BasicNode>,
    /// Keep removed voters as learners.
    pub retain: bool,
}

#[derive(Debug, Clone)]
struct IdCall {
    change_id: String,
    asked: IdAsked,
    node: NodeId,
    request_id: u64,
    /// Another change than the id's own, made while the id's change had committed entries.
    reuse: bool,
    issued_ms: u64,
    answer: Option<Answer>,
}

impl IdCall {
    fn describe(&self) -> String {
        let kind = if self.reuse { "reuse" } else { "call" };
        format!(
            "{kind} {} under change id {:?} to n{} ({:?} retain {}) at {} ms",
            self.request_id, self.change_id, self.node, self.asked.change, self.asked.retain, self.issued_ms
        )
    }
}

/// A definite outcome read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done(Option<LogId>),
    RolledBack(Option<LogId>),
    Superseded,
    Refused,
}

fn outcome(answer: &Answer) -> Option<Outcome> {
    use ChangeMembershipError as E;
    match answer {
        Ok(stored) => Some(Outcome::Done(stored.log_id)),
        Err(E::RolledBack { membership }) => Some(Outcome::RolledBack(membership.log_id)),
        Err(E::PartiallyApplied { .. }) => Some(Outcome::Superseded),
        Err(E::Invalid(_) | E::PreconditionFailed { .. }) => Some(Outcome::Refused),
        Err(_) => None,
    }
}

/// The calls made under change ids, and their answers.
#[derive(Debug, Default)]
pub struct ChangeIdAnswers {
    calls: Vec<IdCall>,
    by_request: HashMap<u64, usize>,
    /// Each id's own change: what its first call (not a reuse) asked.
    owners: HashMap<String, IdAsked>,
}

impl ChangeIdAnswers {
    /// `node` is asked `asked` under `change_id` as request `request_id`;
    /// `taken`: the id's change has committed entries now. Returns whether
    /// the call asks another change than the id's own (a reuse).
    pub fn issue(
        &mut self,
        change_id: &str,
        asked: IdAsked,
        node: NodeId,
        request_id: u64,
        taken: bool,
        now_ms: u64,
    ) -> bool {
        let owner = self.owners.entry(change_id.to_string()).or_insert_with(|| asked.clone());
        let reuse = *owner != asked;
        // a different change under an id nobody committed yet is not a reuse
        // the cluster can know of: it is only compared with nothing
        let reuse = reuse && taken;
        self.by_request.insert(request_id, self.calls.len());
        self.calls.push(IdCall {
            change_id: change_id.to_string(),
            asked,
            node,
            request_id,
            reuse,
            issued_ms: now_ms,
            answer: None,
        });
        reuse
    }

    /// The id's own change, if a call was made under it.
    pub fn owner(&self, change_id: &str) -> Option<&IdAsked> {
        self.owners.get(change_id)
    }

    /// The ids of the calls (not reuses) made to `node` and not answered yet.
    pub fn open_on(&self, node: NodeId) -> Vec<String> {
        (self.calls.iter())
            .filter(|c| c.node == node && c.answer.is_none() && !c.reuse)
            .map(|c| c.change_id.clone())
            .collect()
    }

    /// The change id of request `request_id`, unless it is a reuse.
    pub fn change_id_of(&self, request_id: u64) -> Option<String> {
        let call = &self.calls[*self.by_request.get(&request_id)?];
        (!call.reuse).then(|| call.change_id.clone())
    }

    /// Every id used.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.owners.keys()
    }

    /// Request `request_id` was answered `answer` (nothing to check when it
    /// was not made under a change id).
    pub fn observe_done(&mut self, request_id: u64, answer: &Answer) -> Check {
        let Some(&index) = self.by_request.get(&request_id) else { return Ok(()) };
        if self.calls[index].answer.is_some() {
            return Ok(());
        }
        self.calls[index].answer = Some(answer.clone());
        let call = &self.calls[index];
        let fail = |detail: String| Err(Violation { rule: RULE, detail: format!("{} {detail}", call.describe()) });
        let reused = matches!(answer, Err(ChangeMembershipError::ChangeIdReused { .. }));
        if call.reuse {
            if let Some(Outcome::Done(_) | Outcome::RolledBack(_) | Outcome::Superseded) = outcome(answer) {
                return fail(format!("asks another change than the id's own, yet was answered {answer:?}"));
            }
            return Ok(());
        }
        let owner = self.owners.get(&call.change_id).expect("issued");
        if reused && *owner == call.asked {
            return fail("asks the id's own change, yet was refused as a reuse".to_string());
        }
        let Some(mine) = outcome(answer) else { return Ok(()) };
        // the first definite outcome from the log among earlier answers of the same change
        let first = self.calls[..]
            .iter()
            .filter(|c| c.change_id == call.change_id && !c.reuse && c.request_id != call.request_id);
        for earlier in first {
            let Some(theirs) = earlier.answer.as_ref().and_then(outcome) else { continue };
            if theirs == Outcome::Refused {
                // a refusal is remembered by the leader that gave it only
                continue;
            }
            if theirs != mine {
                return fail(format!(
                    "was answered {answer:?}, but {} was answered {:?} before",
                    earlier.describe(),
                    earlier.answer.as_ref().expect("answered")
                ));
            }
            break;
        }
        Ok(())
    }

    /// At the end of a run, against the committed entries by id: successes
    /// name the id's entries, and nothing was applied twice.
    pub fn final_check(&self, runs: &Runs) -> Check {
        for call in self.calls.iter().filter(|c| !c.reuse) {
            let Some(Ok(stored)) = &call.answer else { continue };
            let run = runs.get(&call.change_id).map(Vec::as_slice).unwrap_or_default();
            let in_run = run.iter().any(|(l, _)| Some(*l) == stored.log_id);
            let fail = |why: String| {
                let shown: Vec<String> = run.iter().map(|(l, m)| format!("{l}: {m}")).collect();
                Err(Violation {
                    rule: RULE,
                    detail: format!(
                        "{} answered done at {:?} ({}), {why}; the id's committed entries: [{}]",
                        call.describe(),
                        stored.log_id.map(|l| l.to_string()),
                        stored.membership,
                        shown.join(", ")
                    ),
                })
            };
            if stored.membership.change_id() == Some(call.change_id.as_str()) {
                if !in_run {
                    return fail("an entry with the id that is not among the id's committed entries".to_string());
                }
            } else if let Some((later, _)) = run.iter().find(|(l, _)| Some(l.index) > stored.log_id.map(|s| s.index)) {
                return fail(format!("with an untagged entry, yet {later} carrying the id committed after it"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ferraft::{Membership, Term};

    use super::*;
    use crate::invariants::test_log_id as id;
    use crate::invariants::{ChangeIdOnce, CommittedNeverLost};

    fn add(node: u64) -> IdAsked {
        IdAsked { change: ChangeMembers::AddVoterIds([NodeId(node)].into()), retain: false }
    }

    fn stored(index: u64, change_id: Option<&str>) -> SimStored {
        let nodes = (1..=4).map(|n| (NodeId(n), BasicNode::new(format!("n{n}")))).collect();
        let membership = Membership::new(vec![(1..=4).map(NodeId).collect()], nodes)
            .unwrap()
            .with_change_id(change_id.map(str::to_string));
        StoredMembership { log_id: Some(id(1, 1, index)), membership }
    }

    #[test]
    fn a_retry_answered_otherwise_than_the_first_call_is_caught() {
        let mut answers = ChangeIdAnswers::default();
        answers.issue("a", add(4), NodeId(1), 1, false, 0);
        answers.observe_done(1, &Ok(stored(5, Some("a")))).unwrap();
        answers.issue("a", add(4), NodeId(2), 2, true, 10);
        let rolled_back = Err(ChangeMembershipError::RolledBack { membership: Box::new(stored(7, Some("a"))) });
        assert!(answers.observe_done(2, &rolled_back).is_err());
        answers.issue("a", add(4), NodeId(2), 3, true, 20);
        assert!(answers.observe_done(3, &Ok(stored(5, Some("a")))).is_ok());
    }

    #[test]
    fn a_reused_id_that_succeeds_is_caught() {
        let mut answers = ChangeIdAnswers::default();
        answers.issue("a", add(4), NodeId(1), 1, false, 0);
        answers.observe_done(1, &Ok(stored(5, Some("a")))).unwrap();
        assert!(answers.issue("a", add(3), NodeId(1), 2, true, 10));
        assert!(answers.observe_done(2, &Ok(stored(6, Some("a")))).is_err());
        answers.issue("a", add(4), NodeId(1), 3, true, 10);
        let reused = Err(ChangeMembershipError::ChangeIdReused { change_id: "a".into() });
        assert!(answers.observe_done(3, &reused).is_err(), "the id's own change is no reuse");
    }

    #[test]
    fn a_success_not_in_the_ids_entries_is_caught() {
        let mut once = ChangeIdOnce::default();
        let mut chain = CommittedNeverLost::default();
        for index in 1..=6 {
            chain.observe_commit(NodeId(1), id(1, 1, index), Term(1)).unwrap();
        }
        once.observe_append(id(1, 1, 5), &stored(5, Some("a")).membership);
        let mut answers = ChangeIdAnswers::default();
        answers.issue("a", add(4), NodeId(1), 1, false, 0);
        answers.observe_done(1, &Ok(stored(5, Some("a")))).unwrap();
        assert!(answers.final_check(&once.runs(&chain)).is_ok());
        answers.issue("a", add(4), NodeId(1), 2, true, 0);
        assert!(answers.observe_done(2, &Ok(stored(6, Some("a")))).is_err(), "another entry than the first's");
        assert!(answers.final_check(&once.runs(&chain)).is_err());
    }
}
