//! Who may start work: the memory budget shared by all requests with a
//! body, and the cap on the connections one client may hold open.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Estimated memory one request costs per byte of its body: the body is
/// held by the server, copied into the component, and parsed there into
/// JSON values; a 1 MiB JSON array of small numbers took about 18 MB of
/// resident memory, the worst case measured.
pub const MEMORY_PER_BODY_BYTE: u64 = 20;

/// The budget is kept in units of this many bytes, so that one charge
/// fits a semaphore's `u32` permits.
const UNIT_BYTES: u64 = 1024;

/// What a request is known to carry before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySize {
    /// No body at all.
    Empty,
    /// A Content-Length.
    Declared(u64),
    /// Chunked: anything up to the body limit.
    Unknown,
}

/// The memory estimated for a request body of `size` under a body limit
/// of `max_body_bytes`: a chunked body may grow to the limit, so it is
/// charged as that large; a declared one by its length, up to the limit
/// (the component refuses a larger one without reading it).
pub fn estimated_memory(size: BodySize, max_body_bytes: u64) -> u64 {
    let body = match size {
        BodySize::Empty => 0,
        BodySize::Declared(length) => length.min(max_body_bytes),
        BodySize::Unknown => max_body_bytes,
    };
    body.saturating_mul(MEMORY_PER_BODY_BYTE)
}

/// The estimated memory all requests in flight may cost together.
/// Requests are admitted at once or refused (never queued), so that a
/// large request waiting for room cannot hold up small ones behind it.
#[derive(Debug)]
pub struct MemoryBudget {
    /// `None`: no budget.
    units: Option<Arc<Semaphore>>,
    total_units: u64,
}

/// A request's share of the budget, given back when dropped.
#[derive(Debug)]
pub struct MemoryCharge {
    _permit: Option<OwnedSemaphorePermit>,
}

/// The budget has no room for a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{wanted} bytes of the memory budget are not free")]
pub struct BudgetExhausted {
    /// The request's estimated cost, in budget bytes.
    pub wanted: u64,
}

impl MemoryBudget {
    /// A budget of `bytes` (0: unlimited).
    pub fn new(bytes: u64) -> Self {
        let total_units = bytes
            .div_ceil(UNIT_BYTES)
            .min(Semaphore::MAX_PERMITS as u64);
        Self {
            units: (total_units > 0).then(|| Arc::new(Semaphore::new(total_units as usize))),
            total_units,
        }
    }

    /// Reserves `bytes`, or refuses at once when they are not free. A
    /// request larger than the whole budget is charged the whole budget:
    /// it runs when it is alone rather than never.
    pub fn try_charge(&self, bytes: u64) -> Result<MemoryCharge, BudgetExhausted> {
        let units = bytes.div_ceil(UNIT_BYTES).min(self.total_units);
        let Some(semaphore) = self.units.as_ref().filter(|_| units > 0) else {
            return Ok(MemoryCharge { _permit: None });
        };
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        match semaphore.clone().try_acquire_many_owned(units) {
            Ok(permit) => Ok(MemoryCharge {
                _permit: Some(permit),
            }),
            Err(_) => Err(BudgetExhausted { wanted: bytes }),
        }
    }

    /// Bytes not charged to anyone now (for tests and logs).
    pub fn available(&self) -> u64 {
        self.units.as_ref().map_or(u64::MAX, |semaphore| {
            semaphore.available_permits() as u64 * UNIT_BYTES
        })
    }
}

/// Whom the per-client cap counts: an IPv4 address (also when it arrives
/// mapped into IPv6), or an IPv6 /64, the smallest block a site is given,
/// so that one client cannot escape the cap by using more of its own
/// addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a peer address: IPv4 as is, IPv6 cut to its /64.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The open connections of every client, capped per client.
#[derive(Debug)]
pub struct ClientConnections {
    /// 0: no cap.
    max_per_client: usize,
    open: Mutex<HashMap<ClientKey, ClientState>>,
}

#[derive(Debug, Default)]
struct ClientState {
    open: usize,
    /// Connections refused since the client last had none open.
    refused: u64,
}

/// One open connection of a client; closing it (dropping this) makes room.
#[derive(Debug)]
pub struct ClientConnection {
    clients: Arc<ClientConnections>,
    key: ClientKey,
}

/// A client is at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{client} already has {max} connections open")]
pub struct TooManyConnections {
    /// Whose connection was refused.
    pub client: ClientKey,
    /// The cap it reached.
    pub max: usize,
    /// Whether this is the first refusal since the client last had no
    /// connection open: the one worth a log line.
    pub first: bool,
}

impl ClientConnections {
    /// `max_per_client` open connections per client (0: no cap).
    pub fn new(max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_client,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`, or refuses it at the cap.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Result<ClientConnection, TooManyConnections> {
        let key = ClientKey::of(ip);
        // A panic elsewhere while holding the lock leaves the counts
        // consistent (each update is one statement), so poisoning is
        // ignored.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let state = open.entry(key).or_default();
        if self.max_per_client > 0 && state.open >= self.max_per_client {
            state.refused += 1;
            return Err(TooManyConnections {
                client: key,
                max: self.max_per_client,
                first: state.refused == 1,
            });
        }
        state.open += 1;
        Ok(ClientConnection {
            clients: self.clone(),
            key,
        })
    }

    /// Connections `ip`'s client has open.
    pub fn open_by(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&ClientKey::of(ip)).map_or(0, |state| state.open)
    }
}

impl Drop for ClientConnection {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(state) = open.get_mut(&self.key) else {
            return;
        };
        state.open = state.open.saturating_sub(1);
        if state.open == 0 {
            if state.refused > 0 {
                tracing::info!(
                    client = %self.key,
                    refused = state.refused,
                    "client closed all its connections; connections refused at its limit"
                );
            }
            open.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_charge_bodies_up_to_the_limit() {
        let limit = 1 << 20;
        assert_eq!(estimated_memory(BodySize::Empty, limit), 0);
        assert_eq!(
            estimated_memory(BodySize::Declared(1000), limit),
            1000 * MEMORY_PER_BODY_BYTE
        );
        assert_eq!(
            estimated_memory(BodySize::Declared(u64::MAX), limit),
            limit * MEMORY_PER_BODY_BYTE
        );
        assert_eq!(
            estimated_memory(BodySize::Unknown, limit),
            limit * MEMORY_PER_BODY_BYTE
        );
        assert_eq!(
            estimated_memory(BodySize::Unknown, u64::MAX),
            u64::MAX,
            "saturates"
        );
    }

    #[test]
    fn budget_admits_until_full_and_refunds_on_drop() {
        let budget = MemoryBudget::new(10 << 10);
        let first = budget.try_charge(6 << 10).unwrap();
        assert_eq!(
            budget.try_charge(6 << 10).unwrap_err(),
            BudgetExhausted { wanted: 6 << 10 }
        );
        let small = budget.try_charge(1).unwrap();
        assert_eq!(budget.available(), 3 << 10);
        drop(first);
        drop(small);
        assert_eq!(budget.available(), 10 << 10);
        // Nothing to charge: always admitted, even when full.
        let whole = budget.try_charge(10 << 10).unwrap();
        assert!(budget.try_charge(0).is_ok());
        drop(whole);
        // Larger than the whole budget: admitted alone.
        let huge = budget.try_charge(u64::MAX).unwrap();
        assert!(budget.try_charge(1).is_err());
        drop(huge);
        assert_eq!(budget.available(), 10 << 10);
    }

    #[test]
    fn zero_budget_is_unlimited() {
        let budget = MemoryBudget::new(0);
        let charges: Vec<_> = (0..10)
            .map(|_| budget.try_charge(u64::MAX).unwrap())
            .collect();
        assert_eq!(charges.len(), 10);
    }

    #[test]
    fn clients_are_v4_addresses_or_v6_prefixes() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(ClientKey::of(v4), ClientKey::of(mapped));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(other));
        assert_eq!(ClientKey::of(a).to_string(), "2001:db8:1:2::/64");
        assert_eq!(ClientKey::of(v4).to_string(), "203.0.113.7");
    }

    #[test]
    fn connections_are_capped_per_client_and_refusals_reported_once() {
        let clients = ClientConnections::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let neighbour: IpAddr = "192.0.2.2".parse().unwrap();
        let first = clients.try_open(ip).unwrap();
        let second = clients.try_open(ip).unwrap();
        let refused = clients.try_open(ip).unwrap_err();
        assert!(refused.first);
        assert_eq!(refused.max, 2);
        assert!(!clients.try_open(ip).unwrap_err().first, "reported once");
        let _neighbours = clients.try_open(neighbour).unwrap();
        drop(first);
        let third = clients.try_open(ip).unwrap();
        assert_eq!(clients.open_by(ip), 2);
        drop((second, third));
        assert_eq!(clients.open_by(ip), 0);
        // A new episode is reported again.
        let _a = clients.try_open(ip).unwrap();
        let _b = clients.try_open(ip).unwrap();
        assert!(clients.try_open(ip).unwrap_err().first);
    }

    #[test]
    fn zero_cap_is_unlimited() {
        let clients = ClientConnections::new(0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let open: Vec<_> = (0..100).map(|_| clients.try_open(ip).unwrap()).collect();
        assert_eq!(clients.open_by(ip), open.len());
    }
}
