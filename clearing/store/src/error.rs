//! How a store fails, and how that reaches a caller.

use crate::*;

/// A store failure, classified by whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Transient: the store could not be reached or is not ready (connection lost, timeout, loading,
    /// failover). The commit's outcome may be unknown; a retry with the same msgid is safe.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused a write before doing any of it (a Redis node configured unsafely): nothing was
    /// written, so the outcome is known; UNAVAILABLE to the caller, who retries later with the same msgid.
    #[error("store refuses writes: {0}")]
    Refused(String),
    /// The store is out of memory (Redis OOM): retrying soon does not help until an operator acts.
    #[error("store out of memory: {0}")]
    Exhausted(String),
    /// Anything else the store refused (a script error, a key of the wrong type): retrying the same
    /// request will fail the same way. The store's own message is in the service log, not here.
    #[error("store error: {0}")]
    Failed(String),
    /// Stored data unreadable.
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
    /// The member's account is closed (the closure as stored): a closed account takes no change.
    #[error("the account was closed on {} ({})", .0.date, .0.reason)]
    Closed(AccountClosure),
}

/// How a store failure reaches a caller: transient → UNAVAILABLE (retry with the same msgid), out of
/// memory → RESOURCE_EXHAUSTED, anything else → INTERNAL.
impl From<StoreError> for clearing_edge::error::ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) | StoreError::Refused(m) => clearing_edge::error::ServiceError::Unavailable(m),
            StoreError::Exhausted(_) => {
                clearing_edge::error::ServiceError::ResourceExhausted("the store is out of memory; retry later with the same msgid".into())
            }
            StoreError::Failed(m) | StoreError::Corrupt(m) => clearing_edge::error::ServiceError::Internal(m),
            e @ StoreError::Closed(_) => {
                clearing_edge::error::ServiceError::FailedPrecondition(format!("psn_no: {e}; a closed account takes no change"))
            }
        }
    }
}
