//! The reads of the storage contract on a [`FileStore`]: each waits until the state it saw is
//! durable before it returns (see the module docs of `file`).

use std::time::Duration;

use wf_core::{InvocationId, JournalEntry, Timestamp};

use super::FileStore;
use crate::error::StoreError;
use crate::memory::wait_until;
use crate::model::{InvocationRecord, StatusCounts};
use crate::steering::EventInbox;
use crate::store::StoreRead;
use crate::tables::Tables;

impl StoreRead for FileStore {
    fn backend(&self) -> &'static str {
        "file"
    }

    fn app_id(&self) -> Result<Option<String>, StoreError> {
        self.read(|t| t.app_id().map(str::to_owned))
    }

    fn invocation(&self, id: InvocationId) -> Result<InvocationRecord, StoreError> {
        self.read(|t| t.invocation(id))?
    }

    fn invocations(&self, ids: &[InvocationId]) -> Result<Vec<InvocationRecord>, StoreError> {
        self.read(|t| ids.iter().map(|id| t.invocation(*id)).collect())?
    }

    fn journal(&self, id: InvocationId) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(|t| t.journal(id))?
    }

    fn get_data(&self, workflow: InvocationId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|t| t.get_data(workflow, key))
    }

    fn data_keys(&self, workflow: InvocationId) -> Result<Vec<String>, StoreError> {
        self.read(|t| t.data_keys(workflow))
    }

    fn workflow_invocations(
        &self,
        workflow: InvocationId,
    ) -> Result<Vec<InvocationId>, StoreError> {
        self.read(|t| t.workflow_invocations(workflow))
    }

    fn workflows(&self) -> Result<Vec<InvocationRecord>, StoreError> {
        self.read(Tables::workflow_roots)
    }

    fn purgeable(&self, finished_before: Timestamp) -> Result<Vec<InvocationId>, StoreError> {
        self.read(|t| t.purgeable(finished_before))
    }

    fn counts(&self) -> Result<StatusCounts, StoreError> {
        self.read(Tables::counts)
    }

    fn wait_final(
        &self,
        id: InvocationId,
        timeout: Duration,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        // Unknown when called or purged while waiting: `InvocationNotFound` either way.
        let found = wait_until(
            self.lock_checked()?,
            &self.finished,
            timeout,
            |t| {
                if let Err(stopped) = self.log.check() {
                    return Some(Err(stopped));
                }
                match t.invocation(id) {
                    // Final, or gone (purged by retention): either way the wait is over once the
                    // state that says so is durable: for a final one, the last record that
                    // changed it (see `marks`), so a waiter does not wait for later commits.
                    Ok(r) if r.state.status.is_final() => Some(Ok((Ok(r), self.marks.of(id)))),
                    Err(gone) => Some(Ok((Err(gone), self.log.wanted()))),
                    Ok(_) => {
                        self.about_to_block();
                        None
                    }
                }
            },
            |_| None,
        );
        match found {
            Some(Ok((record, seen))) => {
                self.stop_on_failure(self.log.wait_durable(seen))?;
                record.map(Some)
            }
            Some(Err(stopped)) => Err(stopped),
            None => Ok(None),
        }
    }

    fn events(&self, id: InvocationId) -> Result<EventInbox, StoreError> {
        self.read(|t| t.events(id))?
    }

    fn cancel_requests(
        &self,
        ids: &[InvocationId],
    ) -> Result<Vec<(InvocationId, String)>, StoreError> {
        self.read(|t| t.cancel_requests(ids))
    }
}
