//! Outside a component: no wasi:http to send with. Sleeping and random
//! numbers still work, so the transport is testable natively.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use crate::{Options, TransportError};

pub(crate) fn send(
    request: http::Request<Vec<u8>>,
    _options: &Options,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    // Still split the request, so that the checks match the component's.
    crate::request::parts(request)?;
    Err(crate::error::not_in_component())
}

pub(crate) fn sleep(duration: Duration) {
    std::thread::sleep(duration);
}

/// Good enough for jitter: std's per-process random hash keys, stirred
/// with the time.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    if let Ok(since) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        hasher.write_u128(since.as_nanos());
    }
    hasher.finish()
}
