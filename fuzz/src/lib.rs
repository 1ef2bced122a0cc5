//! What the fuzz targets share: valid store inputs drawn from fuzz bytes
//! with `arbitrary` ([`inputs`]), the text format of a protocol script (an
//! operation and the responses it gets, [`script`]), and the loop that
//! drives a sans-IO operation through those responses ([`drive`]).

pub mod inputs;
pub mod script;

use item_model::StoreError;
use sansio::{Operation, Outgoing, Protocol, Response, Step};

/// Most steps one operation is driven (a step is one response).
pub const MAX_STEPS: usize = 256;

/// Starts `operation` and resumes it with `responses`, in order, until it
/// is done or the responses run out (`None`: not done). Every request it
/// hands out goes to `check_request`; every response is also classified by
/// `protocol`, as the driver would. Work is bounded: an operation that
/// still asks for more after [`MAX_STEPS`] answers is a failure, whatever
/// the answers were.
pub fn drive<O: Operation>(
    protocol: &dyn Protocol,
    mut operation: O,
    responses: &[Response],
    mut check_request: impl FnMut(&Outgoing),
) -> Option<Result<O::Output, StoreError>> {
    let mut step = operation.start();
    let mut responses = responses.iter();
    for answered in 0.. {
        match step {
            Step::Done(result) => return Some(result),
            Step::Send(outgoing) => {
                assert!(
                    answered < MAX_STEPS,
                    "an operation asked for more than {MAX_STEPS} requests"
                );
                check_request(&outgoing);
                let response = responses.next()?;
                let _ = protocol.classify(response);
                step = operation.resume(response);
            }
        }
    }
    unreachable!("the loop returns")
}

/// What every request of both protocols must be: a body, when there is
/// one, that is JSON (it was built from the responses before it).
pub fn check_json_body(outgoing: &Outgoing) {
    let body = outgoing.request.body();
    if !body.is_empty() {
        assert!(
            serde_json::from_slice::<serde_json::Value>(body).is_ok(),
            "a request body is not JSON: {}",
            String::from_utf8_lossy(body)
        );
    }
}

/// What the result of an operation must satisfy, whatever the responses.
pub mod checks {
    use item_model::json::item_to_json;
    use item_model::{
        BatchResult, Cursor, Item, Page, Query, ScanCursor, ScanPage, ScanRequest, StoreError,
    };

    /// An item the API can show.
    pub fn item(result: Option<Result<&Item, &StoreError>>) {
        if let Some(Ok(item)) = result {
            shown(item);
        }
    }

    fn shown(item: &Item) {
        let json = item_to_json(item);
        assert!(serde_json::to_vec(&json).is_ok());
    }

    /// A batch answers for each of its writes.
    pub fn batch(result: Option<Result<&BatchResult, &StoreError>>, writes: usize) {
        if let Some(Ok(result)) = result {
            assert_eq!(result.put.len() + result.deleted.len(), writes);
            result.put.iter().for_each(shown);
        }
    }

    /// A scan page holds at most `limit` items, marks exactly the expired
    /// ones, and its next cursor continues the same scan.
    pub fn scan_page(
        result: Option<Result<&ScanPage, &StoreError>>,
        request: &ScanRequest,
        now: i64,
    ) {
        let Some(Ok(page)) = result else {
            return;
        };
        assert!(
            page.items.len() <= request.limit as usize,
            "a scan page over its limit"
        );
        for scanned in &page.items {
            shown(&scanned.item);
            assert_eq!(
                scanned.expired,
                scanned.item.is_expired(now),
                "expiry misjudged"
            );
            assert!(request.wants(&scanned.item), "an item the filter drops");
        }
        if let Some(next) = &page.next_cursor {
            let next_request = ScanRequest {
                cursor: Some(next.clone()),
                ..request.clone()
            };
            if let Err(e) = ScanCursor::decode_for(next, &next_request) {
                panic!("the next cursor of a scan page is refused: {e}");
            }
        }
    }

    /// A page holds at most `limit` items, and its next cursor is one
    /// that the following request can pass back.
    pub fn page(result: Option<Result<&Page, &StoreError>>, query: &Query) {
        let Some(Ok(page)) = result else {
            return;
        };
        assert!(
            page.items.len() <= query.limit as usize,
            "a page over its limit"
        );
        page.items.iter().for_each(shown);
        if let Some(next) = &page.next_cursor {
            let next_query = Query {
                cursor: Some(next.clone()),
                ..query.clone()
            };
            if let Err(e) = Cursor::decode_for(next, &next_query) {
                panic!("the next cursor of a page is refused: {e}");
            }
        }
    }
}
