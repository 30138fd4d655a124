//! Which `/usr` volume (`engine/usr_volume.rs`) the runner image's
//! sandboxes get: prepared once per image id per process, then remembered.
//! Dependency images read `/usr` from the image as before (each would need
//! its own ~100 MB copy, made at its first run).
//!
//! A volume that cannot be prepared is not fatal: the sandbox reads `/usr`
//! from its image, as without the volume, and the next try comes a minute
//! later.

use std::{collections::HashMap, time::Duration};

use tokio::{sync::Mutex, time::Instant};

use super::Engine;

/// How long after a failed preparation the next run tries again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct UsrVolumes {
    /// By image id: the volume, or when preparing it failed.
    prepared: Mutex<HashMap<String, Result<String, Instant>>>,
}

impl UsrVolumes {
    /// The `/usr` volume of the image `image_id`; `None` when it could not
    /// be prepared. The first call for an image fills the volume (about
    /// 1.5 s on this project's machines); calls meanwhile wait for it.
    pub async fn for_image(&self, engine: &Engine, image_id: &str) -> Option<String> {
        let mut prepared = self.prepared.lock().await;
        match prepared.get(image_id) {
            Some(Ok(volume)) => return Some(volume.clone()),
            Some(Err(failed)) if failed.elapsed() < RETRY_AFTER => return None,
            _ => {}
        }
        match engine.prepare_usr_volume(image_id).await {
            Ok(volume) => {
                tracing::info!(%volume, image = image_id, "runs read /usr from a volume");
                prepared.insert(image_id.to_owned(), Ok(volume.clone()));
                Some(volume)
            }
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "runs read /usr from the image (slower) meanwhile"
                );
                prepared.insert(image_id.to_owned(), Err(Instant::now()));
                None
            }
        }
    }
}
