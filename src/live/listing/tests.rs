use std::sync::Mutex;

use serde_json::json;

use super::*;

#[test]
fn every_envelope_is_read_and_extra_fields_are_skipped() {
    let page = |body: Value| parse::<Value>("/x", body.to_string().as_bytes()).unwrap();
    let p = page(json!([{"id": 1}, {"id": 2}]));
    assert_eq!((p.items.len(), p.count, p.shape), (2, None, Shape::Array));
    let p = page(json!({"hits": [{"id": 1}], "facets": {"tags": []}, "count": 5}));
    assert_eq!((p.items.len(), p.count), (1, Some(5)));
    assert_eq!(p.shape, Shape::Object { items: "hits", counted: true });
    for key in ["projects", "purposes", "dataSources", "results", "data"] {
        let p = page(json!({key: [{"id": 1}], "other": 3}));
        assert_eq!(
            p.shape,
            Shape::Object { items: ITEM_KEYS.iter().find(|k| **k == key).unwrap(), counted: false }
        );
    }
    // A count as a string, and `hits` preferred over another list.
    let p = page(json!({"count": "7", "data": [{"id": 9}], "hits": [{"id": 1}, {"id": 2}]}));
    assert_eq!((p.items.len(), p.count), (2, Some(7)));
    // Not a listing.
    assert!(parse::<Value>("/x", br#"{"other": 1}"#).is_err());
    assert!(parse::<Value>("/x", br#"{"hits": "nope"}"#).is_err());
    assert!(parse::<Value>("/x", b"not json").is_err());
    assert_eq!(
        Shape::Object { items: "hits", counted: false }.to_string(),
        "{hits} without a count"
    );
}

/// A fake tenant of `n` items with ids 1..=n, answering pages as `mode` says; it records
/// every ask.
struct Fake {
    n: usize,
    cap: Option<usize>,
    count: bool,
    ignore_size: bool,
    ignore_offset: bool,
    extra_count: usize,
    asks: Mutex<Vec<Ask>>,
}

impl Fake {
    fn new(n: usize) -> Fake {
        Fake {
            n,
            cap: None,
            count: true,
            ignore_size: false,
            ignore_offset: false,
            extra_count: 0,
            asks: Mutex::default(),
        }
    }

    async fn page(&self, ask: Ask) -> Result<Page<Value>> {
        self.asks.lock().unwrap().push(ask);
        let all: Vec<Value> = (1..=self.n).map(|i| json!({"id": i})).collect();
        let (mut offset, mut size) = match ask {
            Ask::Page { offset, size } => (offset, size),
            Ask::Everything => (0, usize::MAX),
        };
        if self.ignore_offset {
            offset = 0;
        }
        if self.ignore_size {
            size = usize::MAX;
        }
        if let Some(cap) = self.cap {
            size = size.min(cap);
        }
        let items: Vec<Value> = all.into_iter().skip(offset).take(size).collect();
        let count = self.count.then_some(self.n + self.extra_count);
        Ok(Page { items, count, shape: Shape::Array })
    }

    fn requests(&self) -> usize {
        self.asks.lock().unwrap().len()
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

fn read(fake: &Fake, limits: Limits) -> Result<Vec<Value>> {
    block_on(read_all("/x", limits, |ask| fake.page(ask)))
}

fn limits(page_size: usize) -> Limits {
    Limits { page_size, concurrency: 3, max_pages: 100 }
}

fn ids(items: &[Value]) -> Vec<u64> {
    items.iter().map(|v| v["id"].as_u64().unwrap()).collect()
}

#[test]
fn a_counted_listing_is_read_to_its_count_in_the_servers_page_size() {
    let fake = Fake { cap: Some(4), ..Fake::new(10) };
    assert_eq!(ids(&read(&fake, limits(100)).unwrap()), (1..=10).collect::<Vec<_>>());
    let asks = fake.asks.lock().unwrap().clone();
    let offsets: Vec<usize> = asks
        .iter()
        .filter_map(|a| match a {
            Ask::Page { offset, .. } => Some(*offset),
            Ask::Everything => None,
        })
        .collect();
    assert_eq!(offsets, [0, 4, 8], "pages of the server's size, asked once each");
    // One page holding everything: one request.
    let fake = Fake::new(10);
    assert_eq!(read(&fake, limits(100)).unwrap().len(), 10);
    assert_eq!(fake.requests(), 1);
    // A server ignoring paging with a count: one request.
    let fake = Fake { ignore_size: true, ignore_offset: true, ..Fake::new(10) };
    assert_eq!(read(&fake, limits(3)).unwrap().len(), 10);
    assert_eq!(fake.requests(), 1);
}

#[test]
fn a_counted_listing_that_ends_early_or_repeats_fails_closed() {
    let fake = Fake { cap: Some(4), extra_count: 2, ..Fake::new(10) };
    let e = read(&fake, limits(100)).unwrap_err().to_string();
    assert!(e.contains("announced 12 items but its pages ended after 10"), "{e}");
    let fake = Fake { ignore_offset: true, ..Fake::new(10) };
    let e = read(&fake, limits(4)).unwrap_err().to_string();
    assert!(e.contains("ignores `offset`"), "{e}");
    // Too many pages for the limit: refused before asking them.
    let fake = Fake { cap: Some(1), ..Fake::new(500) };
    let e = read(&fake, limits(100)).unwrap_err().to_string();
    assert!(e.contains("more than the limit of 100"), "{e}");
    assert_eq!(fake.requests(), 1);
}

#[test]
fn an_uncounted_listing_confirms_its_last_page_and_finds_a_cap() {
    // Short first page: one more ask (empty) confirms it is the end.
    let fake = Fake { count: false, ..Fake::new(7) };
    assert_eq!(read(&fake, limits(10)).unwrap().len(), 7);
    assert_eq!(fake.requests(), 2);
    // A cap below `size` without a count: found by the same ask, and read to the end.
    let fake = Fake { count: false, cap: Some(3), ..Fake::new(8) };
    assert_eq!(ids(&read(&fake, limits(10)).unwrap()), (1..=8).collect::<Vec<_>>());
    assert_eq!(fake.requests(), 4, "3 + 3 + 2, then an empty page");
}

#[test]
fn full_pages_without_a_count_are_asked_for_in_rounds() {
    // Pages of 10 out of 35, three at a time: 10, then 10 + 10 + 5, then the empty page
    // that confirms the short one.
    let fake = Fake { count: false, ..Fake::new(35) };
    let limits = Limits { page_size: 10, concurrency: 3, max_pages: 100 };
    assert_eq!(ids(&read(&fake, limits).unwrap()), (1..=35).collect::<Vec<_>>());
    assert_eq!(fake.requests(), 5);
    // An exact multiple: the round's empty page ends it.
    let fake = Fake { count: false, ..Fake::new(20) };
    assert_eq!(read(&fake, limits).unwrap().len(), 20);
    assert!(fake.requests() <= 4, "10, then 10 and an empty page ({})", fake.requests());
}

#[test]
fn an_uncounted_listing_that_ignores_paging_is_read_once() {
    // More than asked: everything, at once.
    let fake = Fake { count: false, ignore_size: true, ignore_offset: true, ..Fake::new(260) };
    assert_eq!(read(&fake, limits(200)).unwrap().len(), 260);
    assert_eq!(fake.requests(), 1);
    // Fewer than asked, repeated at the next offset: that was everything.
    let fake = Fake { count: false, ignore_size: true, ignore_offset: true, ..Fake::new(150) };
    assert_eq!(read(&fake, limits(200)).unwrap().len(), 150);
    assert_eq!(fake.requests(), 2);
    // Exactly a page, repeated: one read without paging settles it.
    let fake = Fake { count: false, ignore_offset: true, ..Fake::new(450) };
    assert_eq!(read(&fake, limits(200)).unwrap().len(), 450);
    assert_eq!(fake.asks.lock().unwrap().last(), Some(&Ask::Everything));
}

#[test]
fn a_listing_that_never_ends_stops_at_the_page_limit() {
    // A server answering new items forever.
    let asked = Mutex::new(0usize);
    let endless = |ask: Ask| {
        let asked = &asked;
        async move {
            *asked.lock().unwrap() += 1;
            let Ask::Page { offset, size } = ask else {
                return Ok(Page { items: vec![], count: None, shape: Shape::Array });
            };
            let items = (offset..offset + size).map(|i| json!({"id": i})).collect();
            Ok(Page { items, count: None, shape: Shape::Array })
        }
    };
    let limits = Limits { page_size: 10, concurrency: 2, max_pages: 25 };
    let e = block_on(read_all::<Value, _, _>("/x", limits, endless)).unwrap_err();
    assert!(e.to_string().contains("did not end within 25 requests (250 items read"), "{e}");
    assert_eq!(*asked.lock().unwrap(), 25);
}
