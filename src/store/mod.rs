//! The `runs` table's owner: a run's types and the statements on runs. The
//! executor and the handlers of `runs/` both call it; it calls neither.

pub mod checks;
mod copy;
pub mod database;
pub mod finals;
pub mod gauges;
pub mod lifecycle;
pub mod resources;
pub mod retention;
mod run;
mod run_row;
pub mod runs;
pub mod shard_queue;
pub mod shards;
pub mod stacks;
mod summary;
mod username;
pub mod workers;

pub use run::{duration, Run, RunStatus};
pub use run_row::{list_rows, RunRow};
pub use summary::Summary;
pub use username::Username;
