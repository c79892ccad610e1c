//! The official JSON-Schema-Test-Suite (draft 2020-12, every required file) through the gateway's contract
//! path: each schema compiled as a store schema is (full validator and, where its keywords allow, the single
//! pass), each instance checked as a request body is (`check_request_body`: the strict reading, the single
//! pass, then the full validator), and, separately, by the full validator alone. Where the gateway differs from
//! the suite, the case must be listed in the one table of `docs/contracts-conformance.md`, and every case listed
//! there must still differ: a new deviation fails this test, and so does a fixed one left in the table.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use bytes::Bytes;
use penghubung::contract::check::check_request_body;
use penghubung::contract::compile::Compiler;
use penghubung::contract::{json, FORMATS};
use serde_json::Value;

/// One case, as the table names it: file, group description, test description (`*`: the whole group).
type Case = (String, String, String);

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The rows of the deviation table: case → (expected, gateway).
fn documented() -> HashMap<Case, (String, String)> {
    let text = std::fs::read_to_string(workspace().join("docs/contracts-conformance.md")).unwrap();
    let mut rows = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<String> = split_row(line);
        assert_eq!(cells.len(), 6, "a row of the deviation table has 6 cells: {line}");
        let unquote = |s: &str| s.trim().trim_matches('`').to_string();
        let case = (unquote(&cells[0]), unquote(&cells[1]), unquote(&cells[2]));
        let verdicts = (cells[3].trim().to_string(), cells[4].trim().to_string());
        assert!(rows.insert(case.clone(), verdicts).is_none(), "listed twice: {case:?}");
    }
    rows
}

/// The cells of a Markdown table row (`\|` is a `|` inside a cell).
fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            other => cells.last_mut().unwrap().push(other),
        }
    }
    cells
}

fn verdict(valid: bool) -> String {
    if valid { "valid" } else { "invalid" }.to_string()
}

#[test]
fn the_official_test_suite_passes_except_the_documented_deviations() {
    let directory = workspace().join("tests/fixtures/json-schema-test-suite/draft2020-12");
    let mut files: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the suite is vendored ({} files)", files.len());

    let mut found: HashMap<Case, (String, String)> = HashMap::new();
    let (mut instances, mut groups, mut single_pass_groups) = (0, 0, 0);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let suite: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for group in suite.as_array().unwrap() {
            groups += 1;
            let description = group["description"].as_str().unwrap().to_string();
            let schema = &group["schema"];
            let store: HashMap<&str, &Value> = [("suite/schema.json", schema)].into_iter().collect();
            let mut compiler = Compiler::new(&store, FORMATS);
            let compiled = match compiler.schema("suite/schema.json") {
                Ok(compiled) => compiled,
                Err(e) => {
                    if std::env::var_os("SUITE_DEBUG").is_some() {
                        eprintln!("{name} / {description}: {e}");
                    }
                    // refused when the snapshot loads: no instance is ever accepted
                    found.insert((name.clone(), description, "*".into()), ("-".into(), "refused at load".into()));
                    continue;
                }
            };
            single_pass_groups += usize::from(compiled.single_pass.is_some());
            for test in group["tests"].as_array().unwrap() {
                instances += 1;
                let expected = test["valid"].as_bool().unwrap();
                let body = Bytes::from(serde_json::to_vec(&test["data"]).unwrap());
                let case = (name.clone(), description.clone(), test["description"].as_str().unwrap().to_string());
                // the contract path: strict reading, single pass, full validator
                let contract = check_request_body(&body, &compiled).is_ok();
                // the full validator alone, on the strictly read document
                let full = json::parse(&body, compiled.max_depth).is_ok_and(|value| compiled.full.is_valid(&value));
                // the single pass never accepts what the suite refuses
                let single_pass_accepts = compiled.accepts_in_single_pass(&body);
                assert!(
                    !single_pass_accepts || expected,
                    "the single pass accepts an invalid instance: {case:?} ({})",
                    test["data"]
                );
                assert_eq!(contract, full, "the contract path and the full validator disagree on {case:?}");
                if contract != expected {
                    found.insert(case, (verdict(expected), verdict(contract)));
                }
            }
        }
    }

    let table = documented();
    let mut report = vec![];
    for (case, verdicts) in &found {
        match table.get(case) {
            None => report.push(format!(
                "new deviation, not in the table: | `{}` | `{}` | `{}` | {} | {} |",
                case.0,
                case.1.replace('|', "\\|"),
                case.2.replace('|', "\\|"),
                verdicts.0,
                verdicts.1
            )),
            Some(listed) if listed != verdicts => {
                report.push(format!("{case:?}: the table says {listed:?}, the gateway gives {verdicts:?}"))
            }
            Some(_) => {}
        }
    }
    let fixed: BTreeSet<_> = table.keys().filter(|case| !found.contains_key(*case)).collect();
    for case in fixed {
        report.push(format!("fixed (or renamed), remove it from the table: {case:?}"));
    }
    report.sort();
    assert!(report.is_empty(), "docs/contracts-conformance.md is out of date:\n{}", report.join("\n"));
    eprintln!(
        "JSON-Schema-Test-Suite draft 2020-12: {} files, {groups} groups ({single_pass_groups} with a single pass), \
         {instances} instances, {} documented deviations",
        files.len(),
        found.len()
    );
}
