//! Workflow membership: each workflow's invocations in submission order. A workflow of one
//! invocation (most: a call with no children) takes no entry at all, its root's slot says it is
//! one; a list of one (a workflow whose root is not stored) takes no heap allocation. What a
//! finished one-invocation workflow cost in memory was a fifth its membership.

use wf_core::InvocationId;

use super::Tables;

/// A workflow's invocations in submission order.
#[derive(Clone, Debug)]
pub(super) enum Members {
    /// Exactly one.
    One(InvocationId),
    /// None, or more than one.
    Many(Vec<InvocationId>),
}

impl Default for Members {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

impl Members {
    /// Appends `id`.
    pub(super) fn push(&mut self, id: InvocationId) {
        match self {
            Self::Many(list) if list.is_empty() => *self = Self::One(id),
            Self::Many(list) => list.push(id),
            Self::One(first) => *self = Self::Many(vec![*first, id]),
        }
    }

    /// The members, in order.
    pub(super) fn as_slice(&self) -> &[InvocationId] {
        match self {
            Self::One(id) => std::slice::from_ref(id),
            Self::Many(list) => list,
        }
    }

    /// Removes `id` (the last one added, when an operation is undone).
    pub(super) fn remove(&mut self, id: InvocationId) {
        match self {
            Self::One(only) if *only == id => *self = Self::default(),
            Self::One(_) => {}
            Self::Many(list) => {
                if list.last() == Some(&id) {
                    list.pop();
                } else {
                    list.retain(|m| *m != id);
                }
                if let [only] = list[..] {
                    *self = Self::One(only);
                }
            }
        }
    }

    /// Whether it has none.
    pub(super) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

/// Workflow membership kept in [`Tables::members`]: a workflow whose only member is its root
/// (most workflows) has no entry at all; its root's slot says it is a workflow.
impl Tables {
    /// The root of `wf` when it is a workflow of one invocation, kept without an entry.
    fn lone_root(&self, wf: InvocationId) -> Option<&InvocationId> {
        if self.members.contains_key(&wf) {
            return None;
        }
        self.invocations
            .get(&wf)
            .filter(|s| s.spec.identity.workflow_id == wf)
            .map(|s| &s.spec.id)
    }

    /// The invocations of workflow `wf` in submission order (none when it is not one).
    pub(super) fn members_of(&self, wf: InvocationId) -> &[InvocationId] {
        match self.members.get(&wf) {
            Some(m) => m.as_slice(),
            None => self.lone_root(wf).map_or(&[], std::slice::from_ref),
        }
    }

    /// Whether `wf` is a stored workflow.
    pub(super) fn is_workflow(&self, wf: InvocationId) -> bool {
        self.members.contains_key(&wf) || self.lone_root(wf).is_some()
    }

    /// Every stored workflow, sub-workflows included, in no particular order.
    pub(super) fn workflows(&self) -> impl Iterator<Item = InvocationId> + '_ {
        let lone = self
            .invocations
            .iter()
            .filter(|(id, s)| s.spec.identity.workflow_id == **id && !self.members.contains_key(id))
            .map(|(id, _)| *id);
        lone.chain(self.members.keys().copied())
    }

    /// Records `id`, being created, as the last member of workflow `wf`.
    pub(super) fn add_member(&mut self, wf: InvocationId, id: InvocationId) {
        if let Some(members) = self.members.get_mut(&wf) {
            members.push(id);
            return;
        }
        if id == wf {
            // A new workflow's root: a lone root until a second member comes.
            return;
        }
        let mut members = Members::default();
        if self.lone_root(wf).is_some() {
            members.push(wf);
        }
        members.push(id);
        self.members.insert(wf, members);
    }

    /// Removes workflow `wf`'s membership, returning its members (to purge them).
    pub(super) fn take_members(&mut self, wf: InvocationId) -> Members {
        match self.members.remove(&wf) {
            Some(members) => members,
            None => self
                .lone_root(wf)
                .map_or_else(Members::default, |root| Members::One(*root)),
        }
    }

    /// Forgets member `id` of workflow `wf` (an undone creation, the last one).
    pub(super) fn remove_member(&mut self, wf: InvocationId, id: InvocationId) {
        if let Some(members) = self.members.get_mut(&wf) {
            members.remove(id);
            if members.is_empty() || members.as_slice() == [wf] {
                self.members.remove(&wf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_order_through_pushes_and_removals() {
        let ids: Vec<InvocationId> = (1..=3).map(InvocationId::from_u128).collect();
        let mut m = Members::default();
        assert!(m.is_empty());
        for (n, id) in ids.iter().enumerate() {
            m.push(*id);
            assert_eq!(m.as_slice(), &ids[..=n]);
        }
        m.remove(ids[2]);
        m.remove(ids[1]);
        assert!(matches!(m, Members::One(_)));
        assert_eq!(m.as_slice(), &ids[..1]);
        m.remove(ids[0]);
        assert!(m.is_empty());
    }

    /// A workflow of one invocation takes no membership entry: not when its root is created,
    /// nor once an undone creation leaves it alone again.
    #[test]
    fn a_lone_root_takes_no_membership_entry() {
        use crate::conformance::fixtures::at_ms as at;
        use crate::tables::tests::{child, root};
        let mut t = Tables::new();
        let mut out = Vec::new();
        let p = root(1);
        let c = child(2, &p);
        t.submit(&mut out, p.clone(), at(0)).unwrap();
        assert!(t.members.is_empty(), "{:?}", t.members);
        assert_eq!(t.members_of(p.id).to_vec(), vec![p.id]);
        t.begin_undo();
        t.submit(&mut out, c.clone(), at(1)).unwrap();
        assert_eq!(t.members.len(), 1);
        assert_eq!(t.members_of(p.id).to_vec(), vec![p.id, c.id]);
        assert!(t.roll_back());
        assert!(t.members.is_empty(), "{:?}", t.members);
        assert_eq!(t.members_of(p.id).to_vec(), vec![p.id]);
    }

    /// One member is kept without a list (no heap allocation), from the first push on.
    #[test]
    fn one_member_takes_no_list() {
        let mut m = Members::default();
        m.push(InvocationId::from_u128(1));
        assert!(matches!(m, Members::One(_)), "{m:?}");
        assert!(!m.is_empty());
    }

    /// Removing takes out exactly the id given: a member in the middle, or one that is not
    /// there (nothing changes), not just the last one added.
    #[test]
    fn remove_takes_out_the_id_given_only() {
        let ids: Vec<InvocationId> = (1..=4).map(InvocationId::from_u128).collect();
        let mut m = Members::default();
        for id in &ids[..3] {
            m.push(*id);
        }
        assert!(!m.is_empty());
        m.remove(ids[3]);
        assert_eq!(m.as_slice(), &ids[..3], "an id that is not a member");
        m.remove(ids[1]);
        assert_eq!(m.as_slice(), &[ids[0], ids[2]], "a member in the middle");
        m.remove(ids[0]);
        assert_eq!(m.as_slice(), &ids[2..3]);
        m.remove(ids[3]);
        assert_eq!(
            m.as_slice(),
            &ids[2..3],
            "a lone member stays when another is removed"
        );
    }
}
