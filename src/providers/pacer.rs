//! A token bucket that paces a provider's requests under its rate limit, shared by every
//! collector whose requests count against the same limit.
//!
//! A provider's documented limit has a scope: per user or token (Supabase's Management API),
//! per consumer key (OVHcloud). Named accounts that share a credential share its limit, so
//! [`Pacer::shared`] hands every collector of one scope the same bucket: accounts with their
//! own credentials run side by side, accounts sharing one take turns under it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token bucket: `burst` requests at once, then `per_second`.
pub(crate) struct Pacer {
    state: tokio::sync::Mutex<(f64, Instant)>,
    burst: f64,
    per_second: f64,
}

impl Pacer {
    pub(crate) fn new(burst: f64, per_second: f64) -> Pacer {
        Pacer {
            state: tokio::sync::Mutex::new((burst, Instant::now())),
            burst,
            per_second,
        }
    }

    /// The bucket of `scope` (a provider's name and a hash of the credential the limit counts
    /// against, never the credential itself), made on first use with `burst` and
    /// `per_second`: every collector of one scope paces against the same limit.
    pub(crate) fn shared(scope: String, burst: f64, per_second: f64) -> Arc<Pacer> {
        static SCOPES: Mutex<Option<HashMap<String, Arc<Pacer>>>> = Mutex::new(None);
        let mut scopes = match SCOPES.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(
            scopes
                .get_or_insert_with(HashMap::new)
                .entry(scope)
                .or_insert_with(|| Arc::new(Pacer::new(burst, per_second))),
        )
    }

    /// The scope of a limit counted per credential: the provider and a hash of `secrets`.
    pub(crate) fn scope(provider: &str, secrets: &[&crate::secret::Secret]) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for s in secrets {
            s.expose().hash(&mut h);
        }
        format!("{provider}:{:016x}", h.finish())
    }

    pub(crate) async fn wait(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                s.0 =
                    (s.0 + now.duration_since(s.1).as_secs_f64() * self.per_second).min(self.burst);
                s.1 = now;
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    return;
                }
                (1.0 - s.0) / self.per_second
            };
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_scope_one_bucket() {
        let a = crate::secret::Secret::clean("token-aaaaaa")
            .unwrap()
            .unwrap();
        let b = crate::secret::Secret::clean("token-bbbbbb")
            .unwrap()
            .unwrap();
        let one = Pacer::shared(Pacer::scope("p", &[&a]), 1.0, 1.0);
        let same = Pacer::shared(Pacer::scope("p", &[&a]), 1.0, 1.0);
        let other = Pacer::shared(Pacer::scope("p", &[&b]), 1.0, 1.0);
        assert!(Arc::ptr_eq(&one, &same));
        assert!(!Arc::ptr_eq(&one, &other));
        assert!(!Pacer::scope("p", &[&a]).contains("token"));
    }

    #[tokio::test]
    async fn the_pacer_lets_a_burst_through_then_spaces_requests() {
        let p = Pacer::new(3.0, 20.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            p.wait().await;
        }
        p.wait().await;
        p.wait().await;
        assert!(
            t0.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t0.elapsed()
        );
    }
}
