//! Limits of the national gateway, each with why its number (limits every server of ours shares are in
//! `clearing_edge::limits`; clearing's own in `clearing_service::limits`).

use std::time::Duration;

/// Request bodies: a claim of 100 fee details is about 40 KiB; 3202 detail lists are the largest.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Requests one paasid may have in flight at once (beyond: HTTP 429).
pub const MAX_IN_FLIGHT_PER_PAASID: usize = 256;
/// A TLS handshake that has not finished after this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// `feedetl_sn` length (national: 30).
pub const MAX_FEEDETL_SN_LEN: usize = 30;
/// Other text fields of an input.
pub const MAX_FIELD_LEN: usize = 64;
/// Items of one 3202 call: one HTTP body (under `MAX_BODY_BYTES`). Clearing's bound on one detail
/// reconciliation (`clearing_service::limits::MAX_RECONCILE_ITEMS`, streamed) is larger; a call within
/// this bound is always within that one.
pub const MAX_RECONCILE_ITEMS: usize = 100_000;
