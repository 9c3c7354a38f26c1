//! Time, passed in rather than read from the wall, so tests can pin it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The source of "now" for everything time-dependent (issuance, token expiry, SCT timestamps).
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// Whole seconds since the Unix epoch.
    fn unix_seconds(&self) -> i64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    /// Milliseconds since the Unix epoch, as RFC 6962 timestamps.
    fn unix_millis(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always reads the same instant (tests and known-answer vectors).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// A clock tests move by hand: expiry, checkpoints and SCT timestamps without sleeping.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<SystemTime>);

impl ManualClock {
    /// A clock that reads `secs` seconds after the Unix epoch until moved.
    pub fn at_unix(secs: u64) -> Self {
        ManualClock(std::sync::Mutex::new(
            UNIX_EPOCH + Duration::from_secs(secs),
        ))
    }

    /// Sets the time.
    pub fn set(&self, t: SystemTime) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = t;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
