//! Limits every server of ours shares, each with why its number (the clearing service's own are in
//! `clearing_service::limits`, engine limits in `region_adapter::limits`).

/// msgid length: the national msgid is 30 characters; 64 leaves room for any sender's scheme.
pub const MAX_MSGID_LEN: usize = 64;
/// psn_no length: national person numbers are 30 characters at most.
pub const MAX_PSN_NO_LEN: usize = 32;
/// Decoded request size; the largest valid claim (100 lines) is well under 64 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// A netting report or monthly statement answered (`GetNettingReport`, `GetMonthlyStatement`): its size
/// is set by the region pairs with obligations, at most 159,600 between 400 regions; a national day
/// (`scripts/replay-day.sh`, 650,000 settlements) made a 4.55 MB report, over tonic's default 4 MiB.
/// The server encodes and `clearing net` decodes up to this.
pub const MAX_NETTING_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Page size bounds of listings.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;
/// Page numbers (national 1312 `page_num`): 10,000 pages of 500 cover any catalogue.
pub const MAX_PAGE_NUM: u32 = 10_000;
/// Calls that bring no deadline of their own end after this long (a caller's `grpc-timeout` is
/// honoured when shorter). Netting a national window takes about a second; detail reconciliation of a
/// whole window is the longest call.
pub const MAX_CALL_DURATION: std::time::Duration = std::time::Duration::from_secs(120);
/// Concurrent requests (HTTP/2 streams) on one connection.
pub const MAX_STREAMS_PER_CONNECTION: usize = 256;
/// Disease codes.
pub const MAX_DISE_CODE_LEN: usize = 20;
/// Filings per member: a member files for a few places, not hundreds.
pub const MAX_FILINGS: usize = 50;
/// Account balances and credits, fen: 1,000,000 yuan is far above any personal account.
pub const MAX_BALANCE_FEN: i64 = 100_000_000;
/// How often a credential file in force (a CRL, the gateway's paas file) is read again to see whether it
/// changed (SIGHUP reads it at once): a revoked certificate or a removed token stops working within this
/// long.
pub const CREDENTIAL_RELOAD_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// A connection lives at most this long, then the server asks the client to reconnect (HTTP/2 GOAWAY),
/// so a certificate revoked while its connection is open is checked again at the next handshake.
pub const MAX_CONNECTION_AGE: std::time::Duration = std::time::Duration::from_secs(120);
/// The gateway's HTTP connections: requests still running when a connection is closed for its age (or
/// at shutdown) get this long to finish, then the connection is dropped.
pub const MAX_CONNECTION_AGE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// TLS connections whose handshake is in progress at once on one listener; more wait for a slot.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;
