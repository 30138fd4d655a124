//! The `runs` table's owner: a run's types and the statements on runs. The
//! executor and the handlers of `runs/` both call it; it calls neither.

mod run;
mod runs;
mod username;

pub use run::{Run, RunStatus};
pub use runs::*;
pub use username::Username;
