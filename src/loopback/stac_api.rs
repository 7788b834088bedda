//! A static STAC API over a fixed list of items: landing page, `/search` (POST and GET) with
//! collections, bbox, datetime and `query` filters, paged with `next` links that carry a
//! token (POST links repeat the whole body, as Planetary Computer's do).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::wire::{Request, Response};

/// Items served by the loopback STAC API.
#[derive(Debug, Clone)]
pub struct StacCatalog {
    items: Vec<Value>,
    page_size: usize,
}

impl StacCatalog {
    /// Serves `items` (STAC Item JSON), `page_size` per page unless a request's `limit` is smaller.
    pub fn new(items: Vec<Value>, page_size: usize) -> StacCatalog {
        StacCatalog {
            items,
            page_size: page_size.max(1),
        }
    }

    pub(super) fn answer(&self, req: &Request) -> Option<Response> {
        let base = format!("http://{}", req.host);
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => Some(Response::json(&json!({
                "type": "Catalog", "id": "loopback", "stac_version": "1.0.0",
                "description": "strata's loopback STAC API",
                "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                               "https://api.stacspec.org/v1.0.0/item-search",
                               "https://api.stacspec.org/v1.0.0-rc.1/item-search#query"],
                "links": [{"rel": "search", "href": format!("{base}/search"), "method": "POST",
                           "type": "application/geo+json"}]
            }))),
            ("POST", "/search") => {
                let body: Value = match serde_json::from_slice(&req.body) {
                    Ok(v) => v,
                    Err(e) => return Some(Response::status(400, &format!("bad JSON body: {e}"))),
                };
                Some(self.search(&body, &base, true))
            }
            ("GET", "/search") => {
                let mut body = json!({});
                for pair in req.query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let v = v.replace("%2C", ",").replace("%3A", ":").replace("%2F", "/");
                    body[k] = match k {
                        "limit" => json!(v.parse::<u64>().unwrap_or(10)),
                        "collections" => json!(v.split(',').collect::<Vec<_>>()),
                        "bbox" => json!(v.split(',').filter_map(|x| x.parse::<f64>().ok()).collect::<Vec<_>>()),
                        _ => json!(v),
                    };
                }
                Some(self.search(&body, &base, false))
            }
            _ => None,
        }
    }

    fn search(&self, body: &Value, base: &str, post: bool) -> Response {
        let interval = match body.get("datetime").and_then(Value::as_str).map(parse_interval) {
            Some(Err(m)) => return Response::status(400, &m),
            Some(Ok(i)) => Some(i),
            None => None,
        };
        let matched: Vec<&Value> = self
            .items
            .iter()
            .filter(|item| in_collections(item, body.get("collections")))
            .filter(|item| in_bbox(item, body.get("bbox")))
            .filter(|item| interval.as_ref().is_none_or(|i| in_interval(item, i)))
            .filter(|item| passes_query(item, body.get("query")))
            .collect();
        let limit = body
            .get("limit")
            .and_then(Value::as_u64)
            .map_or(self.page_size, |l| (l as usize).max(1));
        let limit = limit.min(self.page_size);
        let start: usize = body
            .get("token")
            .and_then(Value::as_str)
            .and_then(|t| t.strip_prefix("next:"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = matched.iter().skip(start).take(limit).map(|v| (*v).clone()).collect();
        let mut links = vec![];
        if start + page.len() < matched.len() {
            let token = format!("next:{}", start + page.len());
            if post {
                let mut next_body = body.clone();
                next_body["token"] = json!(token);
                links.push(
                    json!({"rel": "next", "href": format!("{base}/search"), "method": "POST",
                                  "body": next_body, "merge": false}),
                );
            } else {
                links.push(
                    json!({"rel": "next", "href": format!("{base}/search?limit={limit}&token={token}"),
                                  "method": "GET"}),
                );
            }
        }
        Response::json(&json!({
            "type": "FeatureCollection",
            "features": page,
            "links": links,
            "numberMatched": matched.len(),
            "numberReturned": page.len(),
        }))
    }
}

fn in_collections(item: &Value, wanted: Option<&Value>) -> bool {
    match wanted.and_then(Value::as_array) {
        Some(list) if !list.is_empty() => item.get("collection").is_some_and(|c| list.contains(c)),
        _ => true,
    }
}

fn in_bbox(item: &Value, bbox: Option<&Value>) -> bool {
    let (Some(b), Some(ib)) = (
        bbox.and_then(Value::as_array),
        item.get("bbox").and_then(Value::as_array),
    ) else {
        return true;
    };
    let f = |a: &Vec<Value>, i: usize| a.get(i).and_then(Value::as_f64).unwrap_or(f64::NAN);
    !(f(ib, 2) < f(b, 0) || f(b, 2) < f(ib, 0) || f(ib, 3) < f(b, 1) || f(b, 3) < f(ib, 1))
}

type Interval = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Full RFC 3339 only: like real servers, date-only values are a 400.
fn parse_interval(s: &str) -> Result<Interval, String> {
    let one = |p: &str| -> Result<Option<DateTime<Utc>>, String> {
        if p.is_empty() || p == ".." {
            return Ok(None);
        }
        DateTime::parse_from_rfc3339(p)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|e| format!("datetime {p:?} is not RFC 3339: {e}"))
    };
    match s.split_once('/') {
        Some((a, b)) => Ok((one(a)?, one(b)?)),
        None => {
            let t = one(s)?;
            Ok((t, t))
        }
    }
}

fn in_interval(item: &Value, (from, to): &Interval) -> bool {
    let Some(t) = item
        .pointer("/properties/datetime")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    else {
        return false;
    };
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t <= e)
}

fn passes_query(item: &Value, query: Option<&Value>) -> bool {
    let Some(q) = query.and_then(Value::as_object) else {
        return true;
    };
    q.iter().all(|(prop, ops)| {
        let v = item.pointer(&format!("/properties/{prop}")).and_then(Value::as_f64);
        ops.as_object().is_none_or(|ops| {
            ops.iter().all(|(op, t)| match (op.as_str(), v, t.as_f64()) {
                ("lt", Some(v), Some(t)) => v < t,
                ("lte", Some(v), Some(t)) => v <= t,
                ("gt", Some(v), Some(t)) => v > t,
                ("gte", Some(v), Some(t)) => v >= t,
                ("eq", Some(v), Some(t)) => v == t,
                _ => false,
            })
        })
    })
}
