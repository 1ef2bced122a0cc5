//! What the proxy did, for a test's assertions and its log line.

use serde::{Deserialize, Serialize};

use crate::schedule::Fault;

/// Counts since the proxy started. Once a request is done it is in
/// `forwarded`, in `failed` or under one fault in `injected`; the faults
/// that forward ([`Fault::forwards`]) are in `forwarded` too, and a request
/// whose client left before its body arrived is in none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests whose head arrived.
    pub requests: u64,
    /// Requests the schedule decided on (accepted by its filter while
    /// injection was enabled).
    pub eligible: u64,
    /// Requests the upstream answered in full: how many it processed.
    pub forwarded: u64,
    /// Requests the proxy could not pass on: body over the cap (413), the
    /// upstream unreachable or failing (502), or too slow (504).
    pub failed: u64,
    /// Faults injected, by kind.
    pub injected: FaultCounts,
}

/// A count per [`Fault`] kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// [`Fault::ServerError`].
    pub server_error: u64,
    /// [`Fault::Unavailable`].
    pub unavailable: u64,
    /// [`Fault::Throttle`].
    pub throttle: u64,
    /// [`Fault::ResetBeforeForwarding`].
    pub reset_before_forwarding: u64,
    /// [`Fault::ResetAfterForwarding`].
    pub reset_after_forwarding: u64,
    /// [`Fault::Latency`].
    pub latency: u64,
    /// [`Fault::Hang`].
    pub hang: u64,
}

impl FaultCounts {
    /// The count of one kind.
    pub fn get(&self, fault: Fault) -> u64 {
        *self.slot(fault)
    }

    /// All faults together.
    pub fn total(&self) -> u64 {
        Fault::ALL.into_iter().map(|fault| self.get(fault)).sum()
    }

    pub(crate) fn add(&mut self, fault: Fault) {
        *self.slot_mut(fault) += 1;
    }

    fn slot(&self, fault: Fault) -> &u64 {
        match fault {
            Fault::ServerError => &self.server_error,
            Fault::Unavailable => &self.unavailable,
            Fault::Throttle => &self.throttle,
            Fault::ResetBeforeForwarding => &self.reset_before_forwarding,
            Fault::ResetAfterForwarding => &self.reset_after_forwarding,
            Fault::Latency => &self.latency,
            Fault::Hang => &self.hang,
        }
    }

    fn slot_mut(&mut self, fault: Fault) -> &mut u64 {
        match fault {
            Fault::ServerError => &mut self.server_error,
            Fault::Unavailable => &mut self.unavailable,
            Fault::Throttle => &mut self.throttle,
            Fault::ResetBeforeForwarding => &mut self.reset_before_forwarding,
            Fault::ResetAfterForwarding => &mut self.reset_after_forwarding,
            Fault::Latency => &mut self.latency,
            Fault::Hang => &mut self.hang,
        }
    }
}

/// One injected fault, for finding the requests it hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injection {
    /// The request's number in arrival order, from 1 (as in
    /// [`Stats::requests`]).
    pub request: u64,
    /// What was injected.
    pub fault: Fault,
    /// `POST`...
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The `x-amz-target` header, if any.
    pub target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_serialises_flat() {
        let mut stats = Stats::default();
        stats.injected.add(Fault::ResetAfterForwarding);
        stats.injected.add(Fault::ResetAfterForwarding);
        stats.injected.add(Fault::Hang);
        assert_eq!(stats.injected.get(Fault::ResetAfterForwarding), 2);
        assert_eq!(stats.injected.total(), 3);
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["injected"]["reset_after_forwarding"], 2);
        assert_eq!(json["injected"]["hang"], 1);
        assert_eq!(json["requests"], 0);
        let back: Stats = serde_json::from_value(json).unwrap();
        assert_eq!(back, stats);
    }
}
