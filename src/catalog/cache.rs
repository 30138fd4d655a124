//! The catalog's listing, kept for a moment. Every form render, file list
//! and run creation asks for it, and walking a large tests folder reads
//! every folder of it: a listing younger than [`FRESH_FOR`] whose root has
//! not changed is served from memory, and when it is stale one caller walks
//! (off the async threads) while the others wait for its result, so a flood
//! of requests costs one walk.

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;

use super::Listing;

/// How long a listing is served without looking at the disk again: files
/// are added to the tests folder by hand, rarely, and a person adding one
/// waits longer than this to reload the form.
pub const FRESH_FOR: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct Cache {
    latest: Mutex<Option<Cached>>,
    /// Held by the one caller walking the tree.
    walking: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Cached {
    at: Instant,
    /// A file added or removed at the top changes it: the listing is walked
    /// again at once then, not after `FRESH_FOR`.
    root_mtime: Option<SystemTime>,
    listing: Arc<Listing>,
}

fn root_mtime(root: &Path) -> Option<SystemTime> {
    std::fs::metadata(root).and_then(|m| m.modified()).ok()
}

impl Cache {
    fn fresh(&self, root: &Path) -> Option<Arc<Listing>> {
        let mtime = root_mtime(root);
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest
            .as_ref()
            .filter(|c| c.at.elapsed() < FRESH_FOR && c.root_mtime == mtime)
            .map(|c| c.listing.clone())
    }

    fn keep(&self, root_mtime: Option<SystemTime>, listing: Listing) -> Arc<Listing> {
        let listing = Arc::new(listing);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(Cached {
            at: Instant::now(),
            root_mtime,
            listing: listing.clone(),
        });
        listing
    }

    /// The listing, walked with `walk` on a blocking thread when stale.
    pub async fn get(
        &self,
        root: &Path,
        walk: impl FnOnce() -> anyhow::Result<Listing> + Send + 'static,
    ) -> anyhow::Result<Arc<Listing>> {
        if let Some(listing) = self.fresh(root) {
            return Ok(listing);
        }
        let _walking = self.walking.lock().await;
        if let Some(listing) = self.fresh(root) {
            return Ok(listing);
        }
        // read before the walk: a change during it is seen by the next caller
        let mtime = root_mtime(root);
        let listing = tokio::task::spawn_blocking(walk)
            .await
            .context("walking the tests folder")??;
        Ok(self.keep(mtime, listing))
    }

    /// The same, for a caller on a blocking thread (never an async one:
    /// it may wait for another caller's walk).
    pub fn get_blocking(
        &self,
        root: &Path,
        walk: impl FnOnce() -> anyhow::Result<Listing>,
    ) -> anyhow::Result<Arc<Listing>> {
        if let Some(listing) = self.fresh(root) {
            return Ok(listing);
        }
        let _walking = self.walking.blocking_lock();
        if let Some(listing) = self.fresh(root) {
            return Ok(listing);
        }
        let mtime = root_mtime(root);
        Ok(self.keep(mtime, walk()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_callers_costs_one_walk() {
        let cache = Arc::new(Cache::default());
        let walks = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let (cache, walks) = (cache.clone(), walks.clone());
                tokio::spawn(async move {
                    let walk = move || {
                        walks.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(Listing::default())
                    };
                    cache.get(Path::new("/"), walk).await.unwrap();
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        assert_eq!(walks.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_listing_is_walked_again_once_stale() {
        let cache = Cache::default();
        let walks = AtomicUsize::new(0);
        let walk = || {
            walks.fetch_add(1, Ordering::SeqCst);
            Ok(Listing::default())
        };
        cache.get_blocking(Path::new("/"), walk).unwrap();
        cache.get_blocking(Path::new("/"), walk).unwrap();
        assert_eq!(walks.load(Ordering::SeqCst), 1);
        if let Some(cached) = cache.latest.lock().unwrap().as_mut() {
            cached.at -= FRESH_FOR;
        }
        cache.get_blocking(Path::new("/"), walk).unwrap();
        assert_eq!(walks.load(Ordering::SeqCst), 2);
    }
}
