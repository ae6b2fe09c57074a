//! `wsis-protocol` is pure (docs: architecture.md): no async runtime, no networking, no storage engine among its
//! normal dependencies, and no filesystem, sockets or clock in its source. Callers pass bytes and time in.
//!
//! The source check reads the code, not its text: every file under `src/` is parsed with `syn`, every name that a
//! `use`, an `extern crate` or a `type` alias brings in is resolved to the path it stands for, and every path the
//! code writes (in items, expressions, types, patterns, qualified `<T>::f` paths and macro arguments) is resolved
//! through those names before it is compared with the forbidden paths. So `use std::{fs}`, `use std::{self as s}`
//! then `s::fs`, `::std::fs::read`, `extern crate std as x` then `x::net`, and `use std::*` are all caught, while
//! comments and string literals that merely mention `std::fs` are not code and pass. Scopes are not told apart (a
//! name bound anywhere counts everywhere), so the check errs on the side of refusing. What it cannot see: code a
//! procedural macro generates, and files that `include!` pulls in from outside `src/`.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use syn::buffer::Cursor;
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::visit::{self, Visit};

const FORBIDDEN_CRATES: [&str; 6] = ["tokio", "libp2p", "sled", "async-std", "mio", "reqwest"];

/// The filesystem, sockets and the clock, as the paths that reach them; anything below a path is refused too.
const FORBIDDEN_PATHS: [&[&str]; 4] = [
    &["std", "fs"],
    &["std", "net"],
    &["std", "time", "SystemTime"],
    &["std", "time", "Instant", "now"],
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn normal_dependencies_have_no_runtime_network_or_storage_crates() {
    let workspace = crate_dir().join("..");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "wsis-protocol",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(&workspace)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A cargo that printed nothing (or something else) must not make this test pass.
    assert!(
        stdout.lines().any(|l| l.starts_with("wsis-protocol ")),
        "cargo tree did not list wsis-protocol:\n{stdout}"
    );
    let bad: Vec<&str> = stdout
        .lines()
        .filter(|l| FORBIDDEN_CRATES.iter().any(|c| l.starts_with(c)))
        .collect();
    assert!(
        bad.is_empty(),
        "wsis-protocol must stay pure, but depends on:\n{}",
        bad.join("\n")
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn source_uses_no_filesystem_network_or_clock() {
    let src = crate_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("lib.rs")),
        "no lib.rs under {}",
        src.display()
    );
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
        .collect();
    let found = impurities(&sources);
    assert!(found.is_empty(), "impure source:\n{}", found.join("\n"));
}

// ---------------------------------------------------------------------------------------------------------------
// The checker

/// A path as its segments, raw identifiers unrawed (`r#fs` is `fs`) and a leading `::` dropped.
type Segments = Vec<String>;

/// Every forbidden path the given files reach, one line each (`file: what is written (what it resolves to)`), or
/// a line for a file that does not parse. The names that `use`, `extern crate` and `type` bring in are collected
/// over all the files first, because a re-export in one module can be used in another.
fn impurities(files: &[(String, String)]) -> Vec<String> {
    let mut parsed = Vec::new();
    let mut found = Vec::new();
    for (name, text) in files {
        match syn::parse_file(text) {
            Ok(file) => parsed.push((name, file)),
            Err(e) => found.push(format!("{name}: does not parse: {e}")),
        }
    }
    let mut names = Names::default();
    for (_, file) in &parsed {
        names.visit_file(file);
    }
    for (name, file) in &parsed {
        let mut check = Check {
            names: &names,
            file: name,
            found: &mut found,
        };
        check.visit_file(file);
    }
    found
}

/// The segments of a `syn` path.
fn segments(path: &syn::Path) -> Segments {
    path.segments
        .iter()
        .map(|s| s.ident.unraw().to_string())
        .collect()
}

/// Walks a use tree, calling `leaf` with the full path of every name it brings in and the name it is bound to
/// (`None` for a glob, whose full path is the prefix).
fn use_leaves(
    prefix: &mut Segments,
    tree: &syn::UseTree,
    leaf: &mut dyn FnMut(&[String], Option<String>),
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.unraw().to_string());
            use_leaves(prefix, &p.tree, leaf);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let ident = n.ident.unraw().to_string();
            if ident == "self" {
                // `use std::{self}`: the name is the prefix's last segment.
                leaf(prefix, prefix.last().cloned());
            } else {
                prefix.push(ident.clone());
                leaf(prefix, Some(ident));
                prefix.pop();
            }
        }
        syn::UseTree::Rename(r) => {
            let ident = r.ident.unraw().to_string();
            let rename = r.rename.unraw().to_string();
            if ident == "self" {
                leaf(prefix, Some(rename));
            } else {
                prefix.push(ident);
                leaf(prefix, Some(rename));
                prefix.pop();
            }
        }
        syn::UseTree::Glob(_) => leaf(prefix, None),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_leaves(prefix, t, leaf);
            }
        }
    }
}

/// Macro arguments are tokens, not syntax: parsed as items or as comma-separated expressions where they are
/// either, and otherwise read as runs of `a::b::c` tokens (so `std::fs` inside any macro is still seen).
enum MacroBody {
    Items(syn::File),
    Exprs(Vec<syn::Expr>),
    Paths(Vec<Segments>),
}

fn macro_body(m: &syn::Macro) -> MacroBody {
    if let Ok(file) = m.parse_body::<syn::File>() {
        return MacroBody::Items(file);
    }
    let exprs = m.parse_body_with(
        syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
    );
    if let Ok(exprs) = exprs {
        return MacroBody::Exprs(exprs.into_iter().collect());
    }
    let paths = m.parse_body_with(|input: ParseStream| {
        let mut out = Vec::new();
        token_paths(input.cursor(), &mut out);
        input.step(|cursor| {
            let mut rest = *cursor;
            while let Some((_, next)) = rest.token_tree() {
                rest = next;
            }
            Ok(((), rest))
        })?;
        Ok(out)
    });
    MacroBody::Paths(paths.unwrap_or_default())
}

/// Every maximal run `ident (:: ident)*` in a token stream, groups included.
fn token_paths(mut c: Cursor<'_>, out: &mut Vec<Segments>) {
    let mut current: Segments = Vec::new();
    let mut colons = 0;
    let flush = |current: &mut Segments, out: &mut Vec<Segments>| {
        if !current.is_empty() {
            out.push(std::mem::take(current));
        }
    };
    while !c.eof() {
        if let Some((ident, next)) = c.ident() {
            if colons != 2 {
                flush(&mut current, out);
            }
            current.push(ident.unraw().to_string());
            colons = 0;
            c = next;
        } else if let Some((punct, next)) = c.punct() {
            if punct.as_char() == ':' {
                colons += 1;
            } else {
                flush(&mut current, out);
                colons = 0;
            }
            c = next;
        } else if let Some((inside, _, _, next)) = c.any_group() {
            token_paths(inside, out);
            flush(&mut current, out);
            colons = 0;
            c = next;
        } else if let Some((_, next)) = c.token_tree() {
            flush(&mut current, out);
            colons = 0;
            c = next;
        } else {
            break;
        }
    }
    flush(&mut current, out);
}

/// The names the crate binds to paths: `use a::b as c` binds `c` to `a::b`, `extern crate std as x` binds `x` to
/// `std`, `type T = a::b` binds `T` to `a::b`. A name bound in several places keeps every binding (the check is
/// conservative: scopes are not told apart).
#[derive(Default)]
struct Names {
    /// Name → (target, whether the name differs from the target's last segment: a rename).
    bound: BTreeMap<String, BTreeSet<(Segments, bool)>>,
}

impl Names {
    fn bind(&mut self, name: String, target: Segments) {
        let renames = target.last() != Some(&name);
        self.bound
            .entry(name)
            .or_default()
            .insert((target, renames));
    }

    /// What a written path can stand for: itself, and the binding's target followed by the rest of the path for its
    /// first segment if that is a bound name, or for any later segment that is a renaming name (`crate::a::s::fs`
    /// with `pub use std as s` in `a`), expanded again. A name imported as itself is not expanded after the first
    /// segment (`a::Instant` names `a`'s `Instant`): that would only repeat it.
    fn expansions(&self, path: &[String]) -> BTreeSet<Segments> {
        let mut seen: BTreeSet<Segments> = BTreeSet::new();
        let mut todo: Vec<Segments> = vec![path.to_vec()];
        while let Some(p) = todo.pop() {
            // Bounded, whatever cycles the names make (`use a::b` in one module, `use b::a` in another).
            if seen.len() > 1024 || p.len() > 32 || !seen.insert(p.clone()) {
                continue;
            }
            for (i, seg) in p.iter().enumerate() {
                for (target, renames) in self.bound.get(seg).into_iter().flatten() {
                    // `pub use verify::{verify}` names the module `verify` in its own path: not a way through.
                    let through_itself = target.first() == Some(seg);
                    if (i == 0 || *renames) && !through_itself {
                        let mut q = target.clone();
                        q.extend_from_slice(&p[i + 1..]);
                        todo.push(q);
                    }
                }
            }
        }
        seen
    }
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut names = Vec::new();
        use_leaves(&mut Vec::new(), &u.tree, &mut |path, name| {
            if let Some(n) = name {
                names.push((n, path.to_vec()));
            }
        });
        for (n, p) in names {
            self.bind(n, p);
        }
    }

    fn visit_item_extern_crate(&mut self, e: &'ast syn::ItemExternCrate) {
        let krate = e.ident.unraw().to_string();
        let name = match &e.rename {
            Some((_, r)) => r.unraw().to_string(),
            None => krate.clone(),
        };
        self.bind(name, vec![krate]);
    }

    fn visit_item_type(&mut self, t: &'ast syn::ItemType) {
        if let syn::Type::Path(tp) = &*t.ty {
            if tp.qself.is_none() {
                self.bind(t.ident.unraw().to_string(), segments(&tp.path));
            }
        }
        visit::visit_item_type(self, t);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        match macro_body(m) {
            MacroBody::Items(file) => self.visit_file(&file),
            MacroBody::Exprs(exprs) => {
                for e in &exprs {
                    self.visit_expr(e);
                }
            }
            MacroBody::Paths(_) => {}
        }
    }
}

/// Compares every path the code writes, resolved, with [`FORBIDDEN_PATHS`].
struct Check<'a> {
    names: &'a Names,
    file: &'a str,
    found: &'a mut Vec<String>,
}

/// Does `path` reach a forbidden path: is it one, or below one? Besides the `std` paths, any `SystemTime` and any
/// `Instant::now` is refused whatever it resolves to (what the check refused when it read text).
fn reaches_forbidden(path: &[String]) -> bool {
    FORBIDDEN_PATHS
        .iter()
        .any(|f| path.len() >= f.len() && path.iter().zip(f.iter()).all(|(a, b)| a == b))
        || path.iter().any(|s| s == "SystemTime")
        || path.windows(2).any(|w| w[0] == "Instant" && w[1] == "now")
}

/// Would a glob of `prefix` bring a forbidden name into scope (`use std::*`, `use std::time::*`)?
fn glob_reaches_forbidden(prefix: &[String]) -> bool {
    reaches_forbidden(prefix)
        || FORBIDDEN_PATHS
            .iter()
            .any(|f| prefix.len() < f.len() && prefix.iter().zip(f.iter()).all(|(a, b)| a == b))
}

impl Check<'_> {
    fn check(&mut self, written: &[String]) {
        let bad: Vec<Segments> = self
            .names
            .expansions(written)
            .into_iter()
            .filter(|p| reaches_forbidden(p))
            .collect();
        // Name the `std` path it reaches where there is one (not only the bare `Instant::now` it also matches).
        if let Some(bad) = bad.iter().find(|p| p[0] == "std").or(bad.first()) {
            self.found.push(format!(
                "{}: `{}` (resolves to `{}`)",
                self.file,
                written.join("::"),
                bad.join("::")
            ));
        }
    }

    /// `<T>::f` and `<T as Trait>::f`: the type's path followed by the segments after the qualified position.
    fn check_qualified(&mut self, qself: &syn::QSelf, path: &syn::Path) {
        if let syn::Type::Path(tp) = &*qself.ty {
            let mut p = segments(&tp.path);
            p.extend(segments(path).into_iter().skip(qself.position));
            self.check(&p);
        }
    }
}

impl<'ast> Visit<'ast> for Check<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut leaves: Vec<(Segments, bool)> = Vec::new();
        use_leaves(&mut Vec::new(), &u.tree, &mut |path, name| {
            leaves.push((path.to_vec(), name.is_none()));
        });
        for (path, glob) in leaves {
            if glob {
                if let Some(bad) = self
                    .names
                    .expansions(&path)
                    .into_iter()
                    .find(|p| glob_reaches_forbidden(p))
                {
                    self.found.push(format!(
                        "{}: `{}::*` (a glob of `{}`)",
                        self.file,
                        path.join("::"),
                        bad.join("::")
                    ));
                }
            } else {
                self.check(&path);
            }
        }
    }

    fn visit_item_extern_crate(&mut self, e: &'ast syn::ItemExternCrate) {
        self.check(&[e.ident.unraw().to_string()]);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.check(&segments(p));
        visit::visit_path(self, p);
    }

    fn visit_expr_path(&mut self, e: &'ast syn::ExprPath) {
        if let Some(q) = &e.qself {
            self.check_qualified(q, &e.path);
        }
        visit::visit_expr_path(self, e);
    }

    fn visit_type_path(&mut self, t: &'ast syn::TypePath) {
        if let Some(q) = &t.qself {
            self.check_qualified(q, &t.path);
        }
        visit::visit_type_path(self, t);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        match macro_body(m) {
            MacroBody::Items(file) => self.visit_file(&file),
            MacroBody::Exprs(exprs) => {
                for e in &exprs {
                    self.visit_expr(e);
                }
            }
            MacroBody::Paths(paths) => {
                for p in paths {
                    self.check(&p);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The checker's own tests

fn check_one(source: &str) -> Vec<String> {
    impurities(&[("lib.rs".into(), source.into())])
}

#[test]
fn the_checker_passes_clean_code_and_mere_mentions() {
    let clean = r#"
        //! Mentions std::fs, std::net, SystemTime and Instant::now in a comment.
        use std::collections::{BTreeMap, BTreeSet};
        use std::{self as s, time::Duration};
        use std::time::Instant;
        pub mod fs { pub fn read() {} }
        /// Not the clock: a time the caller passed in.
        pub fn elapsed(since: Instant, now: Instant) -> Duration {
            let _ = "std::fs::read";
            let _: s::collections::BTreeMap<u8, u8> = BTreeMap::new();
            let _ = BTreeSet::<u8>::new();
            crate::fs::read();
            println!("{}", "std::net");
            assert_eq!(1, 1, "Instant::now is {}", 1);
            now.duration_since(since)
        }
    "#;
    assert_eq!(check_one(clean), Vec::<String>::new());
}

#[test]
fn the_checker_catches_every_spelling() {
    let cases = [
        "use std::fs;",
        "use std::{fs};",
        "use std::{collections::BTreeMap, net::{self as n}};",
        "use {std::fs::read};",
        "use ::std::fs::File as F;",
        "use std::fs as _;",
        "use std::{self as s}; fn f() { s::fs::read(\"x\"); }",
        "use std as s; use s::fs;",
        "fn f() { ::std::fs::read(\"x\"); }",
        "fn f() { std::r#fs::read(\"x\"); }",
        "fn f(_: std::net::TcpStream) {}",
        "fn f() -> Option<Vec<std::fs::File>> { None }",
        "extern crate std as x; fn f() { x::net::TcpStream::connect(\"a:1\"); }",
        "use std::*;",
        "use std::time::*;",
        "use std::time::Instant; fn f() { Instant::now(); }",
        "use std::time::{Instant as I}; fn f() { let _ = I::now(); }",
        "fn f() { let now = std::time::Instant::now; now(); }",
        "fn f() { <std::time::Instant>::now(); }",
        "type T = std::time::Instant; fn f() { T::now(); }",
        "use std::time::{SystemTime as Clock};",
        "fn f() { let _ = std::time::SystemTime::UNIX_EPOCH; }",
        "fn f() { println!(\"{:?}\", std::fs::read(\"x\")); }",
        "fn f() { m!(a b std::fs::read c); }",
        "macro_rules! m { () => { std::net::TcpListener::bind(\"a:1\") }; }",
        "m! { use std as q; } fn f() { q::fs::read(\"x\"); }",
        "mod a { pub use std::time as t; } fn f() { a::t::SystemTime::now(); }",
    ];
    for case in cases {
        assert!(!check_one(case).is_empty(), "not caught: {case}");
    }
}

#[test]
fn the_checker_follows_names_across_files_and_refuses_what_does_not_parse() {
    let files = [
        ("a.rs".to_string(), "pub use std as s;".to_string()),
        (
            "b.rs".to_string(),
            "fn f() { crate::a::s::fs::read(\"x\"); }".to_string(),
        ),
    ];
    let found = impurities(&files);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("b.rs: `crate::a::s::fs::read`"),
        "{found:?}"
    );
    assert!(!check_one("fn f( {").is_empty());
}
