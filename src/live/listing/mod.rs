//! V1 listings, read tolerantly and never forever.
//!
//! **Envelopes.** Immuta's listings come in several shapes, and the public clients each meet a
//! different one: `{hits, facets, count}` (Immuta's Swagger for `/project` and `/dataSource`;
//! Terraform's `FindProjectsResponse`), `{hits, count}` (the 2.x docs; tap-immuta),
//! `{projects, count}` (Terraform's `Projects`, declared but never called), `{purposes, count}`
//! (Swagger `Model57`; tap-immuta), `{hits}` without a count, `{dataSources}`, `{results}`,
//! `{data}` (immuta-mcp's pager, "seen in self-managed 2026.x"), and bare arrays
//! (`/policy/global` everywhere). [`Page`] reads all of them, straight from the bytes: items are
//! decoded into the caller's type (fields it does not name are skipped, never built), so a page
//! of a thousand data sources costs a thousand small rows, not a thousand JSON trees.
//!
//! **Paging.** No public client pages `/policy/global`, yet Immuta's Swagger declares `size` and
//! `offset` on it; servers cap page sizes; some answer a count, some do not. [`read_all`] asks
//! for pages of `size` and decides from what comes back:
//!
//! - A counted listing is read to its count. The first page says how many items a page holds
//!   (a server may cap `size`), and the other pages are then fetched concurrently (at most
//!   `concurrency` at a time). A page that repeats the first means the server ignores `offset`:
//!   the listing cannot be read whole, and the read fails rather than use part of it; so does a
//!   listing whose pages end before its count.
//! - A listing without a count is read until an empty page: while pages come full, the next
//!   ones are asked for in rounds of `concurrency`; after a shorter page, one at a time. A page
//!   larger than asked means the server ignores `size` and sent everything. A page that repeats the previous
//!   one means the server ignores `offset`: what came is the listing (after one request without
//!   paging when the repeated page was full, in case the server honours `size` but not `offset`).
//!   A short page is *not* taken for the last without asking once more, since a server that caps
//!   its pages and sends no count looks exactly like that (tap-immuta, immuta-mcp and
//!   fh-immuta-utils all stop there and truncate silently).
//! - Whatever happens, a listing takes at most `max_pages` requests: past that the read fails
//!   with a clear error, never an endless loop.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Error, Result};

/// Keys under which an object envelope holds its items, in order of preference.
pub const ITEM_KEYS: &[&str] =
    &["hits", "projects", "purposes", "dataSources", "results", "data", "items", "licenses"];

/// Keys under which an object envelope holds the total count.
pub const COUNT_KEYS: &[&str] = &["count", "total", "totalCount"];

/// How a page was wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A bare array.
    Array,
    /// An object holding the items under `items`, with a count or not.
    Object {
        /// The key of the items (one of [`ITEM_KEYS`]).
        items: &'static str,
        /// Whether it carries a count.
        counted: bool,
    },
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Array => f.write_str("a bare array"),
            Shape::Object { items, counted: true } => write!(f, "{{{items}, count}}"),
            Shape::Object { items, counted: false } => write!(f, "{{{items}}} without a count"),
        }
    }
}

/// One page of a listing, as the tenant answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The total the envelope announced, if any.
    pub count: Option<usize>,
    /// The envelope.
    pub shape: Shape,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Page<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(PageVisitor(PhantomData))
    }
}

struct PageVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for PageVisitor<T> {
    type Value = Page<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list, or an object with the items under one of {}", ITEM_KEYS.join(", "))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Page<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Page { items, count: None, shape: Shape::Array })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Page<T>, A::Error> {
        let mut found: Vec<(usize, Vec<T>)> = Vec::new();
        let mut count = None;
        while let Some(key) = map.next_key::<String>()? {
            if let Some(rank) = ITEM_KEYS.iter().position(|k| *k == key) {
                if let Some(items) = map.next_value::<Items<T>>()?.0 {
                    found.push((rank, items));
                }
            } else if COUNT_KEYS.contains(&key.as_str()) {
                count = count.or(as_count(&map.next_value::<Value>()?));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let Some((rank, items)) = found.into_iter().min_by_key(|(rank, _)| *rank) else {
            return Err(de::Error::custom(format!(
                "expected a list, or an object with the items under one of {}",
                ITEM_KEYS.join(", ")
            )));
        };
        Ok(Page {
            items,
            count,
            shape: Shape::Object { items: ITEM_KEYS[rank], counted: count.is_some() },
        })
    }
}

/// A count: a number, or a number in a string.
fn as_count(v: &Value) -> Option<usize> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|c| usize::try_from(c).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The value under an item key: a list of items, or anything else (then not the items).
struct Items<T>(Option<Vec<T>>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Items<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Items<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of items")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<Items<T>, A::Error> {
                PageVisitor(PhantomData).visit_seq(seq).map(|p| Items(Some(p.items)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Items<T>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Items(None))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Items<T>, E> {
                Ok(Items(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Items<T>, E> {
                Ok(Items(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Items<T>, E> {
                Ok(Items(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Items<T>, E> {
                Ok(Items(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Items<T>, E> {
                Ok(Items(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Items<T>, E> {
                Ok(Items(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Parses a page from the bytes of an answer.
pub fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<Page<T>> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        path: path.to_owned(),
        message: format!("the listing is not readable: {e}"),
    })
}

/// What tells two listed items apart, for noticing a page that repeats another.
pub trait Listed {
    /// The item's id, or else its name; `None` when it has neither.
    fn identity(&self) -> Option<String>;
}

impl Listed for Value {
    fn identity(&self) -> Option<String> {
        ["id", "name", "policyKey", "projectKey"]
            .iter()
            .find_map(|k| match self.get(*k)? {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            })
            .or_else(|| Some(self.to_string()))
    }
}

/// A page's signature: its length and the identities of its first and last items. Two pages
/// with one signature are the same page (a server that ignores `offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature(usize, Option<String>, Option<String>);

impl Signature {
    fn of<T: Listed>(items: &[T]) -> Signature {
        Signature(
            items.len(),
            items.first().and_then(Listed::identity),
            items.last().and_then(Listed::identity),
        )
    }

    /// Whether `other` is the same page (never for pages whose items have no identity).
    fn repeats(&self, other: &Signature) -> bool {
        self == other && self.0 > 0 && (self.1.is_some() || self.2.is_some())
    }
}

/// How a listing is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items asked for per page (`size`).
    pub page_size: usize,
    /// Pages in flight at once, once a count says how many there are.
    pub concurrency: usize,
    /// Requests one listing may take before the read fails.
    pub max_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { page_size: 2000, concurrency: 8, max_pages: 10_000 }
    }
}

/// Which page to ask for: `size`/`offset`, or no paging at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// `size=..&offset=..`.
    Page {
        /// `offset`.
        offset: usize,
        /// `size`.
        size: usize,
    },
    /// No paging parameter (as every public client reads `/policy/global`).
    Everything,
}

/// Every item of a listing at `path`, asking pages of `fetch` (see the module docs).
pub async fn read_all<T, F, Fut>(path: &str, limits: Limits, fetch: F) -> Result<Vec<T>>
where
    T: Listed,
    F: Fn(Ask) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    read_mapped(path, limits, fetch, Ok).await
}

/// As [`read_all`], each item turned by `map` as its page arrives: a large listing is never
/// held whole in its wire form.
pub async fn read_mapped<T, U, F, Fut, M>(
    path: &str,
    limits: Limits,
    fetch: F,
    map: M,
) -> Result<Vec<U>>
where
    T: Listed,
    F: Fn(Ask) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
    M: Fn(T) -> Result<U>,
{
    let size = limits.page_size.max(1);
    let first = fetch(Ask::Page { offset: 0, size }).await?;
    let mut out = Kept { items: Vec::new(), map };
    match first.count {
        Some(count) => counted(path, limits, first.items, count, &fetch, &mut out).await?,
        None => uncounted(path, limits, first.items, &fetch, &mut out).await?,
    }
    Ok(out.items)
}

/// The items read so far, turned by `map`.
struct Kept<U, M> {
    items: Vec<U>,
    map: M,
}

impl<U, M> Kept<U, M> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn extend<T>(&mut self, page: Vec<T>) -> Result<()>
    where
        M: Fn(T) -> Result<U>,
    {
        self.items.reserve(page.len());
        for item in page {
            self.items.push((self.map)(item)?);
        }
        Ok(())
    }

    /// Replaces everything read with `page` (a read without paging).
    fn replace<T>(&mut self, page: Vec<T>) -> Result<()>
    where
        M: Fn(T) -> Result<U>,
    {
        self.items.clear();
        self.extend(page)
    }
}

fn short(path: &str, count: usize, read: usize) -> Error {
    Error::Decode {
        path: path.to_owned(),
        message: format!(
            "the listing announced {count} items but its pages ended after {read} (an empty page at \
             offset {read}); a partial listing is never used"
        ),
    }
}

fn ignores_offset(path: &str, count: usize, page: usize) -> Error {
    Error::Decode {
        path: path.to_owned(),
        message: format!(
            "the tenant ignores `offset`: every page repeats the first {page} of the {count} items it \
             announces, so the listing cannot be read whole; a partial listing is never used"
        ),
    }
}

fn too_many(path: &str, limits: Limits, read: usize) -> Error {
    Error::Decode {
        path: path.to_owned(),
        message: format!(
            "the listing did not end within {} requests ({read} items read, pages of at most {}); it was \
             stopped rather than read forever (is the tenant answering the same items at every offset?)",
            limits.max_pages, limits.page_size
        ),
    }
}

async fn counted<T, U, F, Fut, M>(
    path: &str,
    limits: Limits,
    first_page: Vec<T>,
    count: usize,
    fetch: &F,
    items: &mut Kept<U, M>,
) -> Result<()>
where
    T: Listed,
    F: Fn(Ask) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
    M: Fn(T) -> Result<U>,
{
    let size = limits.page_size.max(1);
    let step = first_page.len();
    let first = Signature::of(&first_page);
    // The announced count, within reason (a server may announce anything).
    items.items.reserve(count.min(1 << 16));
    items.extend(first_page)?;
    if step >= count {
        return Ok(());
    }
    if step == 0 {
        return Err(short(path, count, 0));
    }
    // The server's page holds `step` items (it may cap `size`): every other page is known now.
    let offsets: Vec<usize> = (step..count).step_by(step).collect();
    if offsets.len() + 1 > limits.max_pages {
        return Err(Error::Decode {
            path: path.to_owned(),
            message: format!(
                "the listing announces {count} items in pages of {step}: {} requests, more than the limit \
                 of {}; a partial listing is never used",
                offsets.len() + 1,
                limits.max_pages
            ),
        });
    }
    // The futures are made up front, not by a closure inside the stream: a stream holding a
    // closure over borrowed offsets makes the caller's future not `Send`.
    let asks: Vec<Fut> = offsets.iter().map(|&offset| fetch(Ask::Page { offset, size })).collect();
    let mut pages = stream::iter(asks).buffered(limits.concurrency.max(1));
    let mut requests = 1;
    for &offset in &offsets {
        let Some(page) = pages.try_next().await? else { break };
        requests += 1;
        if items.len() != offset {
            // An earlier page was shorter or longer than the first: go on one page at a time.
            break;
        }
        if page.items.is_empty() {
            return Err(short(path, count, items.len()));
        }
        if Signature::of(&page.items).repeats(&first) {
            return Err(ignores_offset(path, count, step));
        }
        items.extend(page.items)?;
    }
    drop(pages);
    while items.len() < count {
        if requests >= limits.max_pages {
            return Err(too_many(path, limits, items.len()));
        }
        let page = fetch(Ask::Page { offset: items.len(), size }).await?;
        requests += 1;
        if page.items.is_empty() {
            return Err(short(path, count, items.len()));
        }
        if Signature::of(&page.items).repeats(&first) {
            return Err(ignores_offset(path, count, step));
        }
        items.extend(page.items)?;
    }
    Ok(())
}

async fn uncounted<T, U, F, Fut, M>(
    path: &str,
    limits: Limits,
    first_page: Vec<T>,
    fetch: &F,
    items: &mut Kept<U, M>,
) -> Result<()>
where
    T: Listed,
    F: Fn(Ask) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
    M: Fn(T) -> Result<U>,
{
    let size = limits.page_size.max(1);
    let first_len = first_page.len();
    let first = Signature::of(&first_page);
    items.extend(first_page)?;
    if first_len > size || first_len == 0 {
        // More than asked: the server ignores `size` and sent everything. None: nothing there.
        return Ok(());
    }
    let mut previous = first.clone();
    let mut requests = 1;
    // While pages come full, the next ones are asked for in rounds of `concurrency` (the empty
    // pages past the end are the price of not waiting for each page in turn).
    let rounds = limits.concurrency.max(1);
    let mut full = first_len == size;
    while full && rounds > 1 {
        let budget = limits.max_pages.saturating_sub(requests).min(rounds);
        if budget == 0 {
            return Err(too_many(path, limits, items.len()));
        }
        let start = items.len();
        let asks: Vec<Fut> =
            (0..budget).map(|k| fetch(Ask::Page { offset: start + k * size, size })).collect();
        let mut pages = stream::iter(asks).buffered(rounds);
        full = false;
        while let Some(page) = pages.try_next().await? {
            requests += 1;
            if page.items.is_empty() {
                return Ok(());
            }
            let signature = Signature::of(&page.items);
            if signature.repeats(&previous) || signature.repeats(&first) {
                // The server ignores `offset` (the first page was full: one read without
                // paging settles what the listing holds).
                drop(pages);
                let all = fetch(Ask::Everything).await?;
                if all.items.len() > items.len() {
                    items.replace(all.items)?;
                }
                return Ok(());
            }
            let len = page.items.len();
            previous = signature;
            items.extend(page.items)?;
            full = len == size;
            if !full {
                // Shorter than asked: from here one page at a time (a short page is confirmed).
                break;
            }
        }
    }
    loop {
        if requests >= limits.max_pages {
            return Err(too_many(path, limits, items.len()));
        }
        let page = fetch(Ask::Page { offset: items.len(), size }).await?;
        requests += 1;
        if page.items.is_empty() {
            return Ok(());
        }
        let signature = Signature::of(&page.items);
        if signature.repeats(&previous) || signature.repeats(&first) {
            // The server ignores `offset`. A page shorter than asked was all it had; a full one
            // may be all or a page: one read without paging tells.
            if first_len < size {
                return Ok(());
            }
            let all = fetch(Ask::Everything).await?;
            if all.items.len() > items.len() {
                items.replace(all.items)?;
            }
            return Ok(());
        }
        previous = signature;
        items.extend(page.items)?;
    }
}

#[cfg(test)]
mod tests;
