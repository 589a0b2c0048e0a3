//! The members of one workflow, in submission order, stored without a heap allocation while
//! the workflow has only its root (most workflows: a call with no children). Half of what a
//! finished one-invocation workflow costs in memory was its one-element list.

use wf_core::InvocationId;

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
}
