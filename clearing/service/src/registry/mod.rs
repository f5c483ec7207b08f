//! What the clearinghouse knows of members (the institution lists are `crate::institutions`, below the core):
//! the monthly account credits (`credits`) and account closure (`closure`). Who a member is (1101 by
//! certificate) is `crate::identity`, below the core. Members' registry facts are
//! validated in `grpc/members.rs` and stored by the store.

pub mod closure;
pub mod credits;
