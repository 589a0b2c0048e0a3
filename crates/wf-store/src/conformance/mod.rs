//! The conformance suite every backend must pass unchanged (feature `testing`).
//!
//! A backend's test file instantiates it with one line:
//!
//! ```text
//! wf_store::conformance_tests!(|| wf_store::conformance::Subject::new(wf_store::MemoryStore::new()));
//! ```
//!
//! Each test gets a fresh, empty store from the factory. A [`Subject`] may carry a guard (for
//! example a temporary directory) that lives as long as the store.
//!
//! The tests are grouped by topic, one module each, and the macro generates one test module per
//! topic, so a backend's tests are named `leases::stale_attempt_cannot_commit` and can be
//! filtered by topic (`cargo test -p wf-store --test memory_conformance leases::`). Everything
//! the tests share (invocation builders, clocks, assertions) is in [`fixtures`], which other
//! crates' tests use too.
//!
//! The tests use only the [`Store`] trait, never a backend's internals, and drive the clock
//! explicitly: every operation takes `now`, so a test passes [`fixtures::T0`], `T0 + 30 s`, …
//! instead of sleeping. The blocking waits (`wait_final`, `wait_for_work`) are the only
//! operations that read the real clock; see [`waits`] for how their tests make sure a waiter
//! was woken.
// Test support: a failed expectation is a failed test, so unwrap and panic are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::any::Any;
use std::sync::Arc;

use crate::store::Store;

pub mod fixtures;

pub mod admin;
pub mod app;
pub mod cancel;
pub mod cancel_tree;
pub mod checkpoint;
pub mod claim;
pub mod commit;
pub mod data;
pub mod events;
pub mod leases;
pub mod reads;
pub mod recovery;
pub mod retention;
pub mod submit;
pub mod tasks;
pub mod timers;
pub mod values;
pub mod waiting;
pub mod waits;

/// A store under test, and whatever must outlive it.
pub struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// A store with nothing else to keep alive.
    pub fn new(store: impl Store) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(()),
        }
    }

    /// A store with a guard (a temporary directory, a server handle) that must outlive it.
    pub fn with_guard(store: impl Store, guard: impl Any + Send) -> Self {
        Self {
            store: Arc::new(store),
            _guard: Box::new(guard),
        }
    }
}

/// What a conformance factory returns: a [`Subject`], or `Option<Subject>` for a backend that
/// needs something the machine may lack (a `redis-server`): `None` skips the test, after the
/// factory said so loudly.
pub trait MaybeSubject {
    /// The subject to test, if any.
    fn into_subject(self) -> Option<Subject>;
}

impl MaybeSubject for Subject {
    fn into_subject(self) -> Option<Subject> {
        Some(self)
    }
}

impl MaybeSubject for Option<Subject> {
    fn into_subject(self) -> Option<Subject> {
        self
    }
}

/// Instantiates every conformance test for a backend. The argument is a factory expression
/// (a closure or fn) returning a fresh [`Subject`] (or an `Option<Subject>`, `None` to skip:
/// see [`MaybeSubject`]).
///
/// It expands to one module per topic, each with one `#[test]` per conformance test, named
/// like the function it runs (`leases::stale_attempt_cannot_commit`), and a private function
/// `conformance_subject` holding the factory.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        fn conformance_subject() -> Option<$crate::conformance::Subject> {
            $crate::conformance::MaybeSubject::into_subject(($make)())
        }
        $crate::conformance_tests!(@topic submit:
            submit_is_idempotent,
            submit_conflict_is_refused,
            submit_many_is_one_atomic_batch,
            submit_many_conflict_submits_nothing,
            long_task_names_are_refused,
        );
        $crate::conformance_tests!(@topic claim:
            claim_is_fifo_and_leases,
            claim_returns_journal,
            concurrent_claims_never_duplicate,
            submitted_not_before_is_honoured,
            next_due_reports_earliest_clock_event,
        );
        $crate::conformance_tests!(@topic tasks:
            claim_hands_out_only_tasks_in_the_set,
            claim_is_fifo_across_tasks,
            idle_worker_ignores_other_tasks_work,
            claim_takes_the_earliest_due_across_tasks,
        );
        $crate::conformance_tests!(@topic leases:
            renew_extends_lease,
            lease_expiry_boundary,
            stale_lease_expired_cannot_commit,
            stale_lease_after_takeover_cannot_commit,
            stale_attempt_cannot_commit,
            stale_attempt_after_a_retry_cannot_commit,
            cancelled_running_cannot_commit,
        );
        $crate::conformance_tests!(@topic commit:
            commit_success,
            commit_failed,
            commit_retry_honours_not_before,
            commit_released_requeues,
            commit_deferred_honours_not_before_without_spending_retries,
            commit_journal_must_be_contiguous,
            commit_child_must_name_parent,
            commit_conflicting_duplicate_child_is_refused,
            pipelined_commit_is_a_commit,
            commit_then_claim_commits_then_claims_the_next,
            commit_then_claim_refused_claims_nothing,
        );
        $crate::conformance_tests!(@topic checkpoint:
            checkpoint_persists_progress_and_claims_the_child,
            checkpoint_with_a_lost_lease_writes_nothing,
            checkpoint_refuses_what_a_commit_refuses,
            checkpoint_then_crash_recovers_parent_and_child,
            checkpoint_conflicting_duplicate_child_is_refused,
        );
        $crate::conformance_tests!(@topic waiting:
            parent_wakes_when_all_children_final,
            waiting_on_finished_children_is_pending_at_once,
            waiting_on_non_child_is_invalid,
            parent_wakes_once_under_concurrent_children,
            a_child_not_awaited_does_not_wake_its_parent,
        );
        $crate::conformance_tests!(@topic recovery:
            recover_expired_exactly_once,
            claim_recovers_expired,
            crash_loop_fails_after_max_recoveries,
            commit_resets_recovery_count,
        );
        $crate::conformance_tests!(@topic data:
            data_writes_by_root,
            data_write_by_child_is_refused,
        );
        $crate::conformance_tests!(@topic cancel:
            cancel_of_final_is_refused,
            cancel_non_final,
        );
        $crate::conformance_tests!(@topic values:
            large_values_round_trip,
            long_error_texts_are_cut,
        );
        $crate::conformance_tests!(@topic reads:
            unknown_ids_are_not_found,
            invocations_in_order_asked,
            workflow_membership,
            counts_by_status,
        );
        $crate::conformance_tests!(@topic waits:
            wait_final_wakes_on_commit,
            wait_final_wakes_on_cancel,
            wait_final_times_out,
            wait_final_accepts_the_longest_timeout,
            wait_final_ends_when_purged,
            wait_for_work_wakes_on_submit,
            wait_for_work_wakes_on_retry,
            wait_for_work_times_out_when_idle,
            wait_for_work_reports_an_expired_lease,
            wait_for_work_after_an_empty_claim_wakes_on_submit,
            wait_for_work_after_an_empty_claim_wakes_when_due,
            wait_for_work_is_not_woken_again_by_work_that_went_away,
            wait_final_right_after_the_own_submit,
        );
        $crate::conformance_tests!(@topic app:
            first_bind_records_the_app,
            same_app_binds_again,
            other_app_is_refused_naming_both,
        );
        $crate::conformance_tests!(@topic admin:
            retry_requeues_a_failed_invocation_keeping_its_journal,
            retry_refuses_what_is_not_failed,
            retry_refuses_a_child_whose_caller_finished,
            retried_child_is_awaited_by_its_waiting_caller,
            purgeable_lists_what_purge_would_remove_and_removes_nothing,
        );
        $crate::conformance_tests!(@topic retention:
            purge_finished_removes_only_old_finished,
            purge_judges_by_last_finished_member,
            purge_keeps_subworkflows_with_their_callers,
        );
    };
    (@topic $topic:ident: $($name:ident),* $(,)?) => {
        mod $topic {
            $(
                #[test]
                fn $name() {
                    if let Some(subject) = super::conformance_subject() {
                        $crate::conformance::$topic::$name(subject);
                    }
                }
            )*
        }
    };
}

/// Instantiates the conformance tests of steering — durable timers, external events and the
/// cancellation of workflow trees (issue 13; "Contract operations" in `docs/backends.md`) — for a
/// backend, with the same factory as [`conformance_tests!`]. It generates the topics `timers`,
/// `events` and `cancel_tree`. A backend implements these operations and then calls both macros.
#[macro_export]
macro_rules! steering_conformance_tests {
    ($make:expr) => {
        fn steering_subject() -> Option<$crate::conformance::Subject> {
            $crate::conformance::MaybeSubject::into_subject(($make)())
        }
        $crate::steering_conformance_tests!(@topic timers:
            timer_wakes_at_its_time,
            child_or_timer_whichever_first,
            timers_are_per_task,
            suspension_on_nothing_is_invalid,
            wait_for_work_wakes_when_a_timer_is_due,
        );
        $crate::steering_conformance_tests!(@topic events:
            events_are_buffered_in_arrival_order,
            consumption_is_atomic_with_the_commit,
            event_wakes_an_invocation_waiting_for_its_name,
            waiting_for_a_buffered_event_is_pending_at_once,
            event_or_timer_whichever_first,
            event_keys_make_sending_idempotent,
            events_to_unknown_or_final_invocations_are_refused,
            events_are_purged_with_their_workflow,
        );
        $crate::steering_conformance_tests!(@topic cancel_tree:
            cancel_tree_cancels_a_fan_out,
            a_stopping_member_ends_cancelled_at_its_commit,
            a_told_member_compensates_then_ends_cancelled,
            cancelling_again_or_a_final_invocation_is_harmless,
            a_stopping_member_whose_worker_is_lost_ends_cancelled,
            a_purged_root_submitted_again_starts_afresh,
        );
    };
    (@topic $topic:ident: $($name:ident),* $(,)?) => {
        mod $topic {
            $(
                #[test]
                fn $name() {
                    if let Some(subject) = super::steering_subject() {
                        $crate::conformance::$topic::$name(subject);
                    }
                }
            )*
        }
    };
}
