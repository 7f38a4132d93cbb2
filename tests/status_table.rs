//! Keeps docs/c-api-statuses.md true: for every exported function of include/pwcache.h and every
//! status its "Returns" list names, the table names a test, and that test exists and provokes it.
//!
//! The header is parsed as cbindgen writes it: a `/** ... */` block, then the declaration.
//! A function's statuses are the `pw_status` values named in its "Returns:" paragraph. A table
//! row is `| `pw_function` | `PW_STATUS` | when | `file::test`, ... |`. A test cited from tests/
//! (C or Rust) must call the function and name the status (`CHECK_OK` counts as `PW_OK`). A unit
//! test under src/ may be cited only where no call can provoke the status (a panic needs a bug, an
//! old SQLite another system): it must name the status or its engine error kind, and for
//! `PW_PANIC` the function must run its body inside the guard that test checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

const HEADER: &str = "include/pwcache.h";
const TABLE: &str = "docs/c-api-statuses.md";

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Words of `text` that look like `PW_...` identifiers.
fn pw_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("PW_"))
}

/// Whether `text` contains `word` not as part of a longer identifier.
fn has_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// The values of `enum pw_status`.
fn statuses(header: &str) -> BTreeSet<String> {
    let start = header
        .find("typedef enum pw_status {")
        .expect("enum pw_status");
    let end = start + header[start..].find("} pw_status;").unwrap();
    header[start..end]
        .lines()
        .filter_map(|l| l.trim().split_once(" = ").map(|(name, _)| name))
        .filter(|name| name.starts_with("PW_"))
        .map(str::to_string)
        .collect()
}

/// Every function whose doc comment has a "Returns:" paragraph, with the statuses it names.
fn header_returns(header: &str) -> BTreeMap<String, BTreeSet<String>> {
    let known = statuses(header);
    let mut found = BTreeMap::new();
    let mut rest = header;
    while let Some(open) = rest.find("/**") {
        let close = open + rest[open..].find("*/").expect("a closed comment");
        let comment = &rest[open..close];
        let after = &rest[close + 2..];
        let declaration = &after[..after.find(';').unwrap_or(after.len())];
        rest = after;
        // The declared name: the first `pw_...(` of the declaration (not `(*pw_log_fn)(`).
        let Some(name) = declaration.match_indices("pw_").find_map(|(at, _)| {
            let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
            let len = declaration[at..].find(|c: char| !ident(c))?;
            let after_ident = declaration[..at].chars().next_back().is_some_and(ident);
            let called = declaration[at + len..].starts_with('(');
            (called && !after_ident).then(|| &declaration[at..at + len])
        }) else {
            continue;
        };
        let Some(returns) = comment.split(" * Returns:").nth(1) else {
            continue;
        };
        // The paragraph ends at the first empty comment line.
        let paragraph: Vec<&str> = returns
            .lines()
            .skip(1)
            .take_while(|l| l.trim() != "*")
            .collect();
        let named: BTreeSet<String> = paragraph
            .iter()
            .flat_map(|l| pw_words(l))
            .filter(|w| known.contains(*w))
            .map(str::to_string)
            .collect();
        assert!(
            !named.is_empty(),
            "{name}: a Returns list that names no status"
        );
        found.insert(name.to_string(), named);
    }
    found
}

/// A test cited by the table: a file (from the repository's root) and a function in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Cited {
    file: String,
    test: String,
}

/// The table: (function, status) -> the tests cited.
fn table(doc: &str) -> BTreeMap<(String, String), Vec<Cited>> {
    let mut rows = BTreeMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `pw_")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert!(cells.len() >= 4, "a row of four cells: {line}");
        let unquote = |cell: &str| cell.trim_matches('`').to_string();
        let key = (unquote(cells[0]), unquote(cells[1]));
        let cited: Vec<Cited> = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|quoted| quoted.split_once("::"))
            .map(|(file, test)| Cited {
                file: file.to_string(),
                test: test.to_string(),
            })
            .collect();
        assert!(
            rows.insert(key.clone(), cited).is_none(),
            "{key:?} has two rows"
        );
    }
    rows
}

/// The text of the function `name` in `source` (C, or Rust at any indentation): from its
/// definition to the closing brace at the definition's indentation.
fn body_of<'a>(source: &'a str, file: &str, name: &str) -> Option<&'a str> {
    let mut offset = 0;
    let mut start = None;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let defines = if file.ends_with(".rs") {
            trimmed.starts_with(&format!("fn {name}("))
                || trimmed.starts_with(&format!("pub fn {name}("))
        } else {
            // A C function: defined at the start of a line, its body opening on the same line.
            line.len() == trimmed.len()
                && line.trim_end().ends_with('{')
                && (line.contains(&format!(" {name}(")) || line.contains(&format!("*{name}(")))
        };
        if let Some((begin, indent)) = start {
            if line.len() - trimmed.len() == indent && trimmed.starts_with('}') {
                return Some(&source[begin..offset + line.len()]);
            }
        } else if defines {
            start = Some((offset, line.len() - trimmed.len()));
        }
        offset += line.len();
    }
    None
}

/// Whether `body` calls `function`, itself or through a helper of the same file that does
/// (`tier_size(&cache, L2)` calling `pw_cache_tier_size`).
fn calls(source: &str, file: &str, body: &str, function: &str) -> bool {
    let call = format!("{function}(");
    if body.contains(&call) {
        return true;
    }
    let called: BTreeSet<&str> = body
        .split('(')
        .filter_map(|before| {
            before
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
        })
        .filter(|name| !name.is_empty())
        .collect();
    called.into_iter().any(|helper| {
        body_of(source, file, helper).is_some_and(|helper_body| helper_body.contains(&call))
    })
}

/// The error kind of the engine a status comes from, as a unit test names it.
fn error_kind(status: &str) -> Option<&'static str> {
    Some(match status {
        "PW_NOT_FOUND" => "NotFound",
        "PW_INVALID_ARGUMENT" => "InvalidArgument",
        "PW_INVALID_JSON" => "InvalidJson",
        "PW_IO_ERROR" => "Io",
        "PW_STORAGE_ERROR" => "Storage",
        "PW_UNSUPPORTED" => "Unsupported",
        "PW_CRYPTO_ERROR" => "Crypto",
        "PW_INVALID_INPUT" => "InvalidInput",
        _ => return None,
    })
}

/// Whether the exported function `name` runs its body inside the panic guard.
fn guarded(name: &str) -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    fs::read_dir(&dir).unwrap().any(|file| {
        let source = fs::read_to_string(file.unwrap().path()).unwrap();
        let Some(at) = source.find(&format!("pub extern \"C\" fn {name}(")) else {
            return false;
        };
        let definition = &source[at..];
        let end = definition.find("\n}\n").unwrap_or(definition.len());
        let body = &definition[..end];
        [
            format!("guard(\"{name}\""),
            format!("with_cache(\"{name}\""),
        ]
        .iter()
        .any(|call| body.contains(call.as_str()))
    })
}

/// What is wrong with citing `cited` for `function` returning `status`, if anything.
fn check_citation(function: &str, status: &str, cited: &Cited) -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&cited.file);
    let Ok(source) = fs::read_to_string(&path) else {
        return Some(format!("{} does not exist", cited.file));
    };
    let Some(body) = body_of(&source, &cited.file, &cited.test) else {
        return Some(format!("{} has no function {}", cited.file, cited.test));
    };
    if cited.file.starts_with("tests/c/") {
        let file_name = Path::new(&cited.file)
            .file_stem()
            .unwrap()
            .to_string_lossy();
        if !has_word(&read("tests/c/CMakeLists.txt"), &file_name) {
            return Some(format!("{} is not a ctest test", cited.file));
        }
    } else if cited.file.starts_with("tests/") {
        let test_attribute = format!("#[test]\nfn {}(", cited.test);
        if !source.contains(&test_attribute) {
            return Some(format!("{}::{} is not a #[test]", cited.file, cited.test));
        }
    }
    if cited.file.starts_with("src/") {
        // A unit test: it names the status or the engine's error kind behind it.
        let named = has_word(body, status) || error_kind(status).is_some_and(|k| has_word(body, k));
        if !named {
            return Some(format!(
                "{}::{} does not name {status}",
                cited.file, cited.test
            ));
        }
        if status == "PW_PANIC" && !guarded(function) {
            return Some(format!("{function} does not run its body inside the guard"));
        }
        if status != "PW_PANIC" && !(function == "pw_cache_new" && status == "PW_UNSUPPORTED") {
            return Some(format!(
                "{}::{} is a unit test: cite a test that calls {function}",
                cited.file, cited.test
            ));
        }
        return None;
    }
    if !calls(&source, &cited.file, body, function) {
        return Some(format!(
            "{}::{} does not call {function}",
            cited.file, cited.test
        ));
    }
    let named = has_word(body, status) || (status == "PW_OK" && has_word(body, "CHECK_OK"));
    if !named {
        return Some(format!(
            "{}::{} does not check {status}",
            cited.file, cited.test
        ));
    }
    None
}

#[test]
fn every_status_the_header_names_has_a_test_in_the_table() {
    let returns = header_returns(&read(HEADER));
    assert!(
        returns.len() >= 20,
        "the header's functions were found: {returns:?}"
    );
    let rows = table(&read(TABLE));
    let mut problems = Vec::new();
    for (function, named) in &returns {
        for status in named {
            match rows.get(&(function.clone(), status.clone())) {
                None => problems.push(format!("{function} / {status}: no row in {TABLE}")),
                Some(cited) if cited.is_empty() => {
                    problems.push(format!("{function} / {status}: the row cites no test"));
                }
                Some(cited) => problems.extend(
                    cited
                        .iter()
                        .filter_map(|c| check_citation(function, status, c))
                        .map(|why| format!("{function} / {status}: {why}")),
                ),
            }
        }
    }
    for (function, status) in rows.keys() {
        if !returns.get(function).is_some_and(|s| s.contains(status)) {
            problems.push(format!(
                "{function} / {status}: in {TABLE} but not in the header's Returns list"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{TABLE} and {HEADER} disagree:\n{}",
        problems.join("\n")
    );
}

/// The parser itself, on a header excerpt: a checker that reads nothing would pass everything.
#[test]
fn the_parser_finds_each_functions_statuses() {
    let header = "typedef enum pw_status {\n  PW_OK = 0,\n  PW_NOT_FOUND = 1,\n  PW_PANIC = 8,\n\
                  } pw_status;\n/**\n * Does it.\n *\n * Returns:\n * - `PW_OK` on success;\n\
                  * - `PW_NOT_FOUND` when absent (see PW_TIER_L1);\n *\n * Threading: any.\n */\n\
                  enum pw_status pw_x(const char *k);\n/**\n * A callback.\n */\n\
                  typedef void (*pw_log_fn)(void *u);\n/**\n * No list.\n */\n\
                  bool pw_y(void);\n";
    let found = header_returns(header);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found["pw_x"].iter().map(String::as_str).collect::<Vec<_>>(),
        ["PW_NOT_FOUND", "PW_OK"]
    );
    let c = "static void a(void) {\n  CHECK_OK(pw_x(\"k\"));\n}\n\nstatic void b(void) {\n}\n";
    assert_eq!(
        body_of(c, "t.c", "a"),
        Some("static void a(void) {\n  CHECK_OK(pw_x(\"k\"));\n}\n")
    );
    assert!(has_word("x PW_OK;", "PW_OK") && !has_word("PW_OKAY", "PW_OK"));
}
