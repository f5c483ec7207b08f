//! Where a region's rules run: in process (the bundled or given rule packs) or at a remote region
//! adapter (`router`), and the calls to remote adapters (`remote`).

pub mod remote;
pub mod router;
