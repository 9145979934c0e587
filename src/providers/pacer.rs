//! A token bucket that paces a provider's requests under its rate limit.

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
