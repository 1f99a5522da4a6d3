//! The architecture rules of `ARCHITECTURE.md`, checked on the source: the top-level modules
//! form a DAG, each written invariant holds, and no file outgrows one job.
//!
//! The source is read as text: comments, string and char literals are blanked and
//! `#[cfg(test)]` items cut, and what remains is searched for `crate::` paths (both
//! `crate::a::b` and `use crate::{a, b::c}`) and for the outside crates a rule forbids. A
//! reference a macro builds out of pieces would escape this reading; the crate uses none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that import nothing of the crate but other leaves.
const LEAVES: &[&str] = &[
    "clock",
    "failpoint",
    "proto",
    "hashing",
    "money",
    "metric_names",
    "config",
];

/// Crates that carry requests over a network, or serve them.
const TRANSPORT: &[&str] = &["tonic", "reqwest", "hyper", "axum", "tower", "hyper_util"];

/// Longest a source file may be outside its `#[cfg(test)]` items.
const MAX_LINES: usize = 600;

/// Where a rule applies: a module path prefix such as `ledger` or `sync::dest`.
struct Rule {
    /// Modules (path prefixes) the rule is about.
    scope: &'static str,
    /// Stated as in ARCHITECTURE.md.
    says: &'static str,
    /// Crate modules (path prefixes) the scope may not import.
    no_modules: &'static [&'static str],
    /// Crate modules the scope may import, all others refused (empty: no such limit).
    only_modules: &'static [&'static str],
    /// Outside crates the scope may not use.
    no_crates: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        scope: "ledger",
        says: "the store knows nothing of what is built on it: not the writer, audiences, \
               insights, ingest, sync, metrics or transport",
        no_modules: &[
            "writer",
            "audience",
            "insight",
            "ingest",
            "sync",
            "service",
            "api",
            "web",
            "cli",
            "feed",
            "import",
            "telemetry",
            "metric_names",
        ],
        only_modules: &[],
        no_crates: &[
            "tonic",
            "reqwest",
            "hyper",
            "axum",
            "tower",
            "hyper_util",
            "metrics",
        ],
    },
    Rule {
        scope: "sync::dest",
        says: "a destination knows only its network's API and the shared leaf types",
        no_modules: &[],
        only_modules: &[
            "sync::dest",
            "sync::member",
            "hashing",
            "money",
            "clock",
            "failpoint",
            "metric_names",
        ],
        no_crates: &["tonic", "sled"],
    },
    Rule {
        scope: "audience::rules",
        says: "the audience rules are a pure function: no store, transport or network",
        no_modules: &[
            "ledger", "writer", "sync", "service", "api", "web", "proto", "ingest",
        ],
        only_modules: &[],
        no_crates: &[
            "tonic", "reqwest", "hyper", "axum", "tower", "tokio", "sled",
        ],
    },
    Rule {
        scope: "writer",
        says: "the writer drives the store and the audiences; it knows no transport, \
               network or service",
        no_modules: &[
            "sync", "service", "api", "web", "cli", "feed", "import", "ingest",
        ],
        only_modules: &[],
        no_crates: TRANSPORT,
    },
    Rule {
        scope: "audience",
        says: "audiences are computed from the store's facts, knowing nothing of how they \
               arrive or where they go",
        no_modules: &[
            "writer", "ingest", "sync", "service", "api", "web", "insight", "cli", "feed", "import",
        ],
        only_modules: &[],
        no_crates: TRANSPORT,
    },
    Rule {
        scope: "insight",
        says: "insights read audiences and the store, knowing nothing of transport",
        no_modules: &["writer", "ingest", "sync", "service", "api", "web"],
        only_modules: &[],
        no_crates: TRANSPORT,
    },
    Rule {
        scope: "sync",
        says: "sync subscribes to the writer's change feed; it serves nothing and knows no \
               ingest",
        no_modules: &["api", "web", "service", "ingest", "cli", "feed", "import"],
        only_modules: &[],
        no_crates: &["tonic", "axum"],
    },
    Rule {
        scope: "feed",
        says: "the load generator is a client of the daemon, like any other",
        no_modules: &[
            "ledger", "writer", "audience", "insight", "sync", "service", "api", "cli",
        ],
        only_modules: &[],
        no_crates: &[],
    },
    Rule {
        scope: "import",
        says: "the importer is a client of the daemon, like any other",
        no_modules: &[
            "ledger", "writer", "audience", "insight", "sync", "service", "api", "cli",
        ],
        only_modules: &[],
        no_crates: &[],
    },
];

/// One source file read for its references.
struct Source {
    /// Relative to `src/`, e.g. `sync/dest/google.rs`.
    rel: String,
    /// Module path, e.g. `sync::dest::google`.
    module: String,
    /// Crate module paths referenced (`crate::` removed).
    uses: BTreeSet<String>,
    /// Outside crates referenced as `name::`.
    crates: BTreeSet<String>,
    /// Lines outside `#[cfg(test)]` items, comments and blank lines included.
    lines: usize,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text with comments and the insides of string and char literals replaced by spaces
/// (newlines kept, so line counts hold).
fn blank(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(b[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || c == 'b')
            && !b
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
            && raw_string_start(&b, i).is_some()
        {
            let (hashes, body) = raw_string_start(&b, i).unwrap_or_default();
            for _ in i..body {
                out.push(' ');
            }
            i = body;
            while i < b.len() {
                if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                out.push(keep(b[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(keep(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && char_literal_len(&b, i).is_some() {
            let n = char_literal_len(&b, i).unwrap_or(1);
            for _ in 0..n {
                out.push(' ');
            }
            i += n;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At a raw (byte) string's start: the number of `#` and where its body begins.
fn raw_string_start(b: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if b.get(j) == Some(&'b') {
        j += 1;
    }
    if b.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// The length of a char literal starting at `i`, or `None` for a lifetime.
fn char_literal_len(b: &[char], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&'\\') {
        let mut j = i + 2;
        while j < b.len() && j < i + 12 {
            if b[j] == '\'' {
                return Some(j - i + 1);
            }
            j += 1;
        }
        return None;
    }
    (b.get(i + 2) == Some(&'\'')).then_some(3)
}

/// The blanked text with every `#[cfg(test)]` item removed (lines kept as empty lines are
/// not: the item's lines are dropped, so the count is of code outside tests).
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // The item ends at its `;` or at the brace closing its first `{`.
        let semi = after.find(';');
        let open = after.find('{');
        let end = match (open, semi) {
            (Some(o), Some(s)) if s < o => s + 1,
            (Some(o), _) => {
                let mut depth = 0usize;
                let mut end = after.len();
                for (k, ch) in after[o..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = o + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(s)) => s + 1,
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A path starting at `s` (`a::b::c`), stopping at the first character no path holds.
fn path_at(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if is_ident(c) {
            out.push(c);
            chars.next();
        } else if c == ':' {
            let mut two = chars.clone();
            two.next();
            if two.peek() == Some(&':') {
                chars.next();
                chars.next();
                if chars.peek().is_some_and(|c| is_ident(*c)) {
                    out.push_str("::");
                } else {
                    break;
                }
            } else {
                break;
            }
        } else {
            break;
        }
    }
    out
}

/// Every `crate::` path in `code`, groups (`crate::{a, b::{c, d}}`) expanded one level per
/// name: enough to know which modules are reached.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + 7;
        if code[..start].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let tail = &code[start + 7..];
        let head = path_at(tail);
        let after = &tail[head.len()..];
        let group = after.trim_start_matches(':');
        if group.starts_with('{') && (head.is_empty() || after.starts_with("::")) {
            let mut depth = 0usize;
            let mut inner_end = group.len();
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            inner_end = k;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            for item in top_level_items(&group[1..inner_end]) {
                let p = path_at(item.trim());
                if !p.is_empty() && p != "self" {
                    out.insert(if head.is_empty() {
                        p
                    } else {
                        format!("{head}::{p}")
                    });
                }
            }
        } else if !head.is_empty() {
            out.insert(head);
        }
    }
    out
}

/// The comma-separated items of a `{…}` group's inside, nested groups kept whole.
fn top_level_items(inner: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (k, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&inner[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
}

/// Outside crates named at the start of a path (`tonic::…`, `use reqwest::…`).
fn crate_names(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("::") {
        let before: String = code[..at]
            .chars()
            .rev()
            .take_while(|c| is_ident(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let lead = code[..at - before.len()].chars().next_back();
        if !before.is_empty() && !lead.is_some_and(|c| c == ':' || is_ident(c)) {
            out.insert(before);
        }
    }
    out
}

fn read_sources() -> Vec<Source> {
    let root = src_dir();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let module = rel
            .trim_end_matches(".rs")
            .trim_end_matches("/mod")
            .replace('/', "::");
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let code = without_tests(&blank(&text));
        let lines = code.lines().count();
        out.push(Source {
            uses: crate_paths(&code),
            crates: crate_names(&code),
            rel,
            module,
            lines,
        });
    }
    out
}

fn top(path: &str) -> &str {
    path.split("::").next().unwrap_or(path)
}

/// Whether `path` is `prefix` or inside it.
fn within(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

/// The top-level import graph: module → (module it imports → a file that does).
fn graph(sources: &[Source]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in sources {
        let from = top(&s.module).to_string();
        let entry = g.entry(from.clone()).or_default();
        for u in &s.uses {
            let to = top(u).to_string();
            if to != from {
                entry.entry(to).or_insert_with(|| s.rel.clone());
            }
        }
    }
    g
}

/// The graph's strongly connected components of more than one module: each is a set of
/// modules that all reach one another, i.e. import cycles (Tarjan's algorithm).
fn cycles(g: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        g: &'g BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, n: &str) {
            let i = self.index.len();
            self.index.insert(n.to_string(), i);
            self.low.insert(n.to_string(), i);
            self.stack.push(n.to_string());
            self.on_stack.insert(n.to_string());
            let next: Vec<String> = self
                .g
                .get(n)
                .map(|e| e.keys().cloned().collect())
                .unwrap_or_default();
            for m in next {
                if !self.index.contains_key(&m) {
                    self.visit(&m);
                    let low = self.low[&m].min(self.low[n]);
                    self.low.insert(n.to_string(), low);
                } else if self.on_stack.contains(&m) {
                    let low = self.index[&m].min(self.low[n]);
                    self.low.insert(n.to_string(), low);
                }
            }
            if self.low[n] == self.index[n] {
                let mut component = Vec::new();
                while let Some(m) = self.stack.pop() {
                    self.on_stack.remove(&m);
                    let last = m == n;
                    component.push(m);
                    if last {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut w = Walk {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for n in g.keys() {
        if !w.index.contains_key(n) {
            w.visit(n);
        }
    }
    w.out
}

#[test]
fn the_top_level_modules_form_a_dag() {
    let sources = read_sources();
    let g = graph(&sources);
    let mut report = Vec::new();
    for component in cycles(&g) {
        report.push(format!(
            "{} modules import one another: {}",
            component.len(),
            component.join(", ")
        ));
        for from in &component {
            for (to, file) in g.get(from).into_iter().flatten() {
                if component.contains(to) {
                    report.push(format!("  {from} -> {to} (e.g. src/{file})"));
                }
            }
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

#[test]
fn leaves_import_only_leaves() {
    let mut broken = Vec::new();
    for s in read_sources() {
        if !LEAVES.contains(&top(&s.module)) {
            continue;
        }
        for u in &s.uses {
            if top(u) != top(&s.module) && !LEAVES.contains(&top(u)) {
                broken.push(format!("src/{} imports crate::{u}", s.rel));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "a leaf module (and config, plain data at the bottom) imports a part above it:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_written_rule_holds() {
    let sources = read_sources();
    let mut broken = Vec::new();
    for r in RULES {
        for s in sources.iter().filter(|s| within(&s.module, r.scope)) {
            for u in &s.uses {
                if within(u, r.scope) {
                    continue;
                }
                let refused = r.no_modules.iter().any(|m| within(u, m))
                    || (!r.only_modules.is_empty() && !r.only_modules.iter().any(|m| within(u, m)));
                if refused {
                    broken.push(format!("{}: src/{} imports crate::{u}", r.says, s.rel));
                }
            }
            for c in &s.crates {
                if r.no_crates.contains(&c.as_str()) {
                    broken.push(format!("{}: src/{} uses the {c} crate", r.says, s.rel));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn no_source_file_is_over_600_lines_outside_its_tests() {
    let mut long: Vec<String> = read_sources()
        .into_iter()
        .filter(|s| s.lines > MAX_LINES)
        .map(|s| format!("src/{}: {} lines", s.rel, s.lines))
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "split by job, each part named for what it does:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_reader_sees_through_comments_strings_and_groups() {
    let code = blank(
        r##"
// crate::commented::out
/* crate::block::comment */
let s = "crate::in_a_string";
let r = r#"crate::in_a_raw "string""#;
let c = '{';
fn f<'a>(x: &'a str) {}
use crate::{alpha::One, beta::{Two, Three}, gamma};
use crate::delta::Four;
x = crate::epsilon::five();
#[cfg(test)]
mod tests { use crate::zeta::Six; fn g() { let _ = "}"; } }
"##,
    );
    let code = without_tests(&code);
    let paths = crate_paths(&code);
    let tops: BTreeSet<&str> = paths.iter().map(|p| top(p)).collect();
    assert_eq!(
        tops,
        ["alpha", "beta", "delta", "epsilon", "gamma"]
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "{paths:?}"
    );
    assert!(
        paths.contains("beta::Two") || paths.contains("beta"),
        "{paths:?}"
    );
    let crates = crate_names("use tonic::transport; let x = reqwest::Client::new(); a::b::c");
    assert!(crates.contains("tonic") && crates.contains("reqwest") && crates.contains("a"));
    assert!(!crates.contains("b"), "{crates:?}");
}
