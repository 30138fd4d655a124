//! Trees a client sent (`submit --tree DIR`): a developer's working copy,
//! stored by content in Postgres (each file's content once, by its sha256;
//! a tree by the hash of its manifest), then checked out into a private
//! folder where the catalog sees it as it sees the tests folder — so a run
//! of a tree is a run of a project like any other: same packing, same
//! dependency image (keyed by its declaring files), same services.
//!
//! The HTTP side is in `runs/tree_api.rs` (it needs `AppState`, which sits
//! above the executor; the executor checks trees out through this module).

pub mod archive;
pub mod batch;
pub mod checkout;
pub mod manifest;
pub mod store;

use serde::Serialize;
use time::OffsetDateTime;

/// A stored tree, as its row holds it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tree {
    /// sha256 of its manifest.
    pub id: String,
    /// Its folder's name, the project's name in its runs.
    pub name: String,
    /// Who sent it first.
    pub username: String,
    pub files: i32,
    pub bytes: i64,
    /// Bytes of content no earlier tree had: what sending it cost.
    pub received_bytes: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
}

impl Tree {
    /// "a1b2c3d4e5f6…": how pages name it.
    pub fn short_id(&self) -> String {
        format!("{}…", &self.id[..12.min(self.id.len())])
    }
}
