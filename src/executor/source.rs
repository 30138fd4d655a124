//! Where a run's files are read from: the tests folder's catalog, or — for
//! a run of a tree a client sent — that tree checked out into a private
//! folder and read through a catalog of its own, so the payload, the
//! dependency image and the services follow the one path every project takes.

use anyhow::anyhow;

use crate::{catalog::Catalog, store::lifecycle::ClaimedRun};

use super::Shared;

/// The catalog the run's files and project are found in.
pub async fn catalog_for(shared: &Shared, run: &ClaimedRun) -> Result<Catalog, String> {
    let Some(id) = &run.tree_id else {
        return Ok(shared.catalog.clone());
    };
    let found = crate::trees::store::get(&shared.db, id)
        .await
        .map_err(|e| anyhow!(e).context("reading the run's tree"));
    let tree = match found {
        Ok(Some(tree)) => tree,
        Ok(None) => return Err(format!("tree {id} is no longer stored: send it again")),
        Err(err) => return Err(format!("{err:#}")),
    };
    let root = crate::trees::checkout::checkout(&shared.db, &tree)
        .await
        .map_err(|e| format!("checking tree {} out: {e:#}", tree.short_id()))?;
    Ok(Catalog::new(root).with_caps(shared.catalog.caps()))
}
