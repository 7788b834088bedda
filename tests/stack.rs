//! `stack` over loopback HTTP against goldens from scripts/make_stack_fixtures.sh: an exact
//! nearest-neighbour stack computed with pyproj + rasterio, and stackstac's own.

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{ArrayD, Axis};
use serde_json::Value;
use strata::geo::Bounds;
use strata::io::{CogReader, Hedging, ObjectStore, StoreOptions};
use strata::loopback::{Fault, FaultPlan, Server};
use strata::stac::ItemCollection;
use strata::stack::{stack, StackOptions};
use strata::ComputeOptions;

mod common;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/stack")
}

fn coords() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("coords.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The fixture items with hrefs on the server.
fn items(server: &Server) -> ItemCollection {
    let mut c = ItemCollection::from_json(&std::fs::read(dir().join("items.json")).unwrap(), "items.json").unwrap();
    for item in &mut c.items {
        for asset in item.assets.values_mut() {
            asset.href = format!("{}/{}", server.url(), asset.href);
        }
    }
    c
}

fn options(chunk: usize) -> StackOptions {
    let ll = floats(&coords()["bounds_latlon"]);
    StackOptions {
        assets: vec!["red".into(), "green".into(), "nir08".into()],
        epsg: Some(32610),
        bounds_latlon: Some(Bounds::new(ll[0], ll[1], ll[2], ll[3])),
        resolution: Some((30.0, 30.0)),
        chunks_yx: (chunk, chunk),
        ..Default::default()
    }
}

fn golden(name: &str) -> ArrayD<f32> {
    ndarray_npy::read_npy(dir().join(name)).unwrap()
}

fn reader(options: StoreOptions) -> Arc<CogReader> {
    Arc::new(CogReader::new(ObjectStore::new(options).unwrap()))
}

fn assert_same(got: &ArrayD<f32>, want: &ArrayD<f32>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for ((i, g), w) in got.indexed_iter().zip(want.iter()) {
        assert!(
            (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6,
            "{what} at {i:?}: got {g}, expected {w}"
        );
    }
}

#[test]
fn grid_and_coordinates_match_stackstac() {
    let server = Server::start(Some(dir())).unwrap();
    let s = stack(&items(&server), &options(1024), reader(StoreOptions::default())).unwrap();
    let c = coords();
    let shape: Vec<usize> = c["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(s.shape().to_vec(), shape);
    let b = floats(&c["bounds"]);
    assert_eq!(s.spec.bounds, Bounds::new(b[0], b[1], b[2], b[3]));
    assert_eq!(s.coords.x, floats(&c["x"]));
    assert_eq!(s.coords.y, floats(&c["y"]));
    let ids: Vec<&str> = c["id"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(s.coords.id, ids, "time-sorted, the item outside the bounds dropped");
    let times: Vec<String> = s
        .coords
        .time
        .iter()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .collect();
    let want: Vec<&str> = c["time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(times, want);
    assert_eq!(s.nbytes(), (shape.iter().product::<usize>() * 4) as u64);
    assert!(
        server.log().is_empty(),
        "making a stack reads nothing: {:?}",
        server.log()
    );
}

#[test]
fn pixels_match_exact_nearest_neighbour_and_stackstac() {
    let server = Server::start(Some(dir())).unwrap();
    // No hedges: this counts requests, and on a loaded machine a header read slower than the
    // hedge floor (20 ms) would be sent twice, as it should be outside this test.
    let store = StoreOptions {
        header_prefetch: 4096,
        coalesce_gap: 0,
        hedging: Hedging {
            budget: 0.0,
            burst: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let s = stack(&items(&server), &options(1024), reader(store)).unwrap();
    let got = s.array.compute().unwrap();
    assert_same(&got, &golden("exact.npy"), "exact");

    // Requests: one header read per file, each needed tile at most once, nothing for the
    // item outside the bounds.
    let log = server.log();
    let mut paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    paths.sort();
    paths.dedup();
    assert!(paths.iter().all(|p| !p.contains("scene_4_")), "{paths:?}");
    for p in &paths {
        let reqs: Vec<_> = log.iter().filter(|r| r.path == *p).collect();
        let headers = reqs.iter().filter(|r| r.range.is_some_and(|(a, _)| a == 0)).count();
        assert_eq!(headers, 1, "{p}: {reqs:?}");
        let mut tiles: Vec<_> = reqs.iter().filter_map(|r| r.range).filter(|&(a, _)| a != 0).collect();
        let n = tiles.len();
        tiles.sort();
        tiles.dedup();
        assert_eq!(tiles.len(), n, "{p}: a tile fetched twice");
    }

    // stackstac (GDAL's approximate warper) agrees except on a few reprojected pixels.
    let ss = golden("stackstac.npy");
    for t in 0..got.shape()[0] {
        let (g, w) = (got.index_axis(Axis(0), t), ss.index_axis(Axis(0), t));
        let differ = g
            .iter()
            .zip(w.iter())
            .filter(|(a, b)| !((a.is_nan() && b.is_nan()) || (*a - *b).abs() <= 1e-6))
            .count();
        let frac = differ as f64 / g.len() as f64;
        let other_zone = s.coords.properties[t]["proj:epsg"] == 32611;
        assert!(
            if other_zone { frac < 0.01 } else { differ == 0 },
            "time {t}: {differ} pixels differ from stackstac"
        );
    }
}

#[test]
fn values_do_not_depend_on_chunks_faults_or_threads() {
    let server = Server::start(Some(dir())).unwrap();
    let want = golden("exact.npy");
    // Every third request fails in one of the ways a flaky store fails.
    server.set_faults(FaultPlan::new(
        vec![
            Fault::ServerError,
            Fault::TooManyRequests { retry_after: 0 },
            Fault::Reset,
            Fault::Truncated,
            Fault::Unavailable,
        ],
        3,
    ));
    // One request in three fails, so a request that keeps landing on the failing slot (its
    // retries in step with others') must not exhaust the default six retries: this checks
    // values, not the retry limit (tests/http_store.rs checks that).
    let store = StoreOptions {
        backoff_base: std::time::Duration::from_millis(1),
        header_prefetch: 2048,
        retries: 30,
        ..Default::default()
    };
    for (chunk, threads) in [(32, Some(1)), (45, Some(2)), (64, None)] {
        let s = stack(&items(&server), &options(chunk), reader(store.clone())).unwrap();
        server.clear_log();
        let got = s
            .array
            .compute_with(&ComputeOptions {
                threads,
                ..Default::default()
            })
            .unwrap();
        assert_same(&got.0, &want, &format!("chunks {chunk}"));
        // The report counts the run's requests as the server saw them, retries by cause.
        let (io, log) = (got.1.io, server.log());
        assert_eq!(io.requests, log.len() as u64, "chunks {chunk}: {io:?}");
        let faulted = log.iter().filter(|r| r.fault.is_some()).count() as u64;
        assert_eq!(io.retries.total(), faulted, "chunks {chunk}: {io:?}");
        assert!(
            io.retries.status > 0 && io.retries.network > 0,
            "chunks {chunk}: {io:?}"
        );
    }
    assert!(server.log().iter().any(|r| r.fault.is_some()));
}

#[test]
fn a_broken_asset_is_an_error_naming_item_asset_and_url() {
    let server = Server::start(Some(dir())).unwrap();
    let mut c = items(&server);
    let item = c.items.iter_mut().find(|i| i.id == "LC08_SYN_02").unwrap();
    item.assets.get_mut("green").unwrap().href = format!("{}/missing.tif?token=secret", server.url());
    let s = stack(&c, &options(1024), reader(StoreOptions::default())).unwrap();
    let err = s.array.compute().unwrap_err();
    // Typed all the way down: the executor's task, the stack's item and asset, the store's
    // status and URL.
    match err.source_error::<strata::stack::StackError>() {
        Some(strata::stack::StackError::Read { item, asset, source }) => {
            assert_eq!((item.as_str(), asset.as_str()), ("LC08_SYN_02", "green"));
            match source.as_ref() {
                strata::io::IoError::Status { status: 404, url, .. } => {
                    assert!(url.contains("/missing.tif") && !url.contains("secret"), "{url}")
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?} from {err}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("LC08_SYN_02") && msg.contains("green") && msg.contains("missing.tif"),
        "{msg}"
    );
    assert!(msg.contains("404") && !msg.contains("secret"), "{msg}");
}

#[test]
fn a_missing_asset_reads_as_nodata_when_asked_and_is_listed() {
    let server = Server::start(Some(dir())).unwrap();
    let mut c = items(&server);
    let item = c.items.iter_mut().find(|i| i.id == "LC08_SYN_02").unwrap();
    item.assets.get_mut("green").unwrap().href = format!("{}/missing.tif?token=secret", server.url());
    let options = StackOptions {
        missing_as_nodata: true,
        ..options(32)
    };
    let s = stack(&c, &options, reader(StoreOptions::default())).unwrap();
    let t = s.coords.id.iter().position(|id| id == "LC08_SYN_02").unwrap();
    let (got, report) = s.array.compute_with(&ComputeOptions::default()).unwrap();
    // every other plane is the exact stack; that item's green plane is all fill (NaN)
    let mut want = golden("exact.npy");
    want.index_axis_mut(Axis(0), t)
        .index_axis_mut(Axis(0), 1)
        .fill(f32::NAN);
    assert_same(&got, &want, "missing green of LC08_SYN_02");
    // one count per block read of it: the blocks of 32 that the item reaches
    let reads = report.io.missing_as_nodata;
    assert!(reads >= 1, "{:?}", report.io);
    let missing = s.missing();
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (missing[0].item.as_str(), missing[0].asset.as_str()),
        ("LC08_SYN_02", "green")
    );
    assert!(missing[0].url.contains("/missing.tif") && !missing[0].url.contains("secret"));
    // a second run knows it is missing: no request for it, the same reads counted
    server.clear_log();
    let (again, report) = s.array.compute_with(&ComputeOptions::default()).unwrap();
    assert_same(&again, &want, "second run");
    assert_eq!(report.io.missing_as_nodata, reads);
    assert!(!server.log().iter().any(|r| r.path.contains("missing")));
}

#[test]
fn a_block_reads_only_the_items_it_touches() {
    let server = Server::start(Some(dir())).unwrap();
    let s = stack(&items(&server), &options(32), reader(StoreOptions::default())).unwrap();
    // The top-left 32x32 block: scene 0 covers it; scene 1 starts 1.5 km east of it.
    let corner = s.array.slice(&[
        strata::Slice::all(),
        strata::Slice::all(),
        strata::Slice::range(0, 32),
        strata::Slice::range(0, 32),
    ]);
    let got = corner.compute().unwrap();
    let want = golden("exact.npy");
    let want = want.slice(ndarray::s![.., .., 0..32, 0..32]).to_owned().into_dyn();
    assert_same(&got, &want, "corner");
    let log = server.log();
    assert!(log.iter().any(|r| r.path.starts_with("/scene_0_")), "{log:?}");
    assert!(log.iter().all(|r| !r.path.starts_with("/scene_1_")), "{log:?}");
}

#[test]
fn remote_reads_run_ahead_inside_the_budget() {
    let server = Server::start(Some(dir())).unwrap();
    server.set_latency(std::time::Duration::from_millis(5));
    let s = stack(&items(&server), &options(32), reader(StoreOptions::default())).unwrap();
    let budget = 256 << 10; // 64 blocks of 4 KiB
    let (got, report) = s
        .array
        .compute_with(&ComputeOptions {
            memory_budget: Some(budget),
            ..Default::default()
        })
        .unwrap();
    assert_same(&got, &golden("exact.npy"), "small budget");
    assert!(report.peak_bytes <= budget, "peak {} over {budget}", report.peak_bytes);
    // The report splits the tasks' time into waiting on reads and computing: the first read
    // waits at least one 5 ms answer, and no wait is longer than the tasks that waited.
    assert!(report.io.wait_us >= 5_000, "{:?}", report.io);
    assert!(
        report.io.wait_us <= report.task_us,
        "{} > {}",
        report.io.wait_us,
        report.task_us
    );
    // The process's peak resident set holds at least what the scheduler held.
    let rss = report.peak_rss_bytes.expect("Linux reports VmHWM");
    assert!(rss >= report.peak_bytes, "{rss} < {}", report.peak_bytes);
}

#[test]
fn on_the_gpu_stored_codes_go_up_and_decode_bitwise_as_on_the_cpu() {
    use common::gpu::{device, on, one_at_a_time};
    use strata::backend::gpu::BackendChoice;
    let Some(ctx) = device() else { return };
    // The device's task and transfer counters are process-wide.
    let _turn = one_at_a_time();
    let server = Server::start(Some(dir())).unwrap();
    let s = stack(&items(&server), &options(40), reader(StoreOptions::default())).unwrap();
    let cpu = s.array.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    // A device consumer (x * 1 is exact, NaN included) keeps the decoded blocks on the device.
    let e = &s.array * 1.0;
    let tasks = ctx.device_tasks();
    e.compute_with(&on(BackendChoice::Gpu)).unwrap();
    // Again, with the decode tables already on the device: what goes up is the codes.
    ctx.settle();
    let moved = ctx.transfer_stats();
    let gpu = e.compute_with(&on(BackendChoice::Gpu)).unwrap().0;
    ctx.settle();
    let moved = ctx.transfer_stats().since(&moved);
    // The codes are copied once on the host (from the decoder's block into staging), and no
    // worker waited for the device.
    assert!(moved.host_copy_bytes <= moved.upload_bytes, "{moved:?}");
    assert_eq!(moved.worker_waits, 0, "{moved:?}");
    assert!(ctx.device_tasks() > tasks, "no task ran on the device");
    assert_eq!(gpu.shape(), cpu.shape());
    for ((i, g), c) in gpu.indexed_iter().zip(cpu.iter()) {
        assert!(
            g.to_bits() == c.to_bits() || (g.is_nan() && c.is_nan()),
            "at {i:?}: gpu {g}, cpu {c}"
        );
    }
    // Codes are 2 bytes an element; with the small per-dispatch buffers, what went up stays
    // well under the f32 values' 4 bytes.
    let f32_bytes = (cpu.len() * 4) as u64;
    assert!(
        moved.upload_bytes >= f32_bytes / 2 && moved.upload_bytes < f32_bytes * 3 / 4,
        "uploaded {} bytes for {f32_bytes} bytes of f32",
        moved.upload_bytes
    );
    assert!(cpu.iter().any(|v| v.is_nan()) && cpu.iter().any(|v| !v.is_nan()));
}
