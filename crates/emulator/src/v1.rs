//! The V1 collections' shared handlers: one listing, one read and one delete, parameterised by
//! the collection ([`Kind`]) and, for listings, by the documented [`Envelope`]. Each kind's module
//! keeps its views, says what its answers look like, and passes the closures that find, page or
//! remove its objects; what every collection does alike (auth, the numeric id, paging, 404s, the
//! envelope) is written here once.

use serde_json::{Map, Value};

use super::Permission;
use super::http::{ApiError, ApiResult, Call, Listing, ok, path_id};
use super::store::Store;
use super::variants::{self, Paging};

/// A V1 collection, as its handlers' permission checks and messages name it.
pub(crate) struct Kind {
    /// The noun in messages: `no policy with id 7`, `policy id must be a positive integer`.
    pub(crate) noun: &'static str,
    /// The collection's path (an item is at `{path}/{id}`); names the call in 403 messages.
    pub(crate) path: &'static str,
    /// What deleting an item needs (reading needs any valid key).
    pub(crate) delete: Permission,
}

impl Kind {
    /// The 404 for item `id`.
    pub(crate) fn not_found(&self, id: u64) -> ApiError {
        ApiError::not_found(format!("no {} with id {id}", self.noun))
    }

    /// Parses an item's path id.
    pub(crate) fn id(&self, raw: &str) -> ApiResult<u64> {
        path_id(raw, self.noun)
    }
}

/// How a listing wraps its page of items: each V1 listing documents one of these.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Envelope {
    /// A bare array of the page's items.
    Array,
    /// `{<field>: [the page's items], "count": <how many before paging>}`.
    Counted(&'static str),
    /// `{<field>: [...], "facets": {...}, "count": ...}` (Swagger's `Model11`, `Model30`).
    Faceted(&'static str),
    /// `{<field>: [...]}`, no count.
    Uncounted(&'static str),
}

impl Envelope {
    /// Wraps a page of `items` out of `count`.
    pub(crate) fn wrap(self, items: Vec<Value>, count: usize) -> Value {
        let object = |field: &str, count: Option<usize>, facets: bool, items: Vec<Value>| {
            let mut object = Map::new();
            object.insert(field.to_owned(), Value::Array(items));
            if facets {
                object.insert("facets".to_owned(), Value::Object(Map::new()));
            }
            if let Some(count) = count {
                object.insert("count".to_owned(), count.into());
            }
            Value::Object(object)
        };
        match self {
            Envelope::Array => Value::Array(items),
            Envelope::Counted(field) => object(field, Some(count), false, items),
            Envelope::Faceted(field) => object(field, Some(count), true, items),
            Envelope::Uncounted(field) => object(field, None, false, items),
        }
    }

    /// The envelope of the listing at `path`, documented as `self`, under the `envelope`
    /// variant.
    pub(crate) fn under(self, path: &str, variant: variants::Envelope) -> Envelope {
        use variants::Envelope as V;
        let counted_listing = matches!(path, "/project" | "/dataSource");
        match variant {
            V::Documented => self,
            V::HitsCount if counted_listing => Envelope::Counted("hits"),
            V::Hits => Envelope::Uncounted("hits"),
            V::Projects if path == "/project" => Envelope::Counted("projects"),
            V::DataSources if path == "/dataSource" => Envelope::Uncounted("dataSources"),
            V::Results => Envelope::Uncounted("results"),
            V::Data => Envelope::Uncounted("data"),
            V::Array => Envelope::Array,
            V::HitsCount | V::Projects | V::DataSources => self,
        }
    }
}

/// `GET {path}`: one page (`offset`, `size` defaulting to `default_size`, `searchText`) in
/// `envelope`, as the `envelope` and `paging` variants have it; `page` answers the page's views
/// and the total count.
pub(crate) fn list(
    call: &Call,
    kind: &Kind,
    envelope: Envelope,
    default_size: usize,
    page: impl FnOnce(&Store, &Listing) -> (Vec<Value>, usize),
) -> ApiResult {
    call.authorize(None, &format!("GET {}", kind.path))?;
    let variants = call.state.variants();
    let mut listing = call.listing("size", default_size)?;
    match variants.paging {
        Paging::Honoured => {}
        Paging::IgnoredByPolicies if kind.path != "/policy/global" => {}
        Paging::IgnoredByPolicies | Paging::Ignored => listing.unpaged(),
        Paging::Capped => listing.cap(variants::PAGE_CAP),
    }
    let (items, count) = call.state.read(|store| page(store, &listing));
    ok(envelope.under(kind.path, variants.envelope).wrap(items, count))
}

/// `GET {path}/{id}`: what `find` answers for the item, or 404.
pub(crate) fn get(
    call: &Call,
    kind: &Kind,
    raw_id: &str,
    find: impl FnOnce(&Store, u64) -> Option<Value>,
) -> ApiResult {
    read(call, kind, &format!("GET {}/{{id}}", kind.path), raw_id, find)
}

/// A read of one item under `action` (`GET {path}/{id}` or a sub-resource of it): what `find`
/// answers for the item, or 404.
pub(crate) fn read(
    call: &Call,
    kind: &Kind,
    action: &str,
    raw_id: &str,
    find: impl FnOnce(&Store, u64) -> Option<Value>,
) -> ApiResult {
    call.authorize(None, action)?;
    let id = kind.id(raw_id)?;
    call.state.read(|store| find(store, id)).ok_or_else(|| kind.not_found(id)).and_then(ok)
}

/// `DELETE {path}/{id}`: `remove` deletes the item and answers what the call returns, `None`
/// when there is no such item (404), or refuses (its error is the answer and nothing is saved).
pub(crate) async fn delete(
    call: &Call,
    kind: &Kind,
    raw_id: &str,
    remove: impl FnOnce(&mut Store, u64) -> ApiResult<Option<Value>>,
) -> ApiResult {
    call.authorize(Some(kind.delete), &format!("DELETE {}/{{id}}", kind.path))?;
    let id = kind.id(raw_id)?;
    let removed = call
        .state
        .mutate(true, |store| remove(store, id)?.ok_or_else(|| kind.not_found(id)))
        .await?;
    ok(removed)
}
