//! Whether the database, the Docker engine and the runner image are there,
//! checked at most once a second however often it is asked (`/healthz`: a
//! load balancer, a script in a loop, someone hostile). Each round asks the
//! engine and Postgres, which the runs need; requests meanwhile get the
//! last round.

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::{sync::Mutex, time::Instant};

use crate::engine::Engine;

/// How long one round of checks answers for.
const FRESH: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
pub struct Checks {
    pub database: bool,
    pub engine: bool,
    pub image: bool,
    /// When they were made.
    pub at: OffsetDateTime,
}

/// The last round of checks, and when it was made.
#[derive(Default)]
pub struct HealthChecks {
    last: Mutex<Option<(Instant, Checks)>>,
}

impl HealthChecks {
    /// The checks, made now unless a round less than `FRESH` old answers;
    /// requests that come during a round wait for it.
    pub async fn current(&self, db: &PgPool, engine: &Engine, image: &str) -> Checks {
        let mut last = self.last.lock().await;
        if let Some((at, checks)) = *last {
            if at.elapsed() < FRESH {
                return checks;
            }
        }
        let database = crate::store::database::answers(db).await;
        // One engine call tells both: reachable, and the image there.
        let (engine, image) = match engine.image_id(image).await {
            Ok(found) => (true, found.is_some()),
            Err(_) => (false, false),
        };
        let checks = Checks {
            database,
            engine,
            image,
            at: OffsetDateTime::now_utc(),
        };
        *last = Some((Instant::now(), checks));
        checks
    }
}
