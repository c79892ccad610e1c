//! The store's documents (`store::validate`, `store::load_documents`) and `penghubung check`'s compilation
//! (`check::compile`), on the baseline documents of `policies/` mutated (TOML and JSON syntax as tokens) and on
//! arbitrary text: no panic, and every problem names the document's file, with a line inside it; a syntax error
//! and a schema violation at a key name its line. A mutated document that parses cleanly is, one time in four,
//! also loaded into the whole baseline store and compiled with it, as `check` does.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use penghubung::diagnostics::Diagnostic;
use penghubung::store::validate::{parse_document, parse_schema};
use penghubung::store::{
    load_documents, ClientDoc, DocumentKind, DocumentStore, GrantDoc, OpdDoc, OperatorDoc, ServiceDoc, StoreError,
    StoredDocument, TierDoc,
};
use penghubung_fuzz::seeded_input;

const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\r",
    b" ",
    b"=",
    b"\"",
    b"'",
    b"\"\"\"",
    b"'''",
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b",",
    b".",
    b"#",
    b"\\",
    b"\\u",
    b"\\U0010FFFF",
    b"\\ud800",
    b"0",
    b"-0",
    b"1e999",
    b"nan",
    b"inf",
    b"-inf",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"0x",
    b"1979-05-27T07:32:00Z",
    b"true",
    b"false",
    b"\x00",
    b"\xc3\xa9",
    b"\xef\xbf\xbd",
    b"\xe2\x80\xae",
    b"id = \"x\"\n",
    b"[upstream]\n",
    b"[[operations]]\n",
    b"a.b.c = 1\n",
    b"\"$ref\": \"#/x\"",
    b"\"type\": 1",
    b"null",
    b"{}",
    b"[]",
    b"\"\": ",
];

/// The baseline documents: store key and text.
fn baseline() -> &'static [(String, String)] {
    static BASELINE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let mut found = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let key = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                    found.push((key, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        found.sort();
        assert!(found.len() > 10, "the baseline documents are in policies/");
        found
    })
}

/// The baseline with one document replaced, held in memory.
struct MemoryStore(Vec<StoredDocument>);

impl DocumentStore for MemoryStore {
    fn list(&self) -> Result<(Vec<StoredDocument>, Vec<Diagnostic>), StoreError> {
        Ok((self.0.clone(), Vec::new()))
    }
    fn put(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn delete(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn watch_dir(&self) -> Option<PathBuf> {
        None
    }
    fn describe(&self) -> String {
        "memory".into()
    }
    fn list_with_generation(&self) -> Result<penghubung::store::Listing, StoreError> {
        Ok(penghubung::store::Listing { documents: self.0.clone(), notes: Vec::new(), generation: 0 })
    }
    fn generation(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    fn commit(
        &self,
        _: u64,
        _: &[(String, Option<String>)],
        _: &[penghubung::store::journal::JournalEntry],
        _: &penghubung::store::ChangeMeta,
    ) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("the fuzz target's store is read-only".into()))
    }
}

/// Every problem names `origin`'s file (or another document of the store), with a line inside its text.
fn assert_well_placed(problems: &[Diagnostic], texts: &[(String, String)], input: &str) {
    for problem in problems {
        let Some((_, text)) = texts.iter().find(|(origin, _)| *origin == problem.file) else {
            panic!("{problem:?} names no document\n{input:?}");
        };
        let lines = text.split('\n').count();
        assert!(problem.line <= lines, "line {} of {lines}: {problem:?}\n{input:?}", problem.line);
        if problem.message.starts_with("invalid TOML") || problem.message.starts_with("invalid JSON") {
            assert!(problem.line >= 1, "a syntax error without its line: {problem:?}\n{input:?}");
        }
        if problem.message.starts_with("`/") {
            assert!(problem.line >= 1, "a violation at a key without its line: {problem:?}\n{input:?}");
        }
    }
}

fn parse(kind: DocumentKind, origin: &str, text: &str) -> Vec<Diagnostic> {
    fn problems<T>(result: Result<T, Vec<Diagnostic>>) -> Vec<Diagnostic> {
        result.err().unwrap_or_default()
    }
    match kind {
        DocumentKind::Opd => problems(parse_document::<OpdDoc>(kind, origin, text)),
        DocumentKind::Service => problems(parse_document::<ServiceDoc>(kind, origin, text)),
        DocumentKind::Client => problems(parse_document::<ClientDoc>(kind, origin, text)),
        DocumentKind::Grant => problems(parse_document::<GrantDoc>(kind, origin, text)),
        DocumentKind::Tier => problems(parse_document::<TierDoc>(kind, origin, text)),
        DocumentKind::Operator => problems(parse_document::<OperatorDoc>(kind, origin, text)),
        DocumentKind::Schema => problems(parse_schema(origin, text)),
    }
}

fn check(input: &[u8]) {
    let Some((&choice, rest)) = input.split_first() else { return };
    let documents = baseline();
    let (key, original) = &documents[usize::from(choice) % documents.len()];
    let bytes = seeded_input(&[original.as_bytes()], TOKENS, rest);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let kind = DocumentKind::of_key(key).unwrap();
    let origin = format!("store/{key}");
    let problems = parse(kind, &origin, &text);
    assert_well_placed(&problems, &[(origin.clone(), text.clone())], &text);

    if problems.is_empty() && choice % 4 == 0 {
        let mut stored = Vec::new();
        let mut texts = Vec::new();
        for (other_key, other_text) in documents {
            let text = if other_key == key { text.clone() } else { other_text.clone() };
            let origin = format!("store/{other_key}");
            texts.push((origin.clone(), text.clone()));
            let kind = DocumentKind::of_key(other_key).unwrap();
            stored.push(StoredDocument { kind, key: other_key.clone(), origin, text });
        }
        let (docs, mut problems) = load_documents(&MemoryStore(stored));
        let config = penghubung::config::Config::embedded_default(Path::new("/nonexistent"));
        if let Err(mut found) = penghubung::check::compile(&config, &docs) {
            problems.append(&mut found);
        }
        assert_well_placed(&problems, &texts, &text);
    }
}

#[test]
fn store_documents() {
    penghubung_fuzz::fuzz_bytes("store_documents", check);
}

/// Every baseline document as it is passes, alone and in its store.
#[test]
fn store_documents_baseline_is_clean() {
    for (index, (key, text)) in baseline().iter().enumerate() {
        let kind = DocumentKind::of_key(key).unwrap();
        assert_eq!(parse(kind, key, text), Vec::new(), "{key}");
        check(&[(index * 8 % 256) as u8, 1, 0]);
    }
}
