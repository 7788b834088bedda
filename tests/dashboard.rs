//! The dashboard in a real browser (headless Chromium over the DevTools protocol): the live
//! page during a run, and `report.html` opened from disk with the network cut off. Bad
//! addresses fail before any work; a browser that leaves costs the run nothing; signed URLs
//! never reach the page.

#[path = "common/browser.rs"]
mod browser;
#[path = "common/gpu.rs"]
mod gpu;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use browser::{Browser, Page};
use ndarray::ArrayD;
use strata::exec::{Dashboard, DashboardError, ExecError};
use strata::{Array, ComputeOptions, Error};

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A free loopback port (bound and released; the dashboard binds it again at once).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// 96 blocks of a slow user function, then a mean over time: about 2 s on two threads, so a
/// browser can watch it. Every value is `t + y` for pixel (t, y, x); its mean over t is
/// `5.5 + y`.
fn slow_program(calls: Arc<AtomicUsize>) -> Array {
    let src = Array::from_fn(&[12, 256, 256], vec![1, 32, 256], "slow", move |r| {
        calls.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(40));
        let shape: Vec<usize> = r.iter().map(|r| r.len()).collect();
        ArrayD::from_shape_fn(shape, |i| (r[0].start + i[0]) as f32 + (r[1].start + i[1]) as f32)
    });
    src.mean(0)
}

fn check_mean(got: &ArrayD<f32>) {
    for ((y, _x), v) in got
        .clone()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .indexed_iter()
    {
        assert_eq!(*v, 5.5 + y as f32);
    }
}

fn options(dashboard: Option<Dashboard>) -> ComputeOptions {
    ComputeOptions {
        threads: Some(2),
        memory_budget: Some(64 << 20),
        dashboard,
        ..Default::default()
    }
}

/// What every view must show once the run ended: rectangles on every worker lane, every
/// progress bar at 100%, memory never above the budget.
fn check_finished_page(page: &mut Page, threads: usize) {
    for lane in 0..threads {
        let n = page.eval(&format!(
            "document.querySelectorAll('rect.task[data-lane=\"{lane}\"]').length"
        ));
        assert!(n.as_u64().unwrap() > 0, "no task rectangles on worker lane {lane}");
    }
    let pcts = page.eval("[...document.querySelectorAll('.bar')].map(b => Number(b.dataset.pct))");
    let pcts = pcts.as_array().unwrap();
    assert!(!pcts.is_empty(), "no progress bars");
    assert!(pcts.iter().all(|p| p.as_u64() == Some(100)), "progress {pcts:?}");
    let mem = page.eval(
        "(() => { const s = document.getElementById('memory').dataset; \
         return [Number(s.maxHost), Number(s.budget), Number(s.points)]; })()",
    );
    let (max, budget, points) = (
        mem[0].as_u64().unwrap(),
        mem[1].as_u64().unwrap(),
        mem[2].as_u64().unwrap(),
    );
    assert!(points > 2, "a memory series of {points} points");
    assert!(max > 0 && max <= budget, "memory peak {max} against budget {budget}");
    let done = page.eval("[...document.querySelectorAll('.gnode')].every(n => n.dataset.state === 'done')");
    assert_eq!(done, serde_json::json!(true), "graph nodes not all done");
}

/// Writes `html` to `name` under the test's output folder and opens it in a fresh headless
/// Chromium cut off the network; returns once the page drew (the browser lives as long as the
/// page is used).
fn open_report(html: &str, name: &str) -> (Browser, Page) {
    let path = out_dir().join(name);
    std::fs::write(&path, html).unwrap();
    let browser = Browser::launch();
    let mut page = browser.new_page();
    page.offline();
    page.goto(&format!("file://{}", path.display()));
    assert!(
        page.wait_for("document.body.dataset.rendered > 0", Duration::from_secs(30)),
        "{name} never drew"
    );
    (browser, page)
}

#[test]
fn the_live_page_follows_a_run_to_the_end() {
    let addr = free_addr();
    let calls = Arc::new(AtomicUsize::new(0));
    let program = slow_program(calls.clone());
    let opts = options(Some(Dashboard::at(addr.clone())));
    let run = std::thread::spawn(move || program.compute_with(&opts));
    let browser = Browser::launch();
    let mut page = browser.new_page();
    // The server is up once the run started; the page connects while tasks run.
    let url = format!("http://{addr}/");
    let mut loaded = false;
    for _ in 0..100 {
        if TcpStream::connect(&addr).is_ok() {
            page.goto(&url);
            loaded = page.wait_for("document.body.dataset.rendered > 0", Duration::from_secs(20));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(loaded, "the live page never drew");
    let running = page.eval("document.getElementById('status').dataset.state");
    let partial = page.eval("Number(document.querySelector('.bar.output').dataset.pct)");
    assert!(
        running == "running" || partial.as_u64() == Some(100),
        "status {running} at {partial}%"
    );
    assert!(
        page.wait_for("document.body.dataset.finished === 'true'", Duration::from_secs(60)),
        "the page never saw the run finish"
    );
    check_finished_page(&mut page, 2);
    let status = page.eval("document.getElementById('status').textContent");
    assert_eq!(status, "finished");
    page.screenshot(&out_dir().join("dashboard-live.png"));
    let (got, report) = run.join().unwrap().unwrap();
    check_mean(&got);
    assert_eq!(calls.load(Ordering::Relaxed), 96);
    assert_eq!(report.timeline.header.threads, 2);
}

#[test]
fn the_html_report_draws_offline_from_disk() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (got, report) = slow_program(calls).compute_with(&options(None)).unwrap();
    check_mean(&got);
    let (_browser, mut page) = open_report(&report.to_html(), "report.html");
    check_finished_page(&mut page, 2);
    // The page fetched nothing: no resource but the file itself.
    let fetched = page.eval("performance.getEntriesByType('resource').length");
    assert_eq!(fetched, serde_json::json!(0));
    page.screenshot(&out_dir().join("dashboard-report.png"));
}

#[test]
fn a_bad_or_busy_address_fails_before_any_work() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cases = [
        (busy.local_addr().unwrap().to_string(), "in use"),
        ("0.0.0.0:0".to_string(), "not loopback"),
        ("localhost:dashboard".to_string(), "not an address"),
    ];
    for (addr, why) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let err = slow_program(calls.clone())
            .compute_with(&options(Some(Dashboard::at(addr.clone()))))
            .unwrap_err();
        match (&err, why) {
            (Error::Exec(ExecError::Dashboard(DashboardError::Bind { .. })), "in use") => {}
            (Error::Exec(ExecError::Dashboard(DashboardError::NotLoopback { .. })), "not loopback") => {}
            (Error::Exec(ExecError::Dashboard(DashboardError::BadAddress { .. })), "not an address") => {}
            _ => panic!("{addr} ({why}): {err:?}"),
        }
        assert!(err.to_string().contains(addr.split(':').next().unwrap()), "{err}");
        assert_eq!(calls.load(Ordering::Relaxed), 0, "{addr}: work ran");
    }
    // Opting in serves a non-loopback address.
    let calls = Arc::new(AtomicUsize::new(0));
    let remote = Dashboard {
        addr: "0.0.0.0:0".into(),
        allow_remote: true,
    };
    let (got, _) = slow_program(calls).compute_with(&options(Some(remote))).unwrap();
    check_mean(&got);
}

#[test]
fn a_browser_that_leaves_mid_run_costs_nothing() {
    let addr = free_addr();
    let calls = Arc::new(AtomicUsize::new(0));
    let program = slow_program(calls.clone());
    let opts = options(Some(Dashboard::at(addr.clone())));
    let run = std::thread::spawn(move || program.compute_with(&opts));
    // Connect to the event stream, read the first event, hang up.
    let mut stream = loop {
        if let Ok(s) = TcpStream::connect(&addr) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    write!(stream, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
    drop(stream);
    let (got, report) = run.join().unwrap().unwrap();
    check_mean(&got);
    assert_eq!(calls.load(Ordering::Relaxed), 96);
    assert!(report.timeline.finished && report.timeline.spans_total >= 96);
}

/// `GET path` on the dashboard; the body, or `None` once the server is gone.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer
        .contains("200 OK")
        .then(|| answer.split_once("\r\n\r\n").unwrap().1.to_string())
}

#[test]
fn signed_urls_never_reach_the_page_or_the_report() {
    use strata::geo::Bounds;
    use strata::io::{CogReader, ObjectStore, StoreOptions};
    use strata::stac::ItemCollection;
    use strata::stack::{stack, StackOptions};

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/stack");
    let server = strata::loopback::Server::start(Some(dir.clone())).unwrap();
    server.set_latency(Duration::from_millis(15));
    // Hrefs as a signing service hands them out: a token in the query string.
    let mut items = ItemCollection::from_json(&std::fs::read(dir.join("items.json")).unwrap(), "items.json").unwrap();
    for asset in items.items.iter_mut().flat_map(|i| i.assets.values_mut()) {
        asset.href = format!("{}/{}?token=secret-7f3a", server.url(), asset.href);
    }
    let coords: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("coords.json")).unwrap()).unwrap();
    let ll: Vec<f64> = coords["bounds_latlon"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let options = StackOptions {
        assets: vec!["red".into(), "nir08".into()],
        epsg: Some(32610),
        bounds_latlon: Some(Bounds::new(ll[0], ll[1], ll[2], ll[3])),
        resolution: Some((30.0, 30.0)),
        chunks_yx: (32, 32),
        ..Default::default()
    };
    let reader = Arc::new(CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap()));
    let program = stack(&items, &options, reader).unwrap().array.nanmedian(0);
    let addr = free_addr();
    let opts = ComputeOptions {
        threads: Some(2),
        dashboard: Some(Dashboard::at(addr.clone())),
        ..Default::default()
    };
    let run = std::thread::spawn(move || program.compute_with(&opts));
    // Everything the page could be sent while the run lasts.
    let mut snapshots = Vec::new();
    while !run.is_finished() {
        snapshots.extend(http_get(&addr, "/snapshot"));
        std::thread::sleep(Duration::from_millis(30));
    }
    let (_, report) = run.join().unwrap().unwrap();
    let html = report.to_html();
    // The I/O view says how long threads waited on the 15 ms answers.
    let (_browser, mut page) = open_report(&html, "report-reads.html");
    let waited = page.eval(
        "[...document.querySelectorAll('tr')].find(r => r.cells[0].textContent === 'threads waiting on reads')\
         .cells[1].textContent",
    );
    let waited: f64 = waited.as_str().unwrap().trim_end_matches(" s").parse().unwrap();
    assert!(
        waited > 0.0 && waited * 1e6 <= report.task_us as f64 + 5e3,
        "{waited} s"
    );
    let mut seen = snapshots;
    seen.push(html);
    // The reads are there, by path and byte range, so the check below is not vacuous.
    assert!(
        seen.iter().any(|s| s.contains(".tif?… bytes ")),
        "no request spans in {} pages",
        seen.len()
    );
    for text in &seen {
        assert!(
            !text.contains("secret-7f3a") && !text.contains("token="),
            "a signature leaked"
        );
    }
}

#[test]
fn a_gpu_run_draws_its_submissions_uploads_and_downloads() {
    let Some(_device) = gpu::device() else { return };
    let cube = gpu::cube(16, 256, 256, 7, 3);
    let program = Array::from_ndarray(cube, vec![16, 64, 256]).nanmedian(0);
    let mut options = gpu::on(strata::backend::gpu::BackendChoice::Gpu);
    options.threads = Some(2);
    let (_, report) = program.compute_with(&options).unwrap();
    let lanes = &report.timeline.lanes;
    let (_browser, mut page) = open_report(&report.to_html(), "report-gpu.html");
    for name in ["gpu submit", "gpu upload", "gpu download"] {
        let lane = lanes.iter().position(|l| l == name).expect(name);
        let n = page.eval(&format!(
            "document.querySelectorAll('rect.task[data-lane=\"{lane}\"]').length"
        ));
        assert!(n.as_u64().unwrap() > 0, "no rectangles on the {name} lane");
    }
    page.screenshot(&out_dir().join("dashboard-gpu.png"));
}

#[test]
fn a_million_task_run_keeps_a_bounded_timeline_and_says_what_it_summed() {
    let n = 1_000_000;
    let program = (Array::ones(&[n], [1]) + 1.0).sum(strata::Axes::All);
    let (got, report) = program.compute_with(&options(None)).unwrap();
    assert_eq!(got.sum(), 2.0 * n as f32);
    let t = &report.timeline;
    assert!(t.finished && t.spans_total as usize >= n, "{} spans", t.spans_total);
    assert_eq!(t.spans.len(), 20_000, "the ring of recent spans");
    let summed: u64 = t.aggregated.iter().map(|a| a.count).sum();
    assert_eq!(
        summed + t.spans.len() as u64,
        t.spans_total,
        "every span kept or summed"
    );
    assert!(t.memory.len() <= 2048, "{} memory samples", t.memory.len());
    let html = report.to_html();
    assert!(html.len() < 8 << 20, "report.html of {} bytes", html.len());
    let (_browser, mut page) = open_report(&html, "report-million.html");
    let note = page.eval("document.getElementById('stream-note').textContent");
    let note = note.as_str().unwrap();
    assert!(note.contains("earlier spans are not drawn; summed: worker 0"), "{note}");
    check_finished_page(&mut page, 2);
}
