//! What the clearinghouse knows of its own, below the core: the institution lists and their designations
//! (`institutions`), who a member is by certificate (`identity`, 1101), and the monthly account credits
//! (`credits`, a small service over the store and the rule packs). Members' registry facts are validated
//! in `grpc/members.rs` and stored by the store; an account's closure writes money through the commit
//! loop and so lives in `settlement::closure`.

pub mod credits;
pub mod identity;
pub mod institutions;
