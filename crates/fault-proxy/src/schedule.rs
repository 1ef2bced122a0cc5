//! Which request gets which fault: a seeded draw per eligible request, in
//! arrival order, so that a failing chaos run can be replayed by its seed.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, RequestView};
use crate::error::{ParseError, ProxyError};

/// A fault injected in place of, or after, forwarding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// 500 in the backend's error format, not forwarded.
    ServerError,
    /// 503 in the backend's error format, not forwarded.
    Unavailable,
    /// The backend's own throttling error, not forwarded; the variants take
    /// turns (DynamoDB: `ProvisionedThroughputExceededException`,
    /// `ThrottlingException`; Firestore: 429 `RESOURCE_EXHAUSTED`, 503
    /// `UNAVAILABLE`, 409 `ABORTED`).
    Throttle,
    /// The request is read, not forwarded, and the connection is reset
    /// (RST): the write was not applied.
    ResetBeforeForwarding,
    /// The request is forwarded and its whole answer read, then the client's
    /// connection is reset (RST): the write was applied but its answer is
    /// lost.
    ResetAfterForwarding,
    /// Forwarded; the answer is held back for [`Settings::latency`](crate::Settings::latency).
    Latency,
    /// Not forwarded (so the upstream's state stays predictable); the
    /// connection stays open without an answer for
    /// [`Settings::hang`](crate::Settings::hang), then is closed (FIN).
    Hang,
}

impl Fault {
    /// Every kind, in declaration order.
    pub const ALL: [Fault; 7] = [
        Fault::ServerError,
        Fault::Unavailable,
        Fault::Throttle,
        Fault::ResetBeforeForwarding,
        Fault::ResetAfterForwarding,
        Fault::Latency,
        Fault::Hang,
    ];

    /// The name used in JSON (`reset_after_forwarding`).
    pub fn name(self) -> &'static str {
        match self {
            Fault::ServerError => "server_error",
            Fault::Unavailable => "unavailable",
            Fault::Throttle => "throttle",
            Fault::ResetBeforeForwarding => "reset_before_forwarding",
            Fault::ResetAfterForwarding => "reset_after_forwarding",
            Fault::Latency => "latency",
            Fault::Hang => "hang",
        }
    }

    /// Whether the upstream sees the request: a test counting applied
    /// writes must expect these.
    pub fn forwards(self) -> bool {
        matches!(self, Fault::ResetAfterForwarding | Fault::Latency)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = ParseError;

    /// Accepts `reset_after_forwarding` and `reset-after-forwarding`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        Fault::ALL
            .into_iter()
            .find(|fault| fault.name() == wanted)
            .ok_or_else(|| ParseError::Fault(text.to_string()))
    }
}

/// A predicate on a request, for [`Filter::Matching`].
pub type Predicate = Arc<dyn Fn(&RequestView<'_>) -> bool + Send + Sync>;

/// Which requests may get a fault; the others are always forwarded and
/// do not consume the schedule's draws.
#[derive(Clone, Default)]
pub enum Filter {
    /// Every request.
    #[default]
    All,
    /// Writes only ([`RequestView::is_write`]): faults land where
    /// exactly-once matters, reads stay clean.
    Writes,
    /// Requests the predicate accepts (it sees method, URI, headers and
    /// body, e.g. the `x-amz-target` or a marker in the body).
    Matching(Predicate),
}

impl Filter {
    /// A [`Filter::Matching`] from a closure.
    pub fn matching(predicate: impl Fn(&RequestView<'_>) -> bool + Send + Sync + 'static) -> Self {
        Filter::Matching(Arc::new(predicate))
    }

    pub(crate) fn accepts(&self, backend: Backend, request: &RequestView<'_>) -> bool {
        match self {
            Filter::All => true,
            Filter::Writes => request.is_write(backend),
            Filter::Matching(predicate) => predicate(request),
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::All => f.write_str("All"),
            Filter::Writes => f.write_str("Writes"),
            Filter::Matching(_) => f.write_str("Matching(..)"),
        }
    }
}

/// When to inject what. Each eligible request (accepted by `only`, while
/// injection is enabled) takes two draws from a SplitMix64 generator seeded
/// with `seed`, in arrival order: the first decides whether it gets a fault
/// (with probability `rate`), the second which kind (by weight). The same
/// seed, settings and order of requests give the same faults; a higher rate
/// with the same seed faults a superset of the requests, with the same
/// kinds where both fault.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Seeds the generator.
    pub seed: u64,
    /// Share of eligible requests that get a fault, 0 to 1.
    pub rate: f64,
    /// The kinds to choose from, with their relative weights.
    pub kinds: Vec<(Fault, u32)>,
    /// Which requests are eligible.
    pub only: Filter,
}

impl Schedule {
    /// Faults `rate` of all requests, every kind equally likely.
    pub fn new(seed: u64, rate: f64) -> Self {
        Schedule {
            seed,
            rate,
            kinds: Fault::ALL.into_iter().map(|fault| (fault, 1)).collect(),
            only: Filter::All,
        }
    }

    /// Never injects: a plain proxy.
    pub fn none() -> Self {
        Schedule::new(0, 0.0)
    }

    /// Injects `fault` into every eligible request.
    pub fn always(fault: Fault) -> Self {
        Schedule::new(0, 1.0).with_kinds([(fault, 1)])
    }

    /// The kinds to choose from, with weights.
    pub fn with_kinds(mut self, kinds: impl IntoIterator<Item = (Fault, u32)>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// Which requests are eligible.
    pub fn only(mut self, filter: Filter) -> Self {
        self.only = filter;
        self
    }

    /// Only writes are eligible ([`Filter::Writes`]).
    pub fn only_writes(self) -> Self {
        self.only(Filter::Writes)
    }

    /// The faults of the first `n` eligible requests: what a proxy with
    /// this schedule injects, so a test can predict it.
    pub fn plan(&self, n: usize) -> Vec<Option<Fault>> {
        let mut dice = Dice::new(self.seed);
        (0..n).map(|_| dice.draw(self)).collect()
    }

    pub(crate) fn validate(&self) -> Result<(), ProxyError> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(ProxyError::Schedule(format!(
                "the rate must be between 0 and 1, not {}",
                self.rate
            )));
        }
        if self.rate > 0.0 && self.total_weight() == 0 {
            return Err(ProxyError::Schedule(
                "a rate above 0 needs at least one fault kind with a weight above 0".into(),
            ));
        }
        Ok(())
    }

    fn total_weight(&self) -> u64 {
        self.kinds
            .iter()
            .map(|(_, weight)| u64::from(*weight))
            .sum()
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a few lines, and its sequence
/// for a seed never changes with a dependency's version.
#[derive(Debug)]
pub(crate) struct Dice {
    state: u64,
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Self {
        Dice { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next eligible request's fault. Always two draws, so a request's
    /// kind does not depend on the rate.
    pub(crate) fn draw(&mut self, schedule: &Schedule) -> Option<Fault> {
        // 53 random bits as a float in [0, 1).
        let chance = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let pick = self.next();
        if chance >= schedule.rate {
            return None;
        }
        let mut left = pick % schedule.total_weight();
        for (fault, weight) in &schedule.kinds {
            let weight = u64::from(*weight);
            if left < weight {
                return Some(*fault);
            }
            left -= weight;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let schedule = Schedule::new(7, 0.5);
        let plan = schedule.plan(200);
        assert_eq!(plan, schedule.plan(200));
        assert_ne!(plan, Schedule::new(8, 0.5).plan(200));
        let faulted = plan.iter().flatten().count();
        assert!((60..=140).contains(&faulted), "{faulted} of 200");
        for fault in Fault::ALL {
            assert!(plan.contains(&Some(fault)), "{fault} never drawn");
        }
    }

    #[test]
    fn rate_zero_never_rate_one_always() {
        assert!(Schedule::new(1, 0.0).plan(100).iter().all(Option::is_none));
        assert!(Schedule::new(1, 1.0).plan(100).iter().all(Option::is_some));
        let always = Schedule::always(Fault::Hang).plan(10);
        assert!(always.iter().all(|f| *f == Some(Fault::Hang)));
    }

    #[test]
    fn a_higher_rate_faults_a_superset_with_the_same_kinds() {
        let low = Schedule::new(3, 0.2).plan(300);
        let high = Schedule::new(3, 0.6).plan(300);
        for (low, high) in low.iter().zip(&high) {
            if low.is_some() {
                assert_eq!(low, high);
            }
        }
        assert!(high.iter().flatten().count() > low.iter().flatten().count());
    }

    #[test]
    fn weights_choose_the_kind() {
        let schedule = Schedule::new(11, 1.0).with_kinds([
            (Fault::ServerError, 0),
            (Fault::ResetAfterForwarding, 3),
            (Fault::Latency, 1),
        ]);
        let plan = schedule.plan(400);
        let count = |fault| plan.iter().filter(|f| **f == Some(fault)).count();
        assert_eq!(count(Fault::ServerError), 0);
        assert!(count(Fault::ResetAfterForwarding) > 2 * count(Fault::Latency));
        assert_eq!(
            count(Fault::ResetAfterForwarding) + count(Fault::Latency),
            400
        );
    }

    #[test]
    fn invalid_schedules_are_refused() {
        assert!(Schedule::new(0, 1.5).validate().is_err());
        assert!(Schedule::new(0, f64::NAN).validate().is_err());
        assert!(Schedule::new(0, -0.1).validate().is_err());
        let no_kinds = Schedule::new(0, 0.5).with_kinds([]);
        assert!(no_kinds.validate().is_err());
        assert!(Schedule::none().with_kinds([]).validate().is_ok());
    }

    #[test]
    fn names_round_trip() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>().unwrap(), fault);
            let kebab = fault.name().replace('_', "-");
            assert_eq!(kebab.parse::<Fault>().unwrap(), fault);
            assert_eq!(
                serde_json::to_string(&fault).unwrap(),
                format!("\"{}\"", fault.name())
            );
        }
        assert!("explode".parse::<Fault>().is_err());
    }
}
