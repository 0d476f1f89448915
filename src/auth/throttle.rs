//! The brute-force brake: after a few failed logins, answers come later and later, per
//! source address and per account; a source that keeps failing is blocked for a while.
//! An account is never blocked, only slowed: an attacker must not be able to lock a doctor
//! out of their mail, and the doctor logging in from elsewhere still gets in. Everything is
//! forgotten after a quiet period ([`ThrottlePolicy::forget`]); nothing is permanent.
//!
//! A success forgives only what it proves: the account's failures, and the source's
//! failures on that account (an attacker's valid login on one account does not clear their
//! guesses at another). Attempts on a slowed account take turns ([`Throttle::turn`]), so
//! parallel connections cannot wait out one delay together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures allowed before answers start to slow down.
const FREE_FAILURES: u32 = 3;
/// Entries kept before the quiet ones are dropped.
const MAX_ENTRIES: usize = 10_000;

/// How hard the brake is (`[auth]` of the configuration).
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// The first delay; each further failure doubles it.
    pub delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Failures from one source address that block it.
    pub block_after: u32,
    /// How long a source stays blocked.
    pub block_for: Duration,
    /// Quiet time after which failures are forgotten.
    pub forget: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(15),
            block_after: 20,
            block_for: Duration::from_secs(15 * 60),
            forget: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Source(IpAddr),
    Account(String),
    /// A source's failures on one account: what that account's success forgives it.
    SourceAccount(IpAddr, String),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// What to do before checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check them, after this delay (zero: at once).
    Wait(Duration),
    /// Refuse without checking: the source is blocked for this much longer.
    Blocked(Duration),
}

/// Failure counts in memory, shared by every protocol.
#[derive(Debug, Default)]
pub struct Throttle {
    policy: ThrottlePolicy,
    failures: Mutex<HashMap<Key, Failures>>,
    /// One turn at a time per slowed account.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to try a slowed account's password now; the next attempt waits for it to be
/// dropped.
pub struct Turn {
    _held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Throttle {
    /// A brake with `policy`.
    pub fn new(policy: ThrottlePolicy) -> Throttle {
        Throttle {
            policy,
            failures: Mutex::default(),
            turns: Mutex::default(),
        }
    }

    /// Waits for the turn of an attempt on `account`: at once while the account is not
    /// slowed, else after the attempts before it (first come, first served). Hold it through
    /// the delay and the password check.
    pub async fn turn(&self, account: &str, now: Instant) -> Turn {
        let slowed = {
            let map = self.lock();
            map.get(&Key::Account(account.to_string()))
                .is_some_and(|f| {
                    now.duration_since(f.last) < self.policy.forget && f.count >= FREE_FAILURES
                })
        };
        if !slowed {
            return Turn { _held: None };
        }
        let lock = {
            let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
            if turns.len() >= MAX_ENTRIES {
                turns.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            turns.entry(account.to_string()).or_default().clone()
        };
        Turn {
            _held: Some(lock.lock_owned().await),
        }
    }

    /// The gate for a login to `account` from `source`, at `now`.
    pub fn gate(&self, source: Option<IpAddr>, account: &str, now: Instant) -> Gate {
        let map = self.lock();
        let recent = |key: &Key| {
            map.get(key)
                .filter(|f| now.duration_since(f.last) < self.policy.forget)
                .copied()
        };
        let from_source = source.and_then(|ip| recent(&Key::Source(ip)));
        if let Some(until) = from_source.and_then(|f| f.blocked_until)
            && until > now
        {
            return Gate::Blocked(until - now);
        }
        let count = |f: Option<Failures>| f.map_or(0, |f| f.count);
        let worst = count(from_source).max(count(recent(&Key::Account(account.to_string()))));
        Gate::Wait(self.delay_after(worst))
    }

    /// Records a failure; returns how long the source is now blocked for, when this failure
    /// blocks it.
    pub fn failed(&self, source: Option<IpAddr>, account: &str, now: Instant) -> Option<Duration> {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            let forget = self.policy.forget;
            map.retain(|_, f| now.duration_since(f.last) < forget);
        }
        let forget = self.policy.forget;
        bump(&mut map, Key::Account(account.to_string()), now, forget);
        let ip = source?;
        bump(
            &mut map,
            Key::SourceAccount(ip, account.to_string()),
            now,
            forget,
        );
        let from_source = bump(&mut map, Key::Source(ip), now, forget);
        let blocks = from_source.count >= self.policy.block_after
            && from_source.blocked_until.is_none_or(|until| until <= now);
        if blocks {
            from_source.blocked_until = Some(now + self.policy.block_for);
            return Some(self.policy.block_for);
        }
        None
    }

    /// A success: the account starts afresh, and the source is forgiven its failures on
    /// this account only.
    pub fn succeeded(&self, source: Option<IpAddr>, account: &str) {
        let mut map = self.lock();
        map.remove(&Key::Account(account.to_string()));
        let Some(ip) = source else { return };
        let Some(forgiven) = map.remove(&Key::SourceAccount(ip, account.to_string())) else {
            return;
        };
        if let Some(from_source) = map.get_mut(&Key::Source(ip)) {
            from_source.count = from_source.count.saturating_sub(forgiven.count);
            if from_source.count == 0 && from_source.blocked_until.is_none() {
                map.remove(&Key::Source(ip));
            }
        }
    }

    fn delay_after(&self, failures: u32) -> Duration {
        if failures < FREE_FAILURES {
            return Duration::ZERO;
        }
        let doublings = (failures - FREE_FAILURES).min(16);
        self.policy
            .delay
            .saturating_mul(1 << doublings)
            .min(self.policy.max_delay)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One more failure for `key` (counting from zero again after `forget` of quiet).
fn bump(
    map: &mut HashMap<Key, Failures>,
    key: Key,
    now: Instant,
    forget: Duration,
) -> &mut Failures {
    let fresh = Failures {
        count: 0,
        last: now,
        blocked_until: None,
    };
    let entry = map.entry(key).or_insert(fresh);
    if now.duration_since(entry.last) >= forget {
        *entry = fresh;
    }
    entry.count = entry.count.saturating_add(1);
    entry.last = now;
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            block_after: 6,
            block_for: Duration::from_secs(60),
            forget: Duration::from_secs(600),
        }
    }

    #[test]
    fn answers_slow_down_then_the_source_is_blocked_but_never_the_account() {
        let throttle = Throttle::new(policy());
        let attacker = Some(IpAddr::from([192, 0, 2, 1]));
        let doctor = Some(IpAddr::from([192, 0, 2, 2]));
        let t0 = Instant::now();
        let mut delays = Vec::new();
        for i in 0..6 {
            delays.push(throttle.gate(attacker, "dr@h.test", t0));
            let blocked = throttle.failed(attacker, "dr@h.test", t0);
            assert_eq!(blocked.is_some(), i == 5, "failure {i}");
        }
        let ms = |d: u64| Gate::Wait(Duration::from_millis(d));
        assert_eq!(delays, [ms(0), ms(0), ms(0), ms(100), ms(200), ms(400)]);
        assert_eq!(
            throttle.gate(attacker, "dr@h.test", t0 + Duration::from_secs(10)),
            Gate::Blocked(Duration::from_secs(50))
        );
        // The doctor, elsewhere, is slowed (the account failed), not refused.
        assert_eq!(throttle.gate(doctor, "dr@h.test", t0), ms(400));
        throttle.succeeded(doctor, "dr@h.test");
        assert_eq!(throttle.gate(doctor, "dr@h.test", t0), ms(0));
        // The block ends; then quiet time forgets everything.
        assert_eq!(
            throttle.gate(attacker, "other@h.test", t0 + Duration::from_secs(61)),
            ms(400)
        );
        assert_eq!(
            throttle.gate(attacker, "other@h.test", t0 + Duration::from_secs(601)),
            ms(0)
        );
    }

    #[test]
    fn a_success_on_one_account_does_not_forgive_guesses_at_another() {
        let throttle = Throttle::new(policy());
        let attacker = Some(IpAddr::from([192, 0, 2, 9]));
        let t0 = Instant::now();
        for _ in 0..5 {
            throttle.failed(attacker, "victim@h.test", t0);
        }
        // The attacker's own account logs in from the same address.
        throttle.succeeded(attacker, "mine@h.test");
        let blocked = throttle.failed(attacker, "victim@h.test", t0);
        assert!(blocked.is_some(), "the sixth guess blocks the source");
        // A typo then a success on one account forgives that account's failures only.
        let nat = Some(IpAddr::from([192, 0, 2, 10]));
        for _ in 0..3 {
            throttle.failed(nat, "a@h.test", t0);
        }
        throttle.failed(nat, "b@h.test", t0);
        throttle.succeeded(nat, "a@h.test");
        assert_eq!(
            throttle.gate(nat, "c@h.test", t0),
            Gate::Wait(Duration::ZERO)
        );
        assert_eq!(
            throttle.gate(nat, "b@h.test", t0),
            Gate::Wait(Duration::ZERO)
        );
        for _ in 0..2 {
            throttle.failed(nat, "b@h.test", t0);
        }
        assert_eq!(
            throttle.gate(nat, "c@h.test", t0),
            Gate::Wait(Duration::from_millis(100)),
            "b's three failures still count for the source"
        );
    }

    #[tokio::test]
    async fn attempts_on_a_slowed_account_take_turns() {
        let throttle = Arc::new(Throttle::new(policy()));
        let t0 = Instant::now();
        let free = throttle.turn("dr@h.test", t0).await;
        let _also_free = throttle.turn("dr@h.test", t0).await;
        drop(free);
        for _ in 0..3 {
            throttle.failed(None, "dr@h.test", t0);
        }
        let first = throttle.turn("dr@h.test", t0).await;
        let waiting = {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.turn("dr@h.test", t0).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second attempt waits for the first"
        );
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("its turn comes")
            .expect("task");
    }
}
