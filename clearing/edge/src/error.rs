//! The service's errors, mapped to gRPC status codes in exactly one place (`From<ServiceError> for
//! Status`), with field-level details (google.rpc.BadRequest) so a caller knows what to fix and whether
//! retrying helps.
//!
//! | error | code | retry? |
//! |---|---|---|
//! | invalid field(s), engine refusal of the claim | INVALID_ARGUMENT + BadRequest | no |
//! | unknown member / settlement | NOT_FOUND (+ BadRequest naming the field) | no |
//! | family payer has not bound the patient | PERMISSION_DENIED (+ BadRequest on `acct_payer_psn_no`) | no |
//! | the caller's certificate does not allow the call (authz.rs) | PERMISSION_DENIED | no |
//! | no client certificate | UNAUTHENTICATED | no |
//! | too many requests in flight from one client; the store is out of memory | RESOURCE_EXHAUSTED | yes, later |
//! | msgid reused with other content | ALREADY_EXISTS | no |
//! | settlement already reversed, or a reversal being reversed | FAILED_PRECONDITION | no |
//! | too many version conflicts in a row (a concurrent change of the member or of the paying account: each is retried and the claim recomputed with the new balance, up to `MAX_COMMIT_ATTEMPTS`) | ABORTED | yes, same msgid |
//! | store or region adapter unreachable for longer than the service waits for it (a commit whose outcome is unknown is resolved and retried inside the service first) | UNAVAILABLE | yes, same msgid |
//! | region adapter did not answer within the caller's deadline | DEADLINE_EXCEEDED | yes, same msgid |
//! | refusal by a remote region adapter | the adapter's status, unchanged | as for that status |
//! | broken invariant, unreadable stored data, a store error that is not transient (details in the log) | INTERNAL | no |

use region_adapter::EngineError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<FieldViolation>),
    #[error("{what} not found")]
    NotFound { what: String, field: String },
    #[error("{0}")]
    PermissionDenied(String, String),
    #[error("msgid {0:?} was already used for a different request")]
    IdempotencyMismatch(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("gave up after {0} version conflicts; retry with the same msgid")]
    Aborted(u32),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A remote region adapter's verdict on the request, passed on unchanged (code, message, details).
    #[error("{}", .0.message())]
    Remote(Status),
}

fn describe(v: &[FieldViolation]) -> String {
    v.iter().map(|f| format!("{}: {}", f.field, f.description)).collect::<Vec<_>>().join("; ")
}

impl ServiceError {
    pub fn field(field: impl Into<String>, description: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(vec![FieldViolation::new(field, description)])
    }
}

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invariant(what) => ServiceError::Internal(format!("settlement invariant broken: {what}")),
            other => ServiceError::field(other.field(), other.to_string()),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let msg = e.to_string();
        match e {
            ServiceError::Invalid(v) => Status::with_error_details(Code::InvalidArgument, msg, ErrorDetails::with_bad_request(v)),
            ServiceError::NotFound { field, .. } => {
                Status::with_error_details(Code::NotFound, msg, ErrorDetails::with_bad_request_violation(field, "not found"))
            }
            ServiceError::PermissionDenied(_, field) if field.is_empty() => Status::new(Code::PermissionDenied, msg),
            ServiceError::PermissionDenied(why, field) => {
                Status::with_error_details(Code::PermissionDenied, msg, ErrorDetails::with_bad_request_violation(field, why))
            }
            ServiceError::IdempotencyMismatch(_) => Status::with_error_details(
                Code::AlreadyExists,
                msg,
                ErrorDetails::with_bad_request_violation("msgid", "already used with other content"),
            ),
            ServiceError::FailedPrecondition(_) => Status::new(Code::FailedPrecondition, msg),
            ServiceError::Aborted(_) => Status::new(Code::Aborted, msg),
            ServiceError::Unavailable(_) => Status::new(Code::Unavailable, msg),
            ServiceError::DeadlineExceeded(_) => Status::new(Code::DeadlineExceeded, msg),
            ServiceError::Unauthenticated(_) => Status::new(Code::Unauthenticated, msg),
            ServiceError::ResourceExhausted(_) => Status::new(Code::ResourceExhausted, msg),
            ServiceError::Internal(_) => Status::new(Code::Internal, msg),
            ServiceError::Remote(s) => s,
        }
    }
}
