//! Limits of the national gateway, each with why its number (limits every server of ours shares are in
//! `clearing_edge::limits`; clearing's own in `clearing_service::limits`).

use std::time::Duration;

/// Request bodies: a claim of 100 fee details is about 40 KiB; 3202 detail lists are the largest.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Requests one paasid may have in flight at once (beyond: HTTP 429).
pub const MAX_IN_FLIGHT_PER_PAASID: usize = 256;
/// A TLS handshake that has not finished after this long is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Headers of a request must have arrived this long after the connection opened (or the previous
/// answer): an idle or trickling client is cut off (`--header-read-timeout-secs`).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A body must have arrived whole this long after its headers (`--body-read-timeout-secs`): a stalled
/// or slow-drip body holds at most `MAX_BODY_BYTES` for this long, then the connection is closed.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections open at once (`--max-connections`); beyond, new ones are closed at once.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Requests one paasid may make per second, 9001/9002 included (`--rate-per-paasid`; beyond: 429).
pub const RATE_PER_PAASID: u32 = 1_000;

/// `feedetl_sn` length (national: 30).
pub const MAX_FEEDETL_SN_LEN: usize = 30;
/// Other text fields of an input.
pub const MAX_FIELD_LEN: usize = 64;
/// Items of one 3202 call: one HTTP body (under `MAX_BODY_BYTES`). Clearing's bound on one detail
/// reconciliation (`clearing_service::limits::MAX_RECONCILE_ITEMS`, streamed) is larger; a call within
/// this bound is always within that one.
pub const MAX_RECONCILE_ITEMS: usize = 100_000;
/// How long a 9101 upload and a 3202 result stay downloadable: the same business day's reconciliation,
/// with room for a retry the next morning.
pub const FILE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Files one caller may keep at once: a day's reconciliation is one upload and one result per
/// institution; more in a day is a loop, and would fill the gateway's memory or Redis.
pub const MAX_FILES_PER_PAASID: usize = 100;
/// A file's content once unzipped: a day's 3202 details (100,000 rows of about 80 bytes) fit.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Times a call to clearing is sent again when the connection under it closed before any answer came
/// (clearing's connection-age GOAWAY, a restart), for the idempotent calls of `resend::RESENDABLE`; the
/// gateway's own deadline still bounds them all. See `resend.rs`.
pub const MAX_RESENDS: u32 = 2;
