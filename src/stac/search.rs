//! A STAC API `/search` client: POST with collections, bbox, datetime, `query`, limit; follows
//! `next` links (GET or POST, merged bodies) until the results end.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveTime};
use serde_json::{json, Map, Value};

use super::{Item, ItemCollection, StacError};
use crate::io::{redact, ObjectStore};

/// The most pages followed before paging is called endless.
const MAX_PAGES: usize = 10_000;

/// What to search for (pystac-client's `search` arguments).
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    /// collection ids
    pub collections: Vec<String>,
    /// west, south, east, north in degrees
    pub bbox: Option<[f64; 4]>,
    /// an instant or interval: `2020-01-31/2021-01-31`, `2020`, `2020-06`, open ends `..`
    /// (dates are expanded to full RFC 3339 times, as pystac-client does; servers reject dates)
    pub datetime: Option<String>,
    /// the query extension, e.g. `{"eo:cloud_cover": {"lt": 20}}`; also applied to the
    /// results here, since some servers ignore it
    pub query: Option<Value>,
    /// items per page
    pub limit: Option<u32>,
    /// stop after this many items
    pub max_items: Option<usize>,
}

/// A finished search.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// the items, in server order
    pub items: ItemCollection,
    /// pages fetched
    pub pages: usize,
    /// items the server returned that the query excluded (the server ignored `query`)
    pub removed_client_side: usize,
}

/// Searches a STAC API at `api` (its root URL, or its `/search` URL) and follows every page.
/// One request per page.
///
/// **Errors**: the store's errors (HTTP status after retries); [`StacError::Json`] for a page
/// that is not a FeatureCollection; [`StacError::Paging`] when `next` links loop (or pass
/// 10 000 pages) and for a `datetime` that cannot be expanded.
pub fn search(store: &ObjectStore, api: &str, params: &SearchParams) -> Result<SearchResult, StacError> {
    let url = if api.trim_end_matches('/').ends_with("/search") {
        api.trim_end_matches('/').to_string()
    } else {
        format!("{}/search", api.trim_end_matches('/'))
    };
    let mut body = Map::new();
    if !params.collections.is_empty() {
        body.insert("collections".into(), json!(params.collections));
    }
    if let Some(b) = params.bbox {
        body.insert("bbox".into(), json!(b));
    }
    if let Some(d) = &params.datetime {
        body.insert(
            "datetime".into(),
            json!(expand_datetime(d).map_err(|m| StacError::Paging {
                url: redact(&url),
                message: m,
            })?),
        );
    }
    if let Some(q) = &params.query {
        body.insert("query".into(), q.clone());
    }
    if let Some(l) = params.limit {
        body.insert("limit".into(), json!(l));
    }

    let mut items: Vec<Item> = Vec::new();
    let mut removed = 0;
    let mut pages = 0;
    let mut seen = HashSet::new();
    // (method, href, body) of the next page
    let mut next = Some(("POST".to_string(), url.clone(), Value::Object(body)));
    while let Some((method, href, body)) = next.take() {
        if !seen.insert(format!("{method} {href} {body}")) || pages >= MAX_PAGES {
            return Err(StacError::Paging {
                url: redact(&url),
                message: format!("page {} repeats an earlier request", pages + 1),
            });
        }
        let bytes = if method.eq_ignore_ascii_case("POST") {
            store.block_on(store.post_json(&href, &body))?
        } else {
            store.block_on(store.get_all(&href))?
        };
        pages += 1;
        let page: Value = serde_json::from_slice(&bytes).map_err(|e| StacError::Json {
            url: redact(&href),
            what: "search page",
            message: e.to_string(),
        })?;
        let collection: ItemCollection = serde_json::from_value(page.clone()).map_err(|e| StacError::Json {
            url: redact(&href),
            what: "search page",
            message: e.to_string(),
        })?;
        if collection.items.is_empty() {
            break;
        }
        for item in collection.items {
            if params.query.as_ref().is_none_or(|q| matches_query(&item, q)) {
                items.push(item);
            } else {
                removed += 1;
            }
        }
        if params.max_items.is_some_and(|m| items.len() >= m) {
            items.truncate(params.max_items.unwrap_or(usize::MAX));
            break;
        }
        next = next_link(&page, &method, &body);
    }
    Ok(SearchResult {
        items: ItemCollection {
            items,
            extra: Map::from_iter([("type".to_string(), json!("FeatureCollection"))]),
        },
        pages,
        removed_client_side: removed,
    })
}

/// The `next` link of a page: (method, href, body), merging the body when asked.
fn next_link(page: &Value, method: &str, body: &Value) -> Option<(String, String, Value)> {
    let link = page
        .get("links")?
        .as_array()?
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))?;
    let href = link.get("href")?.as_str()?.to_string();
    let link_method = link.get("method").and_then(Value::as_str).unwrap_or("GET").to_string();
    if !link_method.eq_ignore_ascii_case("POST") {
        return Some(("GET".into(), href, Value::Null));
    }
    let mut next_body = match link.get("body") {
        Some(b) if link.get("merge").and_then(Value::as_bool) == Some(true) => {
            let mut merged = if method.eq_ignore_ascii_case("POST") {
                body.clone()
            } else {
                json!({})
            };
            if let (Some(m), Some(b)) = (merged.as_object_mut(), b.as_object()) {
                m.extend(b.clone());
            }
            merged
        }
        Some(b) => b.clone(),
        None => body.clone(),
    };
    if next_body.is_null() {
        next_body = json!({});
    }
    Some(("POST".into(), href, next_body))
}

/// Whether an item's properties satisfy a `query` object (`eq neq lt lte gt gte in`).
fn matches_query(item: &Item, query: &Value) -> bool {
    let Some(q) = query.as_object() else {
        return true;
    };
    q.iter().all(|(prop, ops)| {
        let value = item.properties.extra.get(prop);
        let Some(ops) = ops.as_object() else {
            return true;
        };
        ops.iter().all(|(op, target)| {
            let (v, t) = (value.and_then(Value::as_f64), target.as_f64());
            match (op.as_str(), v, t) {
                ("lt", Some(v), Some(t)) => v < t,
                ("lte", Some(v), Some(t)) => v <= t,
                ("gt", Some(v), Some(t)) => v > t,
                ("gte", Some(v), Some(t)) => v >= t,
                ("eq", ..) => value == Some(target),
                ("neq", ..) => value != Some(target),
                ("in", ..) => target.as_array().is_some_and(|a| value.is_some_and(|v| a.contains(v))),
                // A comparison on a missing or non-numeric property excludes the item.
                _ => false,
            }
        })
    })
}

/// Expands dates to RFC 3339 times: a start date to its first instant, an end date to its last.
pub(crate) fn expand_datetime(d: &str) -> Result<String, String> {
    let parts: Vec<&str> = d.split('/').collect();
    let one = |s: &str, end: bool| -> Result<String, String> {
        let s = s.trim();
        if s.is_empty() || s == ".." || s.contains('T') {
            return Ok(s.to_string());
        }
        let (first, last) = match s.len() {
            4 => {
                let y: i32 = s.parse().map_err(|_| format!("bad year {s:?}"))?;
                (NaiveDate::from_ymd_opt(y, 1, 1), NaiveDate::from_ymd_opt(y, 12, 31))
            }
            7 => {
                let first =
                    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").map_err(|e| format!("{s:?}: {e}"))?;
                let next = first.checked_add_months(chrono::Months::new(1));
                (Some(first), next.and_then(|n| n.pred_opt()))
            }
            _ => {
                let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("{s:?}: {e}"))?;
                (Some(day), Some(day))
            }
        };
        let (date, time) = if end {
            (last, NaiveTime::from_hms_opt(23, 59, 59))
        } else {
            (first, NaiveTime::from_hms_opt(0, 0, 0))
        };
        let dt = date
            .zip(time)
            .map(|(d, t)| d.and_time(t))
            .ok_or(format!("bad date {s:?}"))?;
        Ok(format!("{}Z", dt.format("%Y-%m-%dT%H:%M:%S")))
    };
    match parts.as_slice() {
        [single] if !single.contains('T') => Ok(format!("{}/{}", one(single, false)?, one(single, true)?)),
        [single] => Ok(single.to_string()),
        [a, b] => Ok(format!("{}/{}", one(a, false)?, one(b, true)?)),
        _ => Err(format!("datetime {d:?} is neither an instant nor an interval")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_expand_like_pystac_client() {
        assert_eq!(
            expand_datetime("2020-01-31/2021-01-31").unwrap(),
            "2020-01-31T00:00:00Z/2021-01-31T23:59:59Z"
        );
        assert_eq!(
            expand_datetime("2020").unwrap(),
            "2020-01-01T00:00:00Z/2020-12-31T23:59:59Z"
        );
        assert_eq!(
            expand_datetime("2020-02").unwrap(),
            "2020-02-01T00:00:00Z/2020-02-29T23:59:59Z"
        );
        assert_eq!(expand_datetime("../2020-03-01").unwrap(), "../2020-03-01T23:59:59Z");
        assert_eq!(expand_datetime("2020-01-01T10:00:00Z").unwrap(), "2020-01-01T10:00:00Z");
        assert!(expand_datetime("2020-13-01").is_err());
    }
}
