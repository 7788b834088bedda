//! The embedded synthetic Landsat catalog through the whole cloud path: a STAC search over
//! the loopback API with the tutorial's filters, a stack of every band, and every pixel
//! checked against the catalog's closed form (DN × 2.75e-05 − 0.2 in f64, rounded once to f32;
//! nodata → NaN), on the CPU and on the GPU (stored codes decoded on the device).

mod common;

use strata::backend::gpu::BackendChoice;
use strata::io::{CogReader, ObjectStore, StoreOptions};
use strata::loopback::landsat::{SyntheticLandsat, BANDS, EPSG, OFFSET, SCALE};
use strata::loopback::Server;
use strata::stac::{search, SearchParams};
use strata::stack::{stack, StackOptions};

#[test]
fn the_synthetic_catalog_stacks_to_its_closed_form() {
    let synthetic = SyntheticLandsat {
        scenes: 13,
        size: 96,
        tile: 32,
        ..Default::default()
    };
    let server = Server::start(None).unwrap();
    let catalog = synthetic.serve(&server).unwrap();
    let store = ObjectStore::new(StoreOptions::default()).unwrap();
    let params = SearchParams {
        collections: vec!["landsat-c2-l2".into()],
        bbox: Some([-124.031297, 36.473972, -120.831297, 39.073972]),
        datetime: Some("2020-01-31/2021-01-31".into()),
        query: Some(serde_json::json!({"eo:cloud_cover": {"lt": 20}})),
        ..Default::default()
    };
    let found = search(&store, &server.url(), &params).unwrap();
    // What the filters should keep, from the catalog itself.
    let start = chrono::DateTime::parse_from_rfc3339("2020-01-31T00:00:00Z").unwrap();
    let kept: Vec<usize> = (0..synthetic.scenes)
        .filter(|&i| {
            synthetic.date(i) >= start && catalog.items[i]["properties"]["eo:cloud_cover"].as_f64().unwrap() < 20.0
        })
        .collect();
    assert!(
        kept.len() >= 8 && kept.len() < synthetic.scenes,
        "the filters keep some scenes: {kept:?}"
    );
    assert_eq!(found.items.items.len(), kept.len());
    let options = StackOptions {
        assets: BANDS.iter().map(|s| s.to_string()).collect(),
        epsg: Some(EPSG),
        resolution: Some((30.0, 30.0)),
        chunks_yx: (40, 40),
        ..Default::default()
    };
    let reader = std::sync::Arc::new(CogReader::new(store));
    let s = stack(&found.items, &options, reader).unwrap();
    // Landsat's grid sits 15 m off the 30 m lattice the stack snaps to (as stackstac's does):
    // one more row and column, pixel centres on scene pixel corners, ties going east/south,
    // so stack pixel (r, c) is scene pixel (r, c) and the last row and column are empty.
    let n = synthetic.size;
    assert_eq!(s.array.shape(), &[kept.len(), 5, n + 1, n + 1]);
    assert_eq!(
        (s.coords.x[0], s.coords.y[0]),
        (catalog.transform.c, catalog.transform.f)
    );
    for backend in [BackendChoice::Cpu, BackendChoice::Gpu] {
        let device = match backend {
            BackendChoice::Gpu => match common::gpu::device() {
                Some(ctx) => Some((ctx, common::gpu::one_at_a_time())),
                None => continue,
            },
            _ => None,
        };
        let tasks = device.as_ref().map(|(ctx, _)| ctx.device_tasks());
        let got = (&s.array * 1.0).compute_with(&common::gpu::on(backend)).unwrap().0;
        if let (Some((ctx, _)), Some(tasks)) = (&device, tasks) {
            assert!(ctx.device_tasks() > tasks, "no task ran on the device");
        }
        for (t, &scene) in kept.iter().enumerate() {
            for b in 0..5 {
                for r in 0..=n {
                    for c in 0..=n {
                        let dn = if r < n && c < n {
                            synthetic.dn(scene, b, r, c)
                        } else {
                            0
                        };
                        let want = if dn == 0 {
                            f32::NAN
                        } else {
                            (f64::from(dn) * SCALE + OFFSET) as f32
                        };
                        let g = got[[t, b, r, c]];
                        assert!(
                            g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                            "{backend:?} scene {scene} band {b} ({r}, {c}): {g} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
