//! Size limits every backend shares, so that a request one backend accepts another does not
//! refuse. A request over a limit is refused alone with [`crate::StoreError::TooLarge`]
//! before anything is applied; the store goes on serving everyone else.

use wf_core::codec::MAX_DECODE_BYTES;

/// The largest single value (arguments, a result, a workflow data value, an error text) every
/// backend stores. Backends may refuse larger ones with [`crate::StoreError::TooLarge`].
pub const MAX_VALUE_BYTES: usize = 64 << 20;

/// The largest encoded record one operation may write (a submission, or a commit with its
/// journal, data and children), with room left below what the codec decodes
/// ([`MAX_DECODE_BYTES`]) for the framing and bookkeeping a backend adds.
pub const MAX_RECORD_BYTES: usize = MAX_DECODE_BYTES - (1 << 20);
