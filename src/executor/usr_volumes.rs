//! Which `/usr` volume (`engine/usr_volume.rs`) the runner image's
//! sandboxes get: prepared once per image id per process, in the
//! background, then remembered. Dependency images read `/usr` from the
//! image as before (each would need its own ~100 MB copy).
//!
//! A sandbox never waits long for it: a run asks for the volume, waits at
//! most `WAIT_FOR_FILL` (the first fill takes about 1.5 s here), and
//! otherwise reads `/usr` from its image, as without the volume. A volume
//! that could not be prepared is tried again a minute later; one removed
//! by hand is prepared again.

use std::{collections::HashMap, sync::Arc, sync::Mutex, time::Duration};

use tokio::{sync::Notify, time::Instant};

use crate::engine::Engine;

/// How long after a failed preparation the next run tries again.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long a sandbox waits for a preparation under way.
const WAIT_FOR_FILL: Duration = Duration::from_secs(3);

enum State {
    Preparing,
    Ready(String),
    Failed(Instant),
}

#[derive(Default)]
pub struct UsrVolumes {
    /// By image id.
    states: Arc<Mutex<HashMap<String, State>>>,
    /// Told when a preparation ends.
    changed: Arc<Notify>,
}

impl UsrVolumes {
    /// The `/usr` volume of the image `image_id`, ready to mount; `None`
    /// when it is not (yet) ready: the sandbox reads `/usr` from its image.
    pub async fn for_image(&self, engine: &Engine, image_id: &str) -> Option<String> {
        let deadline = Instant::now() + WAIT_FOR_FILL;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let ready = {
                let mut states = self.states.lock().unwrap();
                match states.get(image_id) {
                    Some(State::Ready(volume)) => Some(volume.clone()),
                    Some(State::Failed(at)) if at.elapsed() < RETRY_AFTER => return None,
                    Some(State::Preparing) => None,
                    _ => {
                        states.insert(image_id.to_owned(), State::Preparing);
                        self.prepare(engine, image_id);
                        None
                    }
                }
            };
            if let Some(volume) = ready {
                match engine.volume_exists(&volume).await {
                    Ok(false) => {
                        tracing::warn!(%volume, "the /usr volume was removed; making it again");
                        self.states.lock().unwrap().remove(image_id);
                        continue;
                    }
                    // An engine that cannot say lets the create say.
                    Ok(true) | Err(_) => return Some(volume),
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    fn prepare(&self, engine: &Engine, image_id: &str) {
        let (engine, image_id) = (engine.clone(), image_id.to_owned());
        let (states, changed) = (self.states.clone(), self.changed.clone());
        tokio::spawn(async move {
            let state = match engine.prepare_usr_volume(&image_id).await {
                Ok(volume) => {
                    tracing::info!(%volume, image = image_id, "runs read /usr from a volume");
                    State::Ready(volume)
                }
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "runs read /usr from the image (slower) meanwhile"
                    );
                    State::Failed(Instant::now())
                }
            };
            states.lock().unwrap().insert(image_id, state);
            changed.notify_waiters();
        });
    }
}
