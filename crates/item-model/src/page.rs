//! One query page, built by the same rule on every backend: at most
//! `limit` items and at most [`PAGE_BYTE_BUDGET`] of item data, ending at a
//! position that the next page resumes strictly after.
//!
//! A page is one HTTP response and passes whole through the memory of the
//! store, the adapter component and the api guest, so counting items is not
//! enough: 100 items of 1 MiB are 100 MiB, several times over once turned
//! into JSON. So a backend offers each item it reads, in order, to a
//! [`PageBuilder`], which keeps it or says that the page is complete, and
//! asks the builder how many items its next read should fetch
//! ([`PageBuilder::wanted`]), so that it never reads far past the budget.

use crate::{Cursor, Item, Page, Query, Value};

/// Most item data one page holds, by [`estimated_size`]: 4 MiB. A page ends
/// early, with a next cursor, before the item that would take it past this;
/// it always keeps its first item, so paging progresses even when one item
/// alone is larger (an item is at most the api's body limit, 1 MiB by
/// default, and at most what its backend stores).
pub const PAGE_BYTE_BUDGET: usize = 4 * 1024 * 1024;

/// JSON punctuation around one object member: two quotes around the name,
/// the colon and the comma.
const MEMBER_OVERHEAD: usize = 4;

/// The names and punctuation of an item's own members (`"id":"",
/// "createdAt":"", ... "expiresAt":"..."`), rounded up.
const ITEM_OVERHEAD: usize = 128;

/// A cheap estimate of the size of an item's JSON in the HTTP API: the
/// length of its texts and literals plus the punctuation around them,
/// without serializing anything (JSON escapes are not counted). Linear in
/// the number of attributes, so a backend can measure every item it reads.
pub fn estimated_size(item: &Item) -> usize {
    let optional = |text: &Option<String>| text.as_ref().map_or(0, |t| t.len());
    let attributes: usize = item
        .attributes
        .iter()
        .map(|a| MEMBER_OVERHEAD + a.name.len() + value_size(&a.value))
        .sum();
    ITEM_OVERHEAD
        + item.id.len()
        + item.created_at.len()
        + item.updated_at.len()
        + item.version.len()
        + optional(&item.user_id)
        + optional(&item.status)
        + attributes
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(literal) => literal.len(),
        Value::Text(text) => text.len() + 2,
        Value::Json(text) => text.len(),
    }
}

/// What [`PageBuilder::offer`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Offer {
    /// The item is on the page; offer the next one.
    Taken,
    /// The item is not on the page, which is complete: it holds `limit`
    /// items, or this item would take it past the byte budget. The item
    /// proves that another page follows; finish with
    /// [`PageBuilder::page_with_more`].
    Full,
}

/// Collects one page of a query (see the module docs).
#[derive(Debug, Clone)]
pub struct PageBuilder {
    query: Query,
    budget: usize,
    items: Vec<Item>,
    bytes: usize,
    /// The largest item offered so far, by [`estimated_size`].
    largest: usize,
}

impl PageBuilder {
    /// A page of `query` within [`PAGE_BYTE_BUDGET`].
    pub fn new(query: Query) -> Self {
        Self::with_budget(query, PAGE_BYTE_BUDGET)
    }

    /// A page of `query` within `budget` bytes (for tests of the rule).
    pub fn with_budget(query: Query, budget: usize) -> Self {
        Self {
            query,
            budget,
            items: Vec::new(),
            bytes: 0,
            largest: 0,
        }
    }

    /// The query this page answers.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// How many items the page holds so far.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item has been taken yet.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn limit(&self) -> usize {
        usize::try_from(self.query.limit).unwrap_or(usize::MAX)
    }

    /// Offers the next item in the query's order. The first item is always
    /// taken; a later one only while the page has fewer than `limit` items
    /// and the item fits in what is left of the byte budget.
    pub fn offer(&mut self, item: Item) -> Offer {
        let size = estimated_size(&item);
        self.largest = self.largest.max(size);
        let over_budget = self.bytes.saturating_add(size) > self.budget;
        if self.items.len() >= self.limit() || (!self.items.is_empty() && over_budget) {
            return Offer::Full;
        }
        self.bytes = self.bytes.saturating_add(size);
        self.items.push(item);
        Offer::Taken
    }

    /// How many items the next read should fetch: the rest of the page and
    /// one more (which tells whether another page follows), but, once items
    /// have been seen, no more than the rest of the byte budget holds at the
    /// size of the largest of them (plus that one more). At least 1. A
    /// backend caps it further by what one of its reads may carry.
    pub fn wanted(&self) -> usize {
        let by_count = self.limit().saturating_sub(self.items.len()) + 1;
        let by_bytes = match self.largest {
            0 => usize::MAX,
            largest => self.budget.saturating_sub(self.bytes) / largest + 1,
        };
        by_count.min(by_bytes).max(1)
    }

    /// The page when the query's results have ended: no next cursor. Takes
    /// the items (as the other endings do), leaving the builder empty.
    pub fn last_page(&mut self) -> Page {
        Page {
            items: self.take_items(),
            next_cursor: None,
        }
    }

    /// The page when more items follow (after [`Offer::Full`]): the next
    /// page resumes after the last item of this one.
    pub fn page_with_more(&mut self) -> Page {
        let next_cursor = self
            .items
            .last()
            .map(|last| Cursor::after(&self.query, &last.created_at, &last.id).encode());
        Page {
            items: self.take_items(),
            next_cursor,
        }
    }

    /// The page when the backend stops reading early at the position
    /// (`created_at`, `id`) of the last entry it examined, at or after the
    /// page's last item (entries past that item were expired, so not
    /// offered): the next page resumes after that position.
    pub fn page_resuming_after(&mut self, created_at: &str, id: &str) -> Page {
        Page {
            next_cursor: Some(Cursor::after(&self.query, created_at, id).encode()),
            items: self.take_items(),
        }
    }

    fn take_items(&mut self) -> Vec<Item> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attribute, IndexKey, NewItem, Order};

    fn query(limit: u32) -> Query {
        Query {
            key: IndexKey::UserId("u".into()),
            order: Order::Asc,
            limit,
            cursor: None,
        }
    }

    fn item(id: &str, text_bytes: usize) -> Item {
        NewItem {
            id: id.into(),
            user_id: Some("u".into()),
            attributes: vec![Attribute::new("blob", Value::Text("x".repeat(text_bytes)))],
            ..Default::default()
        }
        .into_item(
            format!("2026-01-01T00:00:00.0000{id}Z"),
            "2026-01-01T00:00:00.000000Z".into(),
            "1".into(),
        )
    }

    fn decoded_next(page: &Page, query: &Query) -> Option<String> {
        page.next_cursor
            .as_deref()
            .map(|text| Cursor::decode_for(text, query).unwrap().id)
    }

    #[test]
    fn the_estimate_is_close_to_the_json() {
        let mut item = item("10", 1000);
        item.status = Some("active".into());
        item.expires_at = Some(2_000_000_000);
        item.attributes.extend([
            Attribute::new("likes", Value::Number("12".into())),
            Attribute::new("tags", Value::Json(r#"["a",{"b":null}]"#.into())),
            Attribute::new("done", Value::Bool(false)),
            Attribute::new("gone", Value::Null),
        ]);
        let json = crate::json::item_to_json(&item).to_string().len();
        let estimate = estimated_size(&item);
        assert!(
            estimate >= json && estimate <= json + ITEM_OVERHEAD,
            "estimate {estimate}, JSON {json}"
        );
    }

    #[test]
    fn a_page_ends_at_its_limit_and_the_item_after_it_proves_more() {
        let query = query(2);
        let mut page = PageBuilder::new(query.clone());
        assert_eq!(page.wanted(), 3);
        assert_eq!(page.offer(item("10", 10)), Offer::Taken);
        assert_eq!(page.offer(item("11", 10)), Offer::Taken);
        assert_eq!(page.wanted(), 1);
        assert_eq!(page.offer(item("12", 10)), Offer::Full);
        let page = page.page_with_more();
        assert_eq!(page.items.len(), 2);
        assert_eq!(decoded_next(&page, &query).as_deref(), Some("11"));
    }

    #[test]
    fn a_page_ends_before_the_item_that_would_pass_the_budget() {
        let query = query(100);
        let one = estimated_size(&item("10", 1000));
        let mut page = PageBuilder::with_budget(query.clone(), 3 * one + one / 2);
        for id in ["10", "11", "12"] {
            assert_eq!(page.offer(item(id, 1000)), Offer::Taken);
        }
        // Half an item's worth is left: one more read decides.
        assert_eq!(page.wanted(), 1);
        assert_eq!(page.offer(item("13", 1000)), Offer::Full);
        let page = page.page_with_more();
        assert_eq!(page.items.len(), 3, "fewer than the limit");
        assert_eq!(decoded_next(&page, &query).as_deref(), Some("12"));
    }

    #[test]
    fn the_first_item_is_kept_whatever_its_size() {
        let mut page = PageBuilder::with_budget(query(10), 100);
        assert_eq!(page.offer(item("10", 5000)), Offer::Taken);
        assert_eq!(page.offer(item("11", 1)), Offer::Full);
        assert_eq!(page.page_with_more().items.len(), 1);
    }

    #[test]
    fn reads_are_sized_by_the_largest_item_seen() {
        let one = estimated_size(&item("10", 1000));
        let mut page = PageBuilder::with_budget(query(100), 10 * one);
        assert_eq!(page.wanted(), 101, "nothing seen: the count decides");
        assert_eq!(page.offer(item("10", 1000)), Offer::Taken);
        assert_eq!(page.wanted(), 10, "9 more fit, and one to look ahead");
        assert_eq!(page.offer(item("11", 10)), Offer::Taken);
        assert!(page.wanted() <= 10, "the largest decides, not the last");
    }

    #[test]
    fn endings_carry_the_right_cursor() {
        let query = query(5);
        let mut page = PageBuilder::new(query.clone());
        assert_eq!(page.offer(item("10", 1)), Offer::Taken);
        assert_eq!(page.clone().last_page().next_cursor, None);
        let resumed = page.page_resuming_after("2026-01-01T00:00:00.000020Z", "20");
        assert_eq!(decoded_next(&resumed, &query).as_deref(), Some("20"));
        assert_eq!(resumed.items.len(), 1);
        // With nothing on it, a page has nothing to resume after.
        assert_eq!(PageBuilder::new(query).page_with_more().next_cursor, None);
    }

    #[test]
    fn the_budget_fits_a_few_items_at_the_body_limit() {
        let at_body_limit = estimated_size(&item("10", 1024 * 1024 - 200));
        assert_eq!(PAGE_BYTE_BUDGET / at_body_limit, 4);
    }
}
