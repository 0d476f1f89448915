//! The limits a connection lives under before and after login, shared by every listener:
//! how long a command may take to arrive, how slowly bulk data may come, how long a client
//! may stay without logging in, and how many connections one source address may hold
//! before logging in (across all listeners, so that one address cannot fill a port with
//! slow or idle sessions). Dovecot's login processes and Postfix's `smtpd_min_data_rate`
//! are the models.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::Limits as Configured;

/// The connection limits of one running server.
#[derive(Clone)]
pub struct ConnectionLimits {
    /// A command line (or an HTTP request head) must arrive whole within this, counted from
    /// its first octet: one byte every few seconds no longer keeps a session forever.
    pub command: Duration,
    /// Bulk data (SMTP DATA and BDAT, IMAP literals, HTTP bodies) must arrive at least this
    /// fast, in octets per second, on top of `command`.
    pub min_data_rate: u64,
    /// A connection that has not logged in this long after it was accepted is closed.
    pub login: Duration,
    /// Literal octets a command may carry before login: enough for any credential.
    pub literal_before_login: usize,
    admission: Admission,
}

impl ConnectionLimits {
    /// The limits the configuration sets.
    pub fn new(configured: &Configured) -> ConnectionLimits {
        ConnectionLimits {
            command: Duration::from_secs(configured.command_timeout_secs),
            min_data_rate: configured.min_data_rate.max(1),
            login: Duration::from_secs(configured.login_timeout_secs),
            literal_before_login: configured.max_literal_before_login,
            admission: Admission {
                counts: Arc::new(Mutex::new(HashMap::new())),
                max_per_address: configured.max_unauthenticated_per_address,
            },
        }
    }

    /// The time `octets` of bulk data may take: [`Self::command`] plus their length at
    /// [`Self::min_data_rate`].
    pub fn data_time(&self, octets: usize) -> Duration {
        let octets = u64::try_from(octets).unwrap_or(u64::MAX);
        self.command
            .saturating_add(Duration::from_secs(octets / self.min_data_rate))
    }

    /// Connections one source may hold before they log in.
    pub fn max_unauthenticated_per_address(&self) -> usize {
        self.admission.max_per_address
    }

    /// A place for one more connection from `addr` that has not logged in; None when that
    /// address holds its maximum already.
    pub fn admit(&self, addr: IpAddr) -> Option<Slot> {
        self.admission.admit(addr)
    }
}

/// Counts of unauthenticated connections by source.
#[derive(Clone)]
struct Admission {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

impl Admission {
    fn admit(&self, addr: IpAddr) -> Option<Slot> {
        let source = source_of(addr);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(source).or_insert(0);
        if *count >= self.max_per_address {
            return None;
        }
        *count += 1;
        Some(Slot {
            counts: self.counts.clone(),
            source,
        })
    }
}

/// One connection's place among its address's unauthenticated ones, given back when it is
/// dropped (at login, or when the connection ends).
pub struct Slot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.source);
            }
        }
    }
}

/// The source a connection is counted under: the IPv4 address (IPv4-mapped IPv6 included),
/// or the /64 of an IPv6 address, since one IPv6 host may hold a whole /64.
fn source_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> ConnectionLimits {
        ConnectionLimits::new(&Configured {
            max_unauthenticated_per_address: max,
            ..Configured::default()
        })
    }

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_it_back() {
        let limits = limits(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = limits.admit(a).expect("first");
        let _second = limits.admit(a).expect("second");
        assert!(limits.admit(a).is_none(), "third from the same address");
        assert!(
            limits.admit(b).is_some(),
            "another address is not concerned"
        );
        drop(first);
        assert!(
            limits.admit(a).is_some(),
            "a place given back is free again"
        );
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let limits = limits(1);
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let other_host: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let _held = limits.admit(one).expect("first");
        assert!(limits.admit(other_host).is_none(), "same /64");
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        let _v4 = limits.admit(v4).expect("v4");
        assert!(limits.admit(mapped).is_none(), "the same IPv4 host");
    }

    #[test]
    fn data_time_grows_with_the_size_at_the_minimum_rate() {
        let limits = ConnectionLimits::new(&Configured::default());
        assert_eq!(limits.data_time(0), limits.command);
        assert_eq!(
            limits.data_time(usize::try_from(limits.min_data_rate * 10).expect("size")),
            limits.command + Duration::from_secs(10)
        );
        assert!(limits.data_time(usize::MAX) > Duration::from_secs(1 << 40));
    }
}
