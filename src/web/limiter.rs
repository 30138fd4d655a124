//! Wrong operator tokens, counted per client address: an address that sent
//! too many waits, while the right token keeps working from every other one.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Wrong tokens an address may send per window before it must wait.
pub const FAILURES_PER_WINDOW: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most, so a flood from many addresses cannot grow
/// the server's memory; the oldest window is forgotten first.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Default)]
pub struct FailureLimiter {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    failures: u32,
}

impl FailureLimiter {
    /// How long `addr` must wait before its next token is looked at, if it
    /// has used up its wrong ones for now.
    pub fn blocked(&self, addr: IpAddr) -> Option<Duration> {
        let key = key(addr);
        let windows = self.windows.lock().unwrap();
        let window = windows.get(&key)?;
        let left = WINDOW.checked_sub(window.started.elapsed())?;
        (window.failures >= FAILURES_PER_WINDOW && !left.is_zero()).then_some(left)
    }

    /// Counts a wrong token from `addr` and returns how many it sent in
    /// the current window.
    pub fn failed(&self, addr: IpAddr) -> u32 {
        let key = key(addr);
        let mut windows = self.windows.lock().unwrap();
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&key) {
            windows.retain(|_, w| w.started.elapsed() < WINDOW);
            if windows.len() >= MAX_ADDRESSES {
                let oldest = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| *k);
                windows.remove(&oldest.expect("the map is full"));
            }
        }
        let window = windows.entry(key).or_insert(Window {
            started: Instant::now(),
            failures: 0,
        });
        if window.started.elapsed() >= WINDOW {
            *window = Window {
                started: Instant::now(),
                failures: 0,
            };
        }
        window.failures += 1;
        window.failures
    }
}

/// IPv6 clients usually hold a whole /64: counting each address apart would
/// give one client 2^64 budgets.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let limiter = FailureLimiter::default();
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        for n in 1..=FAILURES_PER_WINDOW {
            assert_eq!(limiter.blocked(one), None);
            assert_eq!(limiter.failed(one), n);
        }
        let wait = limiter.blocked(one).expect("blocked");
        assert!(wait > Duration::from_secs(50) && wait <= WINDOW, "{wait:?}");
        assert_eq!(limiter.blocked(two), None);
    }

    #[test]
    fn addresses_of_one_ipv6_network_share_a_budget() {
        let limiter = FailureLimiter::default();
        for n in 0..FAILURES_PER_WINDOW {
            limiter.failed(format!("2001:db8::{n:x}").parse().unwrap());
        }
        assert!(limiter.blocked("2001:db8::ffff".parse().unwrap()).is_some());
        assert!(limiter
            .blocked("2001:db8:0:1::1".parse().unwrap())
            .is_none());
    }

    #[test]
    fn the_remembered_addresses_are_bounded() {
        let limiter = FailureLimiter::default();
        for n in 0..(MAX_ADDRESSES as u32 + 50) {
            limiter.failed(IpAddr::V4(n.into()));
        }
        assert_eq!(limiter.windows.lock().unwrap().len(), MAX_ADDRESSES);
    }
}
