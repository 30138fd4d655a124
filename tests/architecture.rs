//! The shape of `src/`, checked: the top-level module graph, read from the
//! `crate::` paths, has no cycle (dependencies point down, see
//! docs/architecture.md; read the way `module_cycles.py` does, so both
//! agree), each item has one path (no glob or cross-module re-export), and
//! SQL lives only in its homes (`src/store/` and a domain's `store.rs`), and
//! no function of `src/executor/` is longer than 60 lines.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src`: its path relative to `src`, and its text.
fn sources(src: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("reading src") {
            let path = entry.expect("reading src").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = fs::read_to_string(&path).expect("reading a source file");
            let rel = path.strip_prefix(src).expect("under src").to_path_buf();
            out.push((rel, text));
        }
    }
    out.sort();
    out
}

/// Top-level module (`src/X.rs` or `src/X/`) → the files that make it.
fn modules(src: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rel, text) in sources(src) {
        let first = rel.components().next().expect("a component");
        let top = first.as_os_str().to_string_lossy();
        let top = top.strip_suffix(".rs").unwrap_or(&top).to_owned();
        if top == "main" || top == "lib" {
            continue;
        }
        out.entry(top).or_default().push(text);
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every module named as `crate::x` or as a first segment inside `crate::{...}`.
/// Unit tests (`#[cfg(test)] mod tests {` to the end) are left out: they may
/// reach anywhere.
fn named_modules(text: &str) -> BTreeSet<String> {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let preceded = text[..at].chars().next_back().is_some_and(is_ident);
        if preceded {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // First segment of each item at depth 0 of the group.
            let mut depth = 0;
            let mut expecting = true;
            let mut word = String::new();
            for c in group.chars() {
                if is_ident(c) {
                    if expecting {
                        word.push(c);
                    }
                    continue;
                }
                if !word.is_empty() {
                    names.insert(std::mem::take(&mut word));
                    expecting = false;
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => expecting = true,
                    _ => {}
                }
            }
            if !word.is_empty() {
                names.insert(word);
            }
        } else {
            let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            names.insert(name);
        }
    }
    names
}

fn graph(src: &Path) -> Graph {
    let mods = modules(src);
    mods.iter()
        .map(|(module, files)| {
            let edges = files
                .iter()
                .flat_map(|text| named_modules(text))
                .filter(|n| n != module && mods.contains_key(n))
                .collect();
            (module.clone(), edges)
        })
        .collect()
}

/// A path that comes back to where it started, if the graph has one.
fn a_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in &graph[node] {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let graph = graph(&src());
    assert!(graph.len() > 10, "too few modules read: {graph:?}");
    assert!(
        graph["routes"].contains("runs") && graph["runs"].contains("store"),
        "the edges were not read: {graph:?}"
    );
    if let Some(cycle) = a_cycle(&graph) {
        panic!(
            "the module graph has a cycle: {}; move what both need to a lower module",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_web_toolkit_imports_no_domain_module() {
    let graph = graph(&src());
    let allowed = ["error"];
    let stray: Vec<&String> = graph["web"]
        .iter()
        .filter(|m| !allowed.contains(&m.as_str()))
        .collect();
    assert!(stray.is_empty(), "web/ imports {stray:?}");
}

#[test]
fn a_group_import_names_each_first_segment() {
    let names = named_modules(
        "use crate::{\n    a::{b, c},\n    d::E,\n    f,\n};\nfn g() { crate::h::i() }",
    );
    let expected: BTreeSet<String> = ["a", "d", "f", "h"].map(String::from).into();
    assert_eq!(names, expected);
}

/// The re-exports (`pub use`, `pub(crate) use`, ...) of a file's text, each
/// from `use` to its `;`.
fn re_exports(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("pub") {
        let starts_line = text[..at]
            .chars()
            .rev()
            .take_while(|c| *c != '\n')
            .all(char::is_whitespace);
        let rest = &text[at + "pub".len()..];
        let rest = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or("", |(_, after)| after),
            None => rest,
        };
        if !starts_line || !rest.starts_with(" use ") {
            continue;
        }
        let end = rest.find(';').unwrap_or(rest.len());
        out.push(rest[" use ".len()..end].split_whitespace().collect());
    }
    out
}

/// A re-export that gives an item a second path: a glob (`pub use x::*`),
/// or an item of another module (`pub use crate::..`, `pub use super::..`).
/// A façade re-exports from its own private submodules only.
fn second_path(re_export: &str) -> bool {
    re_export.contains('*') || re_export.starts_with("crate::") || re_export.starts_with("super::")
}

#[test]
fn each_item_has_one_path() {
    let stray: Vec<String> = sources(&src())
        .iter()
        .flat_map(|(rel, text)| {
            re_exports(text)
                .into_iter()
                .filter(|r| second_path(r))
                .map(move |r| format!("{}: pub use {r}", rel.display()))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "a second path to an item (glob or another module's item re-exported): {stray:#?}; \
         name the defining module at the call instead"
    );
}

#[test]
fn a_glob_or_another_modules_item_re_exported_is_found() {
    let text = "pub use a::*;\n    pub(crate) use crate::b::{\n    C,\n    D,\n};\npub use e::F;\n// pub use g::*;\n";
    let found = re_exports(text);
    assert_eq!(found, ["a::*", "crate::b::{C,D,}", "e::F"]);
    let second: Vec<&String> = found.iter().filter(|r| second_path(r)).collect();
    assert_eq!(second, ["a::*", "crate::b::{C,D,}"]);
}

/// What sends SQL to the database: sqlx's query functions and macros, a raw
/// statement, a query builder, `COPY`, `LISTEN`.
const SQL_CALLS: [&str; 9] = [
    "sqlx::query",
    "query_as(",
    "query_as::<",
    "query_scalar",
    "query!(",
    "query_as!(",
    "raw_sql",
    "QueryBuilder",
    "copy_in_raw",
];

/// Where SQL may live: the runs' store (`src/store/`, the tables the
/// executor and `runs/` share) and each domain's own `store.rs`.
fn sql_home(rel: &Path) -> bool {
    rel.starts_with("store") || rel.file_name().is_some_and(|n| n == "store.rs")
}

/// The SQL calls of a file's text outside its unit tests, with line numbers.
fn sql_calls(text: &str) -> Vec<(usize, &'static str)> {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .flat_map(|(n, line)| {
            SQL_CALLS
                .iter()
                .filter(move |call| line.contains(**call))
                .map(move |call| (n + 1, *call))
        })
        .collect()
}

#[test]
fn sql_lives_only_in_its_homes() {
    let sources = sources(&src());
    let stray: Vec<String> = sources
        .iter()
        .filter(|(rel, _)| !sql_home(rel) && rel.file_name().is_none_or(|n| n != "tests.rs"))
        .flat_map(|(rel, text)| {
            sql_calls(text)
                .into_iter()
                .map(move |(line, call)| format!("{}:{line}: {call}", rel.display()))
        })
        .collect();
    assert!(
        stray.is_empty(),
        "SQL outside src/store/ and the domains' store.rs: {stray:#?}; \
         move the statement to its table's home and call it from there"
    );
    let homed = sources
        .iter()
        .filter(|(rel, text)| sql_home(rel) && !sql_calls(text).is_empty())
        .count();
    assert!(homed > 5, "too few files with SQL found: {homed}");
}

#[test]
fn an_sql_call_is_found_but_not_in_a_comment_or_a_unit_test() {
    let text = "fn a() { sqlx::query_scalar(\"select 1\") }\n// sqlx::query(\nfn b() { query_as::<_, (i64,)>(\"\") }\n#[cfg(test)]\nmod tests {\n    sqlx::query(\"\");\n}\n";
    let found = sql_calls(text);
    assert_eq!(
        found,
        [(1, "sqlx::query"), (1, "query_scalar"), (3, "query_as::<")]
    );
    assert!(sql_home(Path::new("store/runs.rs")));
    assert!(sql_home(Path::new("results/store.rs")));
    assert!(!sql_home(Path::new("results/mod.rs")));
}

/// Longest function the executor may have, in lines (signature to brace).
const MAX_EXECUTOR_FN_LINES: usize = 60;

/// A line with its string and char literals and its `//` comment blanked,
/// so only code braces are counted (as `fn_lengths.py` does).
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' => {
                // A char literal ('x', '\n', '{'); a lifetime has no closing quote.
                let rest: String = chars.clone().take(3).collect();
                let len = match rest.chars().next() {
                    Some('\\') => rest.find('\'').filter(|at| *at > 1).map(|at| at + 1),
                    Some(_) if rest.chars().nth(1) == Some('\'') => Some(2),
                    _ => None,
                };
                match len {
                    Some(n) => {
                        for _ in 0..n {
                            chars.next();
                        }
                    }
                    None => out.push(c),
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// The name of the function a line declares, if it does.
fn declared_fn(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        let modifier = word.starts_with("pub")
            || ["async", "const", "unsafe", "extern"].contains(&word)
            || word.starts_with('"');
        if word == "fn" {
            let name = words.next()?;
            return Some(name.split(['(', '<']).next().unwrap_or(name));
        }
        if !modifier {
            return None;
        }
    }
    None
}

/// Functions longer than `max` lines in a file's text: (name, first line,
/// length).
fn long_functions(text: &str, max: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<String> = text.lines().map(code_of).collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = declared_fn(line) else {
            continue;
        };
        let (mut depth, mut opened) = (0i64, false);
        for (at, body) in lines.iter().enumerate().skip(start) {
            for c in body.chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let bodiless = !opened && body.trim_end().ends_with(';');
            if bodiless || (opened && depth <= 0) {
                let length = at - start + 1;
                if opened && length > max {
                    out.push((name.to_owned(), start + 1, length));
                }
                break;
            }
        }
    }
    out
}

#[test]
fn no_executor_function_is_longer_than_60_lines() {
    let long: Vec<String> = sources(&src())
        .iter()
        .filter(|(rel, _)| rel.starts_with("executor"))
        .flat_map(|(rel, text)| {
            long_functions(text, MAX_EXECUTOR_FN_LINES)
                .into_iter()
                .map(move |(name, line, n)| format!("{}:{line}: {name}, {n} lines", rel.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "functions of src/executor/ over {MAX_EXECUTOR_FN_LINES} lines: {long:#?}; \
         split them (a struct with one method per event, as executor/follow.rs)"
    );
}

#[test]
fn a_long_function_is_measured_from_its_signature_to_its_closing_brace() {
    let body = "    let c = '{';\n    let s = \"}}\"; // }\n".repeat(30);
    let text = format!("/// doc\npub(crate) async fn long<'a>(x: &'a str) {{\n{body}}}\nfn short() {{}}\ntrait T {{ fn f(&self); }}\n");
    assert_eq!(long_functions(&text, 60), [("long".to_owned(), 2, 62)]);
    assert!(long_functions(&text, 62).is_empty());
}
