//! Where a run's files are read from: the tests folder's catalog, or — for
//! a run of a tree a client sent — that tree checked out into a private
//! folder and read through a catalog of its own, so the payload, the
//! dependency image and the services follow the one path every project takes.

use crate::{catalog::Catalog, store::lifecycle::ClaimedRun};

use super::Shared;

/// The catalog the run's files and project are found in.
pub async fn catalog_for(shared: &Shared, run: &ClaimedRun) -> Result<Catalog, String> {
    match &run.tree_id {
        None => Ok(shared.catalog.clone()),
        Some(id) => crate::trees::checkout::catalog(&shared.db, id, shared.catalog.caps()).await,
    }
}
