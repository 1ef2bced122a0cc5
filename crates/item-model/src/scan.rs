//! Scans: reading every item of a store, in parallel segments and resumable
//! pages, for export and migration (WIT `scan`).
//!
//! What every backend shares lives here once:
//! - the request and page types;
//! - [`ScanCursor`], the position after a page, in one checksummed format
//!   (like query cursors), bound to its segment, segment count and
//!   `updated-since`, so that a cursor cannot resume another scan;
//! - [`segment_id_range`], how stores that keep items in id order (SQLite,
//!   Firestore) split them into segments; DynamoDB uses its own parallel
//!   Scan segments, which hash the key;
//! - [`ScanPageBuilder`], the page rule: `limit` items and the same byte
//!   budget as a query page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::cursor::checksum;
use crate::{Item, Offer, PAGE_BYTE_BUDGET, estimated_size};

/// Most segments one scan may be read in.
pub const MAX_SCAN_SEGMENTS: u32 = 256;

/// Longest position a scan cursor carries, in bytes (DynamoDB's limit on
/// a partition key).
const MAX_POSITION_LEN: usize = 2048;

/// A request for one page of one segment of a scan (WIT `scan-request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// Which segment: `0..segments`.
    pub segment: u32,
    /// How many segments the store is read in, 1 to [`MAX_SCAN_SEGMENTS`].
    pub segments: u32,
    /// Most items to return, 1 to [`crate::MAX_QUERY_LIMIT`].
    pub limit: u32,
    /// The segment's previous `next_cursor`.
    pub cursor: Option<String>,
    /// Only items with `updated_at` at or after this RFC 3339 time.
    pub updated_since: Option<String>,
}

impl ScanRequest {
    /// The first page of segment `segment` of `segments`, everything.
    pub fn first(segment: u32, segments: u32, limit: u32) -> Self {
        Self {
            segment,
            segments,
            limit,
            cursor: None,
            updated_since: None,
        }
    }

    /// Whether `item` passes the `updated_since` filter. Timestamps are
    /// fixed-width UTC text, so text order is time order.
    pub fn wants(&self, item: &Item) -> bool {
        self.updated_since
            .as_deref()
            .is_none_or(|since| item.updated_at.as_str() >= since)
    }

    /// The cursor that resumes this request after position `after`.
    pub fn cursor_after(&self, after: &str) -> ScanCursor {
        ScanCursor {
            segment: self.segment,
            segments: self.segments,
            updated_since: self.updated_since.clone(),
            after: after.to_owned(),
        }
    }

    /// The position this request resumes after: its cursor's, checked to
    /// belong to this request; `None` for a first page.
    pub fn resume_after(&self) -> Result<Option<String>, crate::CursorError> {
        match &self.cursor {
            None => Ok(None),
            Some(text) => ScanCursor::decode_for(text, self).map(|c| Some(c.after)),
        }
    }
}

/// An item read by a scan (WIT `scanned`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The item as stored.
    pub item: Item,
    /// Expired, but not yet removed by the backend.
    pub expired: bool,
}

/// One page of a scan (WIT `scan-page`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// The items, in the store's order within the segment.
    pub items: Vec<Scanned>,
    /// Present when more may follow in the segment.
    pub next_cursor: Option<String>,
}

/// The position after a scan page. `after` is the store's position: the
/// last id read, in id order (SQLite, Firestore) or in DynamoDB's scan
/// order (its `LastEvaluatedKey`), so a scan cursor resumes only the store
/// that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCursor {
    /// The segment it continues.
    pub segment: u32,
    /// The segment count of its scan.
    pub segments: u32,
    /// The `updated_since` of its scan.
    pub updated_since: Option<String>,
    /// The last position read.
    pub after: String,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    g: u32,
    n: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    s: String,
    a: String,
    h: u32,
}

/// Why a scan cursor was refused: see [`crate::CursorError`].
fn malformed() -> crate::CursorError {
    crate::CursorError::Malformed
}

impl ScanCursor {
    /// The opaque text handed out as `next-cursor`.
    pub fn encode(&self) -> String {
        let (g, n) = (self.segment.to_string(), self.segments.to_string());
        let s = self.updated_since.clone().unwrap_or_default();
        let wire = Wire {
            v: 1,
            g: self.segment,
            n: self.segments,
            h: checksum(&[&g, &n, &s, &self.after]),
            s,
            a: self.after.clone(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// Decodes a cursor and checks that it continues `request`'s scan.
    pub fn decode_for(text: &str, request: &ScanRequest) -> Result<Self, crate::CursorError> {
        if text.len() > 4 * MAX_POSITION_LEN {
            return Err(malformed());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed())?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
        let (g, n) = (wire.g.to_string(), wire.n.to_string());
        if wire.v != 1 || wire.h != checksum(&[&g, &n, &wire.s, &wire.a]) {
            return Err(malformed());
        }
        // A position is a backend key: an item id, or (DynamoDB) the key of
        // a record the scan passed over, which may hold a `/`.
        if wire.a.is_empty() || wire.a.len() > MAX_POSITION_LEN || wire.a.contains(char::is_control)
        {
            return Err(malformed());
        }
        let cursor = Self {
            segment: wire.g,
            segments: wire.n,
            updated_since: (!wire.s.is_empty()).then_some(wire.s),
            after: wire.a,
        };
        if cursor.segment != request.segment
            || cursor.segments != request.segments
            || cursor.updated_since != request.updated_since
        {
            return Err(crate::CursorError::OtherQuery);
        }
        Ok(cursor)
    }
}

/// The ids of segment `segment` of `segments`, for stores that keep items
/// in id order: `lower <= id < upper`, either end open when `None`.
///
/// The bounds are two-digit lowercase hex prefixes (`"40"`, `"80"`, ...),
/// spread evenly over `00`..`ff`: UUIDs, the ids the api makes, spread
/// evenly over the segments; any other id still falls in exactly one
/// segment (the ranges cover every string, in any order that sorts ASCII
/// digits and letters as ASCII does), just not evenly.
pub fn segment_id_range(segment: u32, segments: u32) -> (Option<String>, Option<String>) {
    let bound = |k: u32| -> Option<String> {
        if k == 0 || k >= segments {
            return None;
        }
        let prefix = u64::from(k) * 256 / u64::from(segments);
        Some(format!("{prefix:02x}"))
    };
    (bound(segment), bound(segment + 1))
}

/// Collects one scan page: `limit` items and at most [`PAGE_BYTE_BUDGET`]
/// of item data, but never fewer than one item.
#[derive(Debug)]
pub struct ScanPageBuilder {
    limit: usize,
    budget: usize,
    bytes: usize,
    items: Vec<Scanned>,
}

impl ScanPageBuilder {
    /// A page for `request`.
    pub fn new(request: &ScanRequest) -> Self {
        Self {
            limit: request.limit as usize,
            budget: PAGE_BYTE_BUDGET,
            bytes: 0,
            items: Vec::new(),
        }
    }

    /// Offers the next item read; expiry is judged at `now` (Unix seconds).
    pub fn offer(&mut self, item: Item, now: i64) -> Offer {
        let size = estimated_size(&item);
        if self.items.len() >= self.limit
            || (!self.items.is_empty() && self.bytes + size > self.budget)
        {
            return Offer::Full;
        }
        self.bytes += size;
        let expired = item.is_expired(now);
        self.items.push(Scanned { item, expired });
        Offer::Taken
    }

    /// How many more items the page can take.
    pub fn wanted(&self) -> usize {
        self.limit.saturating_sub(self.items.len())
    }

    /// The page, with a cursor after its last item when more follow (for
    /// stores whose position is the last id).
    pub fn finish(self, request: &ScanRequest, more: bool) -> ScanPage {
        let next_cursor = match (more, self.items.last()) {
            (true, Some(last)) => Some(request.cursor_after(&last.item.id).encode()),
            _ => None,
        };
        ScanPage {
            items: self.items,
            next_cursor,
        }
    }

    /// The page with a cursor after `position`, a store's own position
    /// (DynamoDB's `LastEvaluatedKey`), or none at the end.
    pub fn finish_at(self, request: &ScanRequest, position: Option<&str>) -> ScanPage {
        ScanPage {
            items: self.items,
            next_cursor: position.map(|after| request.cursor_after(after).encode()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_resume_only_their_own_scan() {
        let mut request = ScanRequest::first(2, 4, 100);
        request.updated_since = Some("2026-01-01T00:00:00.000000Z".into());
        let text = request.cursor_after("item-7").encode();
        request.cursor = Some(text.clone());
        assert_eq!(request.resume_after().unwrap().as_deref(), Some("item-7"));

        for other in [
            ScanRequest::first(1, 4, 100),
            ScanRequest::first(2, 8, 100),
            ScanRequest::first(2, 4, 100),
        ] {
            assert_eq!(
                ScanCursor::decode_for(&text, &other),
                Err(crate::CursorError::OtherQuery)
            );
        }
        let mut damaged = text.into_bytes();
        damaged[5] ^= 1;
        let damaged = String::from_utf8(damaged).unwrap();
        assert_eq!(
            ScanCursor::decode_for(&damaged, &request),
            Err(crate::CursorError::Malformed)
        );
    }

    #[test]
    fn segment_ranges_cover_every_id_exactly_once() {
        let ids = [
            "",
            "0",
            "00",
            "3f",
            "40",
            "4",
            "7fff",
            "80",
            "a",
            "ff",
            "fz",
            "g",
            "Z",
            "-",
            "~~",
            "é",
            "c0ffee",
            "0123e4567-e89b",
        ];
        for segments in [1, 2, 3, 4, 7, 16, 17, 255, 256] {
            for id in ids {
                let owners: Vec<u32> = (0..segments)
                    .filter(|&k| {
                        let (lower, upper) = segment_id_range(k, segments);
                        lower.is_none_or(|l| id >= l.as_str())
                            && upper.is_none_or(|u| id < u.as_str())
                    })
                    .collect();
                assert_eq!(owners.len(), 1, "{id:?} in {segments} segments: {owners:?}");
            }
        }
        assert_eq!(segment_id_range(0, 1), (None, None));
        assert_eq!(
            segment_id_range(1, 4),
            (Some("40".into()), Some("80".into()))
        );
    }

    #[test]
    fn uuids_spread_evenly_over_segments() {
        let mut counts = [0u32; 4];
        for n in 0u32..4096 {
            let id = format!(
                "{:08x}-0000-4000-8000-000000000000",
                n.wrapping_mul(2_654_435_761)
            );
            let k = (0..4)
                .find(|&k| {
                    let (l, u) = segment_id_range(k, 4);
                    l.is_none_or(|l| id.as_str() >= l.as_str())
                        && u.is_none_or(|u| id.as_str() < u.as_str())
                })
                .unwrap();
            counts[k as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..=1150).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_page_keeps_its_first_item_and_marks_expired_ones() {
        let request = ScanRequest::first(0, 1, 2);
        let mut page = ScanPageBuilder::new(&request);
        let item = |id: &str, expires_at| Item {
            id: id.into(),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            updated_at: "2026-01-01T00:00:00.000000Z".into(),
            version: "1".into(),
            user_id: None,
            status: None,
            expires_at,
            attributes: vec![],
        };
        assert_eq!(page.offer(item("a", Some(10)), 20), Offer::Taken);
        assert_eq!(page.offer(item("b", None), 20), Offer::Taken);
        assert_eq!(page.offer(item("c", None), 20), Offer::Full);
        let page = page.finish(&request, true);
        assert!(page.items[0].expired && !page.items[1].expired);
        let mut next = request.clone();
        next.cursor = page.next_cursor;
        assert_eq!(next.resume_after().unwrap().as_deref(), Some("b"));
    }
}
