//! Byte ranges, COG headers and STAC searches over a real HTTP server on loopback, with
//! injected faults; requests counted on the server.
#![allow(clippy::single_range_in_vec_init)] // one-range reads are the point of several checks

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use strata::io::{CogReader, IoError, ObjectStore, StoreOptions, TileWindow};
use strata::loopback::{Fault, FaultPlan, Server, StacCatalog};
use strata::stac::{search, SearchParams, StacError};

fn cog_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cog")
}

fn fast_retries() -> StoreOptions {
    StoreOptions {
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(50),
        request_timeout: Duration::from_millis(2000),
        ..Default::default()
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn ranges_are_exact_and_close_ones_share_a_request() {
    let server = Server::start(None).unwrap();
    let data = pattern(1 << 20);
    server.add_file("/blob.bin", data.clone());
    let store = ObjectStore::new(StoreOptions {
        coalesce_gap: 1000,
        ..fast_retries()
    })
    .unwrap();
    let url = format!("{}/blob.bin", server.url());
    let ranges = vec![10..20, 500..900, 1500..1600, 200_000..200_100, 1_048_000..1_048_576];
    let got = store.get_ranges_blocking(&url, &ranges).unwrap();
    for (r, b) in ranges.iter().zip(&got) {
        assert_eq!(&b[..], &data[r.start as usize..r.end as usize], "{r:?}");
    }
    // 10..1600 coalesce (gaps ≤ 1000); the other two are far apart.
    assert_eq!(server.log().len(), 3, "{:?}", server.log());
    assert_eq!(store.stats().requests, 3);
    match store.get_ranges_blocking(&url, &[2_000_000..2_000_010]) {
        Err(IoError::OutOfRange { len, .. }) => assert_eq!(len, 1 << 20),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_fault_kind_is_retried_to_the_right_bytes() {
    let server = Server::start(None).unwrap();
    let data = pattern(300_000);
    server.add_file("/f.bin", data.clone());
    let url = format!("{}/f.bin", server.url());
    let faults = [
        Fault::ServerError,
        Fault::Unavailable,
        Fault::TooManyRequests { retry_after: 0 },
        Fault::Reset,
        Fault::Truncated,
        Fault::Stall { millis: 400 },
    ];
    for fault in faults {
        let store = ObjectStore::new(StoreOptions {
            request_timeout: Duration::from_millis(200),
            coalesce_gap: 0,
            ..fast_retries()
        })
        .unwrap();
        server.clear_log();
        // Two faults in a row on every range, then normal answers.
        server.set_faults(FaultPlan::new(vec![fault], 1).at_most(2));
        let ranges = vec![0..1000, 100_000..250_000];
        let got = store
            .get_ranges_blocking(&url, &ranges)
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        for (r, b) in ranges.iter().zip(&got) {
            assert_eq!(&b[..], &data[r.start as usize..r.end as usize], "{fault:?} {r:?}");
        }
        assert_eq!(store.stats().retries.total(), 2, "{fault:?}");
        assert_eq!(server.log().len(), 4, "{fault:?}: {:?}", server.log());
    }
}

#[test]
fn retry_after_is_honoured() {
    let server = Server::start(None).unwrap();
    server.add_file("/f.bin", pattern(100));
    server.set_faults(FaultPlan::new(vec![Fault::TooManyRequests { retry_after: 1 }], 1).at_most(1));
    let store = ObjectStore::new(StoreOptions {
        backoff_max: Duration::from_secs(5),
        ..fast_retries()
    })
    .unwrap();
    let t = std::time::Instant::now();
    store
        .get_ranges_blocking(&format!("{}/f.bin", server.url()), &[0..10])
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited only {:?}",
        t.elapsed()
    );
}

#[test]
fn errors_name_url_and_range_without_the_signature() {
    let server = Server::start(None).unwrap();
    server.add_file("/f.bin", pattern(100));
    let signs = Arc::new(AtomicUsize::new(0));
    let s = signs.clone();
    let store = ObjectStore::new(StoreOptions {
        retries: 2,
        signer: Some(Arc::new(move |href: &str| {
            format!("{href}?sig=secret{}", s.fetch_add(1, Ordering::Relaxed))
        })),
        ..fast_retries()
    })
    .unwrap();
    // Not found: not retried, and the message has no signature.
    let missing = format!("{}/nope.tif", server.url());
    let err = store.get_ranges_blocking(&missing, &[0..10]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            IoError::Status {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("/nope.tif") && msg.contains("0..10") && !msg.contains("secret"),
        "{msg}"
    );
    // Always failing: retried, then the status.
    server.set_faults(FaultPlan::new(vec![Fault::ServerError], 1));
    let err = store
        .get_ranges_blocking(&format!("{}/f.bin", server.url()), &[5..9])
        .unwrap_err();
    assert!(
        matches!(
            err,
            IoError::Status {
                status: 500,
                attempts: 3,
                ..
            }
        ),
        "{err}"
    );
    // An expired signature (403) is signed again and retried.
    server.set_faults(FaultPlan::new(vec![Fault::Forbidden], 1).at_most(1));
    let before = signs.load(Ordering::Relaxed);
    let got = store
        .get_ranges_blocking(&format!("{}/f.bin", server.url()), &[0..4])
        .unwrap();
    assert_eq!(&got[0][..], &pattern(100)[..4]);
    assert_eq!(signs.load(Ordering::Relaxed), before + 1, "signed again after the 403");
    // A refused connection is a network error naming the URL.
    let dead = ObjectStore::new(StoreOptions {
        retries: 1,
        ..fast_retries()
    })
    .unwrap();
    let err = dead
        .get_ranges_blocking("http://127.0.0.1:9/x.tif?sig=zzz", &[0..1])
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, IoError::Network { attempts: 2, .. }) && !msg.contains("zzz"),
        "{msg}"
    );
}

#[test]
fn a_cog_costs_one_header_request_and_one_request_per_tile() {
    let server = Server::start(Some(cog_dir())).unwrap();
    let url = format!("{}/cog_uint16_deflate_overviews.tif", server.url());
    // A prefetch shorter than the IFDs grows: a second header request.
    let small = ObjectStore::new(StoreOptions {
        header_prefetch: 1024,
        ..fast_retries()
    })
    .unwrap();
    CogReader::new(small).open_blocking(&url).unwrap();
    assert_eq!(server.log().len(), 2, "{:?}", server.log());
    server.clear_log();
    let store = ObjectStore::new(StoreOptions {
        header_prefetch: 2048,
        coalesce_gap: 0,
        ..fast_retries()
    })
    .unwrap();
    let reader = Arc::new(CogReader::new(store));
    // Eight threads open the same file at once: one header request between them.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| reader.open_blocking(&url).unwrap());
        }
    });
    let header_requests = server.log().len();
    assert_eq!(header_requests, 1, "{:?}", server.log());
    // 16x16 tiles over 70x50: rows 20..40, cols 10..40 touch tile rows 1..3 and cols 0..3 = 6 tiles.
    let w = TileWindow {
        level: 0,
        bands: vec![0],
        rows: 20..40,
        cols: 10..40,
    };
    let got = reader.read_window(&url, &w).unwrap();
    assert_eq!(server.log().len() - header_requests, 6, "{:?}", server.log());
    let local = CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap());
    let want = local
        .read_window(
            &cog_dir().join("cog_uint16_deflate_overviews.tif").display().to_string(),
            &w,
        )
        .unwrap();
    assert_eq!(got, want);
}

fn landsat_like_items(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            json!({
                "type": "Feature", "stac_version": "1.0.0", "id": format!("scene-{i:02}"),
                "collection": if i % 5 == 4 { "other" } else { "landsat-c2-l2" },
                "bbox": [-123.0 + (i % 3) as f64, 37.0, -122.0 + (i % 3) as f64, 38.0],
                "geometry": null,
                "properties": {"datetime": format!("2020-{:02}-{:02}T18:00:00Z", 1 + i % 12, 1 + i),
                               "eo:cloud_cover": (i * 7 % 40) as f64},
                "assets": {}, "links": []
            })
        })
        .collect()
}

#[test]
fn stac_search_follows_every_page_and_applies_the_query() {
    let server = Server::start(None).unwrap();
    let items = landsat_like_items(28);
    server.set_catalog(StacCatalog::new(items.clone(), 5));
    let store = ObjectStore::new(fast_retries()).unwrap();
    let params = SearchParams {
        collections: vec!["landsat-c2-l2".into()],
        bbox: Some([-124.0, 36.5, -120.8, 39.0]),
        datetime: Some("2020-01-01/2020-12-31".into()),
        query: Some(json!({"eo:cloud_cover": {"lt": 20}})),
        limit: Some(100),
        max_items: None,
    };
    let result = search(&store, &server.url(), &params).unwrap();
    // Independent count: collection, datetime within 2020, cloud cover < 20.
    let want: Vec<String> = items
        .iter()
        .filter(|i| i["collection"] == "landsat-c2-l2" && i["properties"]["eo:cloud_cover"].as_f64().unwrap() < 20.0)
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    let got: Vec<String> = result.items.items.iter().map(|i| i.id.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(result.pages, want.len().div_ceil(5));
    assert_eq!(result.removed_client_side, 0);
    assert!(server.log().iter().all(|r| r.method == "POST" && r.path == "/search"));
    // A server that 500s twice mid-paging is retried transparently.
    server.set_faults(FaultPlan::new(vec![Fault::ServerError], 2).at_most(2));
    let again = search(&store, &server.url(), &params).unwrap();
    assert_eq!(again.items.len(), want.len());
    // Malformed JSON from the server is a typed error naming the URL.
    server.add_file("/bad/search", b"{\"features\": [{\"id\": 1}]}".to_vec());
    server.set_faults(FaultPlan::default());
    let err = search(
        &ObjectStore::new(fast_retries()).unwrap(),
        &format!("{}/bad", server.url()),
        &params,
    );
    match err {
        Err(StacError::Json { url, what, .. }) => assert!(url.ends_with("/bad/search") && what == "search page"),
        other => panic!("{other:?}"),
    }
}
