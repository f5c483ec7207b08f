//! The rule engine of the clearinghouse: rule packs of pooling regions (policy versions and
//! catalogues, every parameter with its source), catalogue pricing (就医地目录) and the policy
//! engine (参保地政策). Pure: rules + claim + member state in, settlement + state change out; no
//! storage, no network. The clearing service calls it in process; `region-adapter serve` will put
//! the same functions behind gRPC for provinces that keep their own rules.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod account;
pub mod bundled;
pub mod codes;
pub mod error;
pub mod explain;
pub mod limits;
pub mod load;
pub mod model;
pub mod money;
pub mod policy;
pub mod pricing;

pub use codes::{Admdvs, FilingGroup, Level, MedType};
pub use error::EngineError;
pub use explain::Step;
pub use load::{LoadError, LoadErrors};
pub use model::{MemberClass, RegionPack, RuleSet};
pub use policy::{AccountSource, Amounts, Benefit, Filing, MemberFacts, PsnType, Settled, StateDelta, Visit, YearState};
pub use pricing::{LineInput, Priced, PricedLine};
