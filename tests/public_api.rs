//! The public API, listed from rustdoc's JSON and compared with `tests/data/public-api.txt`, so
//! that every change to the surface shows in review. After a deliberate change, run
//! `STRATA_BLESS=1 cargo test --release --test public_api` and commit the new listing.
//!
//! rustdoc's JSON output is unstable; `RUSTC_BOOTSTRAP=1` lets the stable toolchain write it.
//! It builds into `target/public-api` (its own target folder, so the `cargo test` running this
//! does not wait on its own lock).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// rustdoc's JSON for the library without its default features: the stable surface
/// (`testkit` and `cli` carry no stability promise).
fn rustdoc_json() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = root().join("target/public-api");
    let out = Command::new(cargo)
        .current_dir(root())
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTFLAGS")
        .args(["rustdoc", "--lib", "--quiet", "--no-default-features", "--target-dir"])
        .arg(&target)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo rustdoc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(target.join("doc/strata.json")).expect("rustdoc wrote strata.json");
    serde_json::from_str(&text).expect("rustdoc's JSON parses")
}

/// Renders rustdoc JSON items as one line per public item.
struct Lister<'a> {
    index: &'a serde_json::Map<String, Value>,
    lines: BTreeSet<String>,
    seen: HashSet<(String, String)>,
}

impl<'a> Lister<'a> {
    fn item(&self, id: &Value) -> Option<&'a Value> {
        self.index.get(&id.to_string())
    }

    fn walk_module(&mut self, path: &str, module: &Value) {
        for id in module["items"].as_array().into_iter().flatten() {
            if let Some(item) = self.item(id) {
                self.walk(path, item, None);
            }
        }
    }

    /// One item at `path` (under the name `rename` when re-exported under another).
    fn walk(&mut self, path: &str, item: &'a Value, rename: Option<&str>) {
        if item["visibility"] != "public" && item["inner"].get("variant").is_none() {
            return;
        }
        let name = rename.or(item["name"].as_str()).unwrap_or("_");
        let full = format!("{path}::{name}");
        if !self.seen.insert((full.clone(), item["id"].to_string())) {
            return;
        }
        let inner = &item["inner"];
        let (kind, body) = match inner.as_object().and_then(|o| o.iter().next()) {
            Some((k, v)) => (k.as_str(), v),
            None => (inner.as_str().unwrap_or("?"), &Value::Null),
        };
        match kind {
            "module" => {
                self.lines.insert(format!("pub mod {full}"));
                self.walk_module(&full, body);
            }
            "use" => {
                let target = body.get("id").filter(|id| !id.is_null()).and_then(|id| self.item(id));
                match (target, body["is_glob"].as_bool()) {
                    (Some(t), Some(true)) => {
                        if let Some(m) = t["inner"].get("module") {
                            self.walk_module(path, m);
                        }
                    }
                    (Some(t), _) => self.walk(path, t, body["name"].as_str()),
                    (None, _) => {
                        self.lines.insert(format!(
                            "pub use {path}::{} = {}",
                            body["name"].as_str().unwrap_or("*"),
                            body["source"].as_str().unwrap_or("?")
                        ));
                    }
                }
            }
            "struct" => {
                let generics = self.generics(&body["generics"]);
                let kind = &body["kind"];
                if let Some(fields) = kind.get("tuple").and_then(Value::as_array) {
                    let shown: Vec<String> = fields
                        .iter()
                        .map(|f| match self.item(f) {
                            Some(f) if !f.is_null() => format!("pub {}", self.ty(&f["inner"]["struct_field"])),
                            _ => "_".into(),
                        })
                        .collect();
                    self.lines
                        .insert(format!("pub struct {full}{generics}({})", shown.join(", ")));
                } else {
                    self.lines.insert(format!("pub struct {full}{generics}"));
                    if let Some(plain) = kind.get("plain") {
                        self.fields(&full, plain);
                    }
                }
                self.impls(&full, body);
            }
            "enum" => {
                self.lines
                    .insert(format!("pub enum {full}{}", self.generics(&body["generics"])));
                for v in body["variants"].as_array().into_iter().flatten() {
                    if let Some(v) = self.item(v) {
                        self.walk(&full, v, None);
                    }
                }
                self.impls(&full, body);
            }
            "variant" => {
                let kind = &body["kind"];
                if let Some(fields) = kind.get("tuple").and_then(Value::as_array) {
                    let shown: Vec<String> = fields
                        .iter()
                        .map(|f| {
                            self.item(f)
                                .map_or("_".into(), |f| self.ty(&f["inner"]["struct_field"]))
                        })
                        .collect();
                    self.lines.insert(format!("{full}({})", shown.join(", ")));
                } else {
                    self.lines.insert(full.clone());
                    if let Some(s) = kind.get("struct") {
                        self.fields(&full, s);
                    }
                }
            }
            "function" => {
                self.lines.insert(self.function(&full, body));
            }
            "trait" => {
                let unsafety = if body["is_unsafe"] == true { "unsafe " } else { "" };
                self.lines.insert(format!(
                    "pub {unsafety}trait {full}{}",
                    self.generics(&body["generics"])
                ));
                for id in body["items"].as_array().into_iter().flatten() {
                    if let Some(i) = self.item(id) {
                        self.assoc(&full, i);
                    }
                }
            }
            "type_alias" => {
                self.lines.insert(format!(
                    "pub type {full}{} = {}",
                    self.generics(&body["generics"]),
                    self.ty(&body["type"])
                ));
            }
            "constant" => {
                self.lines
                    .insert(format!("pub const {full}: {}", self.ty(&body["type"])));
            }
            "static" => {
                self.lines
                    .insert(format!("pub static {full}: {}", self.ty(&body["type"])));
            }
            "macro" => {
                self.lines.insert(format!("macro {name}!"));
            }
            other => {
                self.lines.insert(format!("{other} {full}"));
            }
        }
    }

    fn fields(&mut self, owner: &str, kind: &Value) {
        for f in kind["fields"].as_array().into_iter().flatten() {
            if let Some(f) = self.item(f) {
                // private fields are stripped from the index; variant fields are "default"
                let name = f["name"].as_str().unwrap_or("_");
                self.lines
                    .insert(format!("pub {owner}.{name}: {}", self.ty(&f["inner"]["struct_field"])));
            }
        }
        if kind["has_stripped_fields"] == true {
            self.lines.insert(format!("{owner} {{ .. }}"));
        }
    }

    /// Inherent methods, and the traits implemented (auto traits and blanket impls left out:
    /// they follow from the rest).
    fn impls(&mut self, owner: &str, body: &Value) {
        for id in body["impls"].as_array().into_iter().flatten() {
            let Some(imp) = self.item(id) else { continue };
            let imp = &imp["inner"]["impl"];
            if imp["is_synthetic"] == true
                || !imp["blanket_impl"].is_null()
                || imp["trait"]["path"] == "StructuralPartialEq"
            {
                continue;
            }
            match imp["trait"].as_object() {
                Some(_) => {
                    let tr = self.path(&imp["trait"]);
                    self.lines.insert(format!(
                        "impl{} {tr} for {}",
                        self.generics(&imp["generics"]),
                        self.ty(&imp["for"])
                    ));
                }
                None => {
                    for i in imp["items"].as_array().into_iter().flatten() {
                        if let Some(i) = self.item(i) {
                            if i["visibility"] == "public" {
                                self.assoc(owner, i);
                            }
                        }
                    }
                }
            }
        }
    }

    fn assoc(&mut self, owner: &str, item: &Value) {
        let name = item["name"].as_str().unwrap_or("_");
        let full = format!("{owner}::{name}");
        let inner = &item["inner"];
        if let Some(f) = inner.get("function") {
            self.lines.insert(self.function(&full, f));
        } else if let Some(c) = inner.get("assoc_const") {
            self.lines.insert(format!("const {full}: {}", self.ty(&c["type"])));
        } else if inner.get("assoc_type").is_some() {
            self.lines.insert(format!("type {full}"));
        }
    }

    fn function(&self, full: &str, f: &Value) -> String {
        let header = &f["header"];
        let mut quals = String::new();
        for (flag, word) in [("is_const", "const "), ("is_async", "async "), ("is_unsafe", "unsafe ")] {
            if header[flag] == true {
                quals.push_str(word);
            }
        }
        let sig = &f["sig"];
        let inputs: Vec<String> = sig["inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let (name, ty) = (p[0].as_str().unwrap_or("_"), self.ty(&p[1]));
                match (name, ty.as_str()) {
                    ("self", "Self") => "self".into(),
                    ("self", "&Self") => "&self".into(),
                    ("self", "&mut Self") => "&mut self".into(),
                    _ => format!("{name}: {ty}"),
                }
            })
            .collect();
        let out = match &sig["output"] {
            Value::Null => String::new(),
            t => format!(" -> {}", self.ty(t)),
        };
        format!(
            "pub {quals}fn {full}{}({}){out}{}",
            self.generics(&f["generics"]),
            inputs.join(", "),
            self.where_clause(&f["generics"])
        )
    }

    fn generics(&self, g: &Value) -> String {
        let params: Vec<String> = g["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["kind"]["type"]["is_synthetic"] != true)
            .map(|p| {
                let name = p["name"].as_str().unwrap_or("_").to_string();
                match p["kind"].get("type") {
                    Some(t) => match self.bounds(&t["bounds"]) {
                        b if b.is_empty() => name,
                        b => format!("{name}: {b}"),
                    },
                    None => match p["kind"].get("const") {
                        Some(c) => format!("const {name}: {}", self.ty(&c["type"])),
                        None => name,
                    },
                }
            })
            .collect();
        if params.is_empty() {
            String::new()
        } else {
            format!("<{}>", params.join(", "))
        }
    }

    fn where_clause(&self, g: &Value) -> String {
        let preds: Vec<String> = g["where_predicates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("bound_predicate"))
            .map(|p| format!("{}: {}", self.ty(&p["type"]), self.bounds(&p["bounds"])))
            .collect();
        if preds.is_empty() {
            String::new()
        } else {
            format!(" where {}", preds.join(", "))
        }
    }

    fn bounds(&self, bounds: &Value) -> String {
        bounds
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| match (b.get("trait_bound"), b.get("outlives")) {
                (Some(t), _) => {
                    let maybe = if t["modifier"] == "maybe" { "?" } else { "" };
                    format!("{maybe}{}", self.path(&t["trait"]))
                }
                (_, Some(l)) => l.as_str().unwrap_or("'_").to_string(),
                _ => "?".into(),
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }

    fn path(&self, p: &Value) -> String {
        let name = p["path"].as_str().unwrap_or("?");
        let args = &p["args"];
        if let Some(a) = args.get("angle_bracketed") {
            let mut shown: Vec<String> = a["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| match (a.get("type"), a.get("lifetime"), a.get("const")) {
                    (Some(t), _, _) => self.ty(t),
                    (_, Some(l), _) => l.as_str().unwrap_or("'_").to_string(),
                    (_, _, Some(c)) => c["expr"].as_str().unwrap_or("_").to_string(),
                    _ => "_".into(),
                })
                .collect();
            for c in a["constraints"].as_array().into_iter().flatten() {
                let ty = c["binding"]["equality"]
                    .get("type")
                    .map_or_else(|| "_".into(), |t| self.ty(t));
                shown.push(format!("{} = {ty}", c["name"].as_str().unwrap_or("_")));
            }
            if shown.is_empty() {
                name.to_string()
            } else {
                format!("{name}<{}>", shown.join(", "))
            }
        } else if let Some(f) = args.get("parenthesized") {
            let inputs: Vec<String> = f["inputs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| self.ty(t))
                .collect();
            let out = match &f["output"] {
                Value::Null => String::new(),
                t => format!(" -> {}", self.ty(t)),
            };
            format!("{name}({}){out}", inputs.join(", "))
        } else {
            name.to_string()
        }
    }

    fn ty(&self, t: &Value) -> String {
        let Some((kind, v)) = t.as_object().and_then(|o| o.iter().next()) else {
            return t.as_str().unwrap_or("?").to_string();
        };
        match kind.as_str() {
            "resolved_path" => self.path(v),
            "generic" | "primitive" => v.as_str().unwrap_or("?").to_string(),
            "borrowed_ref" => {
                let life = v["lifetime"].as_str().map_or(String::new(), |l| format!("{l} "));
                let m = if v["is_mutable"] == true { "mut " } else { "" };
                format!("&{life}{m}{}", self.ty(&v["type"]))
            }
            "raw_pointer" => {
                let m = if v["is_mutable"] == true { "mut" } else { "const" };
                format!("*{m} {}", self.ty(&v["type"]))
            }
            "slice" => format!("[{}]", self.ty(v)),
            "array" => format!("[{}; {}]", self.ty(&v["type"]), v["len"].as_str().unwrap_or("_")),
            "tuple" => {
                let parts: Vec<String> = v.as_array().into_iter().flatten().map(|t| self.ty(t)).collect();
                format!("({})", parts.join(", "))
            }
            "dyn_trait" => {
                let mut parts: Vec<String> = v["traits"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| self.path(&t["trait"]))
                    .collect();
                if let Some(l) = v["lifetime"].as_str() {
                    parts.push(l.to_string());
                }
                format!("dyn {}", parts.join(" + "))
            }
            "impl_trait" => format!("impl {}", self.bounds(v)),
            "qualified_path" => format!(
                "<{} as {}>::{}",
                self.ty(&v["self_type"]),
                v["trait"].as_object().map_or("?".into(), |_| self.path(&v["trait"])),
                v["name"].as_str().unwrap_or("?")
            ),
            "function_pointer" => {
                let inputs: Vec<String> = v["sig"]["inputs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| self.ty(&p[1]))
                    .collect();
                let out = match &v["sig"]["output"] {
                    Value::Null => String::new(),
                    t => format!(" -> {}", self.ty(t)),
                };
                format!("fn({}){out}", inputs.join(", "))
            }
            other => format!("<{other}>"),
        }
    }
}

#[test]
fn the_public_api_is_the_committed_listing() {
    let doc = rustdoc_json();
    let index = doc["index"].as_object().expect("an index");
    let mut lister = Lister {
        index,
        lines: BTreeSet::new(),
        seen: HashSet::new(),
    };
    let root = &index[&doc["root"].to_string()];
    lister.walk_module("strata", &root["inner"]["module"]);
    let listing: String = lister.lines.iter().map(|l| format!("{l}\n")).collect();
    let file = root_path();
    if std::env::var_os("STRATA_BLESS").is_some() {
        std::fs::write(&file, &listing).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    let was: BTreeSet<&str> = committed.lines().collect();
    let now: BTreeSet<&str> = listing.lines().collect();
    let added: Vec<&&str> = now.difference(&was).collect();
    let removed: Vec<&&str> = was.difference(&now).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the public API changed ({} items now, {} committed).\nadded:\n  {}\nremoved:\n  {}\n\
         If this is deliberate: STRATA_BLESS=1 cargo test --release --test public_api, and commit {}",
        now.len(),
        was.len(),
        added.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("\n  "),
        removed.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("\n  "),
        file.display()
    );
}

fn root_path() -> PathBuf {
    root().join("tests/data/public-api.txt")
}
