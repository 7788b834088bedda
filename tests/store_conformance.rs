//! One contract, every store: local files, HTTP on loopback and memory, each bare and inside
//! the coalescing, retrying and signing wrappers, and `ObjectStore` routing to each. The
//! contract is the one `strata::io::ReadableStore` documents; writes are checked for the
//! stores that write.
#![allow(clippy::single_range_in_vec_init)] // one-range reads are the point of several checks

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata::io::{
    block_on, Coalescing, FileStore, HttpStore, IoError, MemoryStore, ObjectStore, ReadableStore, RetryPolicy,
    Retrying, Signing, StoreFuture, StoreOptions, WritableStore,
};
use strata::loopback::{Fault, FaultPlan, Server};

const SIZE: usize = 100_000;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(20),
    }
}

/// Where a store under test finds the objects `a.bin` (`SIZE` bytes of `pattern`) and
/// `empty.bin`, and an href for one that does not exist.
struct Objects {
    a: String,
    empty: String,
    missing: String,
}

fn bytes_of(r: &Range<u64>) -> &[u8] {
    static DATA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    &DATA.get_or_init(|| pattern(SIZE))[r.start as usize..r.end as usize]
}

/// The whole contract against one store.
fn conforms(name: &str, store: &dyn ReadableStore, o: &Objects) {
    let size = SIZE as u64;
    block_on(async {
        // exact ranges, the first and last byte, the whole object, nothing
        for r in [0..1, 10..20, 1000..60_000, size - 1..size, 0..size] {
            let got = store
                .get_range(&o.a, r.clone())
                .await
                .unwrap_or_else(|e| panic!("{name} {r:?}: {e}"));
            assert_eq!(&got[..], bytes_of(&r), "{name} {r:?}");
        }
        assert!(
            store.get_range(&o.a, 5..5).await.unwrap().is_empty(),
            "{name}: empty range"
        );
        // past the end: the object's size comes back
        for r in [size - 10..size + 10, size + 5..size + 9] {
            match store.get_range(&o.a, r.clone()).await {
                Err(IoError::OutOfRange { len, range, .. }) => {
                    assert_eq!((len, range), (size, r.clone()), "{name}");
                }
                other => panic!("{name} {r:?}: {other:?}"),
            }
        }
        // prefixes, shorter and longer than the object
        let (head, total) = store.get_prefix(&o.a, 10).await.unwrap();
        assert_eq!((&head[..], total), (bytes_of(&(0..10)), Some(size)), "{name}");
        let (head, total) = store.get_prefix(&o.a, 2 * size).await.unwrap();
        assert_eq!((&head[..], total), (bytes_of(&(0..size)), Some(size)), "{name}");
        let (head, total) = store.get_prefix(&o.empty, 10).await.unwrap();
        assert_eq!((head.len(), total), (0, Some(0)), "{name}: empty object");
        // whole objects
        assert_eq!(&store.get_all(&o.a).await.unwrap()[..], bytes_of(&(0..size)), "{name}");
        assert!(store.get_all(&o.empty).await.unwrap().is_empty(), "{name}");
        // many ranges: out of order, overlapping, duplicated, adjacent, empty
        let ranges = vec![
            90_000..90_100,
            0..10,
            5..15,
            0..10,
            10..20,
            40_000..40_000,
            size - 3..size,
            50_000..80_000,
        ];
        let got = store.get_ranges(&o.a, &ranges).await.unwrap();
        assert_eq!(got.len(), ranges.len(), "{name}");
        for (r, b) in ranges.iter().zip(&got) {
            assert_eq!(&b[..], bytes_of(r), "{name} {r:?}");
        }
        // many requests at once
        let many: Vec<Range<u64>> = (0..64u64).map(|i| i * 1500..i * 1500 + 700).collect();
        let got = futures_util::future::try_join_all(many.iter().map(|r| store.get_range(&o.a, r.clone())))
            .await
            .unwrap();
        for (r, b) in many.iter().zip(&got) {
            assert_eq!(&b[..], bytes_of(r), "{name} {r:?}");
        }
        // a missing object, however it is read
        let errors = [
            store.get_range(&o.missing, 0..10).await.map(|_| ()),
            store.get_prefix(&o.missing, 10).await.map(|_| ()),
            store.get_all(&o.missing).await.map(|_| ()),
            store.get_ranges(&o.missing, &[0..10, 20..30]).await.map(|_| ()),
        ];
        for e in errors {
            let e = e.expect_err(name);
            assert!(e.is_not_found(), "{name}: {e:?}");
            assert!(
                e.transient().is_none(),
                "{name}: a missing object is not worth retrying"
            );
        }
    });
}

/// The contract for a store in every wrapper.
fn conforms_wrapped<S: ReadableStore + Clone + 'static>(name: &str, store: S, o: &Objects) {
    conforms(name, &store, o);
    conforms(
        &format!("{name} coalesced"),
        &Coalescing::new(store.clone(), 4096, 1 << 20),
        o,
    );
    conforms(&format!("{name} retried"), &Retrying::new(store.clone(), policy()), o);
    conforms(
        &format!("{name} retried + coalesced"),
        &Coalescing::new(Retrying::new(store, policy()), 64 << 10, 16 << 20),
        o,
    );
}

fn local_objects() -> (tempdir::Dir, Objects) {
    let dir = tempdir::Dir::new("conformance");
    std::fs::write(dir.path.join("a.bin"), pattern(SIZE)).unwrap();
    std::fs::write(dir.path.join("empty.bin"), b"").unwrap();
    let path = |n: &str| dir.path.join(n).display().to_string();
    let o = Objects {
        a: path("a.bin"),
        empty: path("empty.bin"),
        missing: path("nope.bin"),
    };
    (dir, o)
}

#[test]
fn file_store_conforms() {
    let (dir, o) = local_objects();
    conforms_wrapped("file", FileStore::new(), &o);
    let url = |p: &str| format!("file://{p}");
    let urls = Objects {
        a: url(&o.a),
        empty: url(&o.empty),
        missing: url(&o.missing),
    };
    conforms_wrapped("file:// URL", FileStore::new(), &urls);
    let store = ObjectStore::new(StoreOptions::default()).unwrap();
    conforms("object store, path", &store, &o);
    conforms("object store, file://", &store, &urls);
    drop(dir);
}

fn http_objects(server: &Server) -> Objects {
    server.add_file("/a.bin", pattern(SIZE));
    server.add_file("/empty.bin", Vec::new());
    Objects {
        a: format!("{}/a.bin", server.url()),
        empty: format!("{}/empty.bin", server.url()),
        missing: format!("{}/nope.bin", server.url()),
    }
}

#[test]
fn http_store_conforms() {
    let server = Server::start(None).unwrap();
    let o = http_objects(&server);
    let http = HttpStore::new(StoreOptions::default()).unwrap();
    conforms_wrapped("http", http.clone(), &o);
    let signs = Arc::new(AtomicUsize::new(0));
    let counter = signs.clone();
    let signed = Signing::new(
        http,
        Arc::new(move |href: &str| format!("{href}?sig={}", counter.fetch_add(1, Ordering::Relaxed))),
    );
    conforms("http signed", &signed, &o);
    assert!(
        signs.load(Ordering::Relaxed) >= 3,
        "each href signed once, then remembered"
    );
    let store = ObjectStore::new(StoreOptions::default()).unwrap();
    conforms("object store, http", &store, &o);
    let signing_store = ObjectStore::new(StoreOptions {
        signer: Some(Arc::new(|href: &str| format!("{href}?token=t"))),
        ..StoreOptions::default()
    })
    .unwrap();
    conforms("object store, signed http", &signing_store, &o);
}

#[test]
fn memory_store_conforms() {
    let memory = MemoryStore::new();
    memory.insert("mem://bucket/a.bin", pattern(SIZE));
    memory.insert("mem://bucket/empty.bin", Vec::new());
    let o = Objects {
        a: "mem://bucket/a.bin".into(),
        empty: "mem://bucket/empty.bin".into(),
        missing: "mem://bucket/nope.bin".into(),
    };
    conforms_wrapped("memory", memory.clone(), &o);
    // Mounted in an ObjectStore, the prefix routes to it.
    let store = ObjectStore::new(StoreOptions::default()).unwrap();
    match block_on(store.get_all(&o.a)) {
        Err(IoError::UnsupportedHref { href }) => assert_eq!(href, o.a),
        other => panic!("before the mount: {other:?}"),
    }
    store.mount("mem://", memory);
    conforms("object store, mounted memory", &store, &o);
}

/// A store that fails the first `failures` calls for each href with a transient error, then
/// reads from `inner`: retries must come from the wrapper, whatever the store.
#[derive(Clone)]
struct Flaky {
    inner: MemoryStore,
    failures: usize,
    calls: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Flaky {
    fn fail<'a, T: Send + 'a>(&self, href: &str, ok: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(href.to_string()).or_default();
            *n += 1;
            *n
        };
        if n <= self.failures {
            let url = href.to_string();
            return Box::pin(async move {
                Err(IoError::Network {
                    url,
                    range: 0..0,
                    message: "injected".into(),
                    attempts: 1,
                    timed_out: n % 2 == 0,
                })
            });
        }
        ok
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }
}

impl ReadableStore for Flaky {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        self.fail(href, self.inner.get_range(href, range))
    }
    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        self.fail(href, self.inner.get_prefix(href, len))
    }
    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        self.fail(href, self.inner.get_all(href))
    }
}

#[test]
fn retries_wrap_any_store() {
    let memory = MemoryStore::new();
    memory.insert("a", pattern(SIZE));
    memory.insert("empty", Vec::new());
    let o = Objects {
        a: "a".into(),
        empty: "empty".into(),
        missing: "nope".into(),
    };
    // Two failures per href, then answers: the retrying store conforms, the bare one does not.
    let flaky = Flaky {
        inner: memory,
        failures: 2,
        calls: Arc::default(),
    };
    let bare = Flaky {
        calls: Arc::default(),
        ..flaky.clone()
    };
    let bare = block_on(bare.get_all(&o.a)).unwrap_err();
    assert_eq!(
        bare.transient().map(|(cause, _)| cause),
        Some(strata::io::RetryCause::Network)
    );
    let retried = Retrying::new(flaky.clone(), policy());
    conforms("flaky memory, retried", &retried, &o);
    let counts = retried.stats().retries;
    // Two failures for each of the three hrefs: the first a network error, the second a timeout.
    assert_eq!((counts.network, counts.timeout), (3, 3), "{counts:?}");
    // Out of retries: the last error, with the attempts made.
    let hopeless = Retrying::new(
        Flaky {
            failures: 100,
            calls: Arc::default(),
            ..flaky.clone()
        },
        policy(),
    );
    match block_on(hopeless.get_range("a", 0..10)) {
        Err(IoError::Network { attempts: 4, .. }) => {}
        other => panic!("{other:?}"),
    }
    // What fails for good is asked once.
    let once = Flaky {
        failures: 0,
        calls: Arc::default(),
        ..flaky
    };
    let retried = Retrying::new(once.clone(), policy());
    assert!(matches!(
        block_on(retried.get_range("a", 0..SIZE as u64 + 1)),
        Err(IoError::OutOfRange { .. })
    ));
    assert_eq!(once.calls(), 1);
}

#[test]
fn http_faults_are_retried_by_the_wrapper_not_the_transport() {
    let server = Server::start(None).unwrap();
    let o = http_objects(&server);
    let http = HttpStore::new(StoreOptions::default()).unwrap();
    // One 503 per request: the bare store reports it, typed as transient.
    server.set_faults(FaultPlan::new(vec![Fault::Unavailable], 1).at_most(1));
    let e = block_on(http.get_range(&o.a, 0..10)).unwrap_err();
    assert!(
        matches!(
            e,
            IoError::Status {
                status: 503,
                attempts: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.transient().is_some());
    server.set_faults(FaultPlan::new(vec![Fault::Unavailable], 1).at_most(1));
    let retried = Retrying::new(http, policy());
    assert_eq!(
        &block_on(retried.get_range(&o.a, 0..10)).unwrap()[..],
        bytes_of(&(0..10))
    );
    assert_eq!(retried.stats().retries.status, 1);
}

#[test]
fn writes_are_whole_and_replace() {
    let dir = tempdir::Dir::new("conformance-writes");
    let file = FileStore::new();
    let memory = MemoryStore::new();
    type Href<'a> = &'a dyn Fn(&str) -> String;
    let stores: [(&str, Href, &dyn WritableStore, &dyn ReadableStore); 2] = [
        (
            "file",
            &|n| dir.path.join("sub/dir").join(n).display().to_string(),
            &file,
            &file,
        ),
        ("memory", &|n| format!("mem://{n}"), &memory, &memory),
    ];
    for (name, href, writer, reader) in stores {
        block_on(async {
            let a = href("a.bin");
            writer.put(&a, Bytes::from(pattern(SIZE))).await.unwrap();
            assert_eq!(&reader.get_all(&a).await.unwrap()[..], &pattern(SIZE)[..], "{name}");
            writer.put(&a, Bytes::from_static(b"new")).await.unwrap();
            assert_eq!(&reader.get_all(&a).await.unwrap()[..], b"new", "{name}: replaced whole");
            assert_eq!(&reader.get_range(&a, 1..3).await.unwrap()[..], b"ew", "{name}");
            writer.delete(&a).await.unwrap();
            assert!(reader.get_all(&a).await.unwrap_err().is_not_found(), "{name}");
            writer.delete(&a).await.unwrap();
        });
    }
    // The file store wrote beside its targets and left nothing behind.
    let left: Vec<PathBuf> = std::fs::read_dir(dir.path.join("sub/dir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

mod tempdir {
    /// A folder under the target dir, removed when dropped.
    pub struct Dir {
        pub path: std::path::PathBuf,
    }

    impl Dir {
        pub fn new(name: &str) -> Dir {
            let path =
                std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
