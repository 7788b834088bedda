//! [`SourceKinds`]: how a worker makes a job's sources again from their specs. The stack of
//! COGs (`"stack"`: its items and options; tiles are read through a fresh store) is built in;
//! a program with sources of its own registers their kinds.

use std::collections::HashMap;
use std::sync::Arc;

use super::JobError;
use crate::expr::{ChunkSource, Op};
use crate::io::{CogReader, ObjectStore, StoreOptions};
use crate::stac::ItemCollection;
use crate::stack::{stack, StackOptions};

/// Makes a source from its spec.
pub type SourceMaker = dyn Fn(&serde_json::Value) -> Result<Arc<dyn ChunkSource>, JobError> + Send + Sync;

/// Source kinds a worker can make, by the spec's `"kind"`.
pub struct SourceKinds {
    kinds: HashMap<String, Box<SourceMaker>>,
}

impl std::fmt::Debug for SourceKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

impl Default for SourceKinds {
    /// The built-in kinds: `"stack"`.
    fn default() -> Self {
        let mut kinds = SourceKinds { kinds: HashMap::new() };
        kinds.register("stack", make_stack);
        kinds
    }
}

impl SourceKinds {
    /// Adds (or replaces) the maker of `kind`.
    pub fn register(
        &mut self,
        kind: &str,
        make: impl Fn(&serde_json::Value) -> Result<Arc<dyn ChunkSource>, JobError> + Send + Sync + 'static,
    ) {
        self.kinds.insert(kind.to_string(), Box::new(make));
    }

    /// The source `spec` describes.
    ///
    /// **Errors**: [`JobError::UnknownSource`] for a kind not registered; the maker's errors.
    pub fn make(&self, spec: &serde_json::Value) -> Result<Arc<dyn ChunkSource>, JobError> {
        let kind = spec.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let make = self.kinds.get(kind).ok_or_else(|| JobError::UnknownSource {
            kind: kind.to_string(),
            known: {
                let mut k: Vec<String> = self.kinds.keys().cloned().collect();
                k.sort();
                k
            },
        })?;
        make(spec)
    }
}

/// A stack of COGs from its items and options, read through a store with default options.
fn make_stack(spec: &serde_json::Value) -> Result<Arc<dyn ChunkSource>, JobError> {
    let bad = |source: Box<dyn std::error::Error + Send + Sync>| JobError::Source {
        kind: "stack".into(),
        source,
    };
    let items: ItemCollection = serde_json::from_value(spec["items"].clone()).map_err(|e| bad(e.into()))?;
    let options: StackOptions = serde_json::from_value(spec["options"].clone()).map_err(|e| bad(e.into()))?;
    let store = ObjectStore::new(StoreOptions::default()).map_err(|e| bad(Box::new(crate::Error::from(e))))?;
    let made =
        stack(&items, &options, Arc::new(CogReader::new(store))).map_err(|e| bad(Box::new(crate::Error::from(e))))?;
    let node = made.array.node().map_err(|e| bad(Box::new(crate::Error::from(e))))?;
    match &node.op {
        Op::Source(s) => Ok(s.clone()),
        _ => Err(bad("the stack was not a source".into())),
    }
}
