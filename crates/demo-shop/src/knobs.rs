//! Fault and capacity knobs: what they are (plain serde data, settable at start and at
//! run time through `PUT /admin/knobs`) and the middleware that applies them to the API
//! routes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::api::AppState;

/// Faults and limits injected into the shop's API routes (`/products…`, `/login`,
/// `/cart`, `/orders…`; never `/health`, `/metrics` or `/admin`).
///
/// A knobs document replaces the whole set: fields left out take their default (off).
///
/// ```
/// let knobs: demo_shop::Knobs =
///     serde_json::from_str(r#"{"error_rate": 0.1, "capacity": {"permits": 4, "service_time_ms": 20}}"#)
///         .expect("valid knobs");
/// assert_eq!(knobs.added_latency_ms, 0);
/// assert_eq!(knobs.capacity.map(|c| c.permits), Some(4));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Sleep this long before handling every API request.
    pub added_latency_ms: u64,
    /// Fraction (0 to 1) of API requests answered `500 {"error":"injected"}`, at random.
    pub error_rate: f64,
    /// Sleep this long inside the database query path of the catalog queries, while
    /// holding a pooled connection (so a slow database also exhausts the pool).
    pub slow_query_ms: u64,
    /// A limiter of known capacity: `permits / service_time` requests per second.
    pub capacity: Option<Capacity>,
}

/// A capacity limiter: `permits` concurrent permits, each API request holding one for
/// `service_time_ms` (in addition to its real work). Requests queue for a permit; none
/// is rejected, so past capacity the latency climbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Requests served at once.
    pub permits: u32,
    /// How long each request holds its permit.
    pub service_time_ms: u64,
}

impl Capacity {
    /// The limiter's true capacity in requests per second (`permits / service_time`),
    /// or `None` when the service time is zero (no limit from time).
    pub fn requests_per_second(&self) -> Option<f64> {
        (self.service_time_ms > 0)
            .then(|| f64::from(self.permits) * 1000.0 / self.service_time_ms as f64)
    }
}

impl Knobs {
    /// Checks the values are usable: `error_rate` within 0..=1 and at least one permit.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "error_rate must be between 0 and 1, got {}",
                self.error_rate
            ));
        }
        if let Some(capacity) = self.capacity {
            if capacity.permits == 0 {
                return Err("capacity.permits must be at least 1".to_owned());
            }
        }
        Ok(())
    }
}

/// The knobs in force, with the limiter built from them.
pub(crate) struct KnobState {
    active: RwLock<Active>,
    /// Shared with the database layer, which reads it on every catalog query.
    slow_query_ms: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Active {
    knobs: Knobs,
    limiter: Option<Limiter>,
}

#[derive(Clone)]
struct Limiter {
    permits: Arc<Semaphore>,
    service_time: Duration,
}

impl Active {
    fn new(knobs: Knobs) -> Self {
        let limiter = knobs.capacity.map(|c| Limiter {
            permits: Arc::new(Semaphore::new(c.permits as usize)),
            service_time: Duration::from_millis(c.service_time_ms),
        });
        Active { knobs, limiter }
    }
}

impl KnobState {
    pub(crate) fn new(knobs: Knobs) -> Self {
        let slow_query_ms = Arc::new(AtomicU64::new(knobs.slow_query_ms));
        KnobState {
            active: RwLock::new(Active::new(knobs)),
            slow_query_ms,
        }
    }

    pub(crate) fn slow_query_handle(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.slow_query_ms)
    }

    pub(crate) fn get(&self) -> Knobs {
        self.snapshot().knobs
    }

    /// Replaces the knobs. Requests already holding a permit of the old limiter keep
    /// it; new requests queue on the new one.
    pub(crate) fn set(&self, knobs: Knobs) {
        self.slow_query_ms
            .store(knobs.slow_query_ms, Ordering::Relaxed);
        let mut active = self.active.write().unwrap_or_else(PoisonError::into_inner);
        *active = Active::new(knobs);
    }

    fn snapshot(&self) -> Active {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Middleware for the API routes: added latency, then injected errors, then the
/// capacity limiter (the permit is held through the handler's real work).
pub(crate) async fn apply(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Active { knobs, limiter } = state.knobs.snapshot();
    if knobs.added_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(knobs.added_latency_ms)).await;
    }
    if knobs.error_rate > 0.0 && fastrand::f64() < knobs.error_rate {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": "injected" })),
        )
            .into_response();
    }
    let _permit = match limiter {
        Some(limiter) => {
            // The semaphore is never closed, so acquiring only fails in theory; then
            // the request goes through unlimited rather than failing.
            let permit = limiter.permits.acquire_owned().await.ok();
            tokio::time::sleep(limiter.service_time).await;
            permit
        }
        None => None,
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults_and_unknown_fields_are_refused() {
        let knobs: Knobs = serde_json::from_str(r#"{"slow_query_ms": 5}"#).unwrap();
        assert_eq!(
            knobs,
            Knobs {
                slow_query_ms: 5,
                ..Knobs::default()
            }
        );
        assert!(serde_json::from_str::<Knobs>(r#"{"latency": 5}"#).is_err());
    }

    #[test]
    fn validation_bounds_error_rate_and_permits() {
        assert!(Knobs::default().validate().is_ok());
        let bad_rate = Knobs {
            error_rate: 1.5,
            ..Knobs::default()
        };
        assert!(bad_rate.validate().is_err());
        let no_permits = Knobs {
            capacity: Some(Capacity {
                permits: 0,
                service_time_ms: 10,
            }),
            ..Knobs::default()
        };
        assert!(no_permits.validate().is_err());
    }

    #[test]
    fn capacity_is_permits_over_service_time() {
        let c = Capacity {
            permits: 4,
            service_time_ms: 20,
        };
        assert_eq!(c.requests_per_second(), Some(200.0));
    }

    #[test]
    fn set_replaces_knobs_and_slow_query_handle() {
        let state = KnobState::new(Knobs::default());
        let slow = state.slow_query_handle();
        state.set(Knobs {
            slow_query_ms: 40,
            ..Knobs::default()
        });
        assert_eq!(slow.load(Ordering::Relaxed), 40);
        assert_eq!(state.get().slow_query_ms, 40);
    }
}
