//! The billing core (the rules, the engine and the values they compute with) is pure:
//! it names no file format, store, runtime, command line or environment, and reads no
//! clock. Turning stored columns into the core's row views is the lake adapter's job.
//! This test keeps the boundary: a core file that names any of these fails it.

use std::path::Path;

/// The core's files: every file under `src/rules/` and `src/engine/`, the FOCUS mapping
/// and the value types.
fn core_files() -> Vec<std::path::PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<_> = ["rules", "engine"].iter().flat_map(|d| std::fs::read_dir(src.join(d)).unwrap().map(|e| e.unwrap().path())).collect();
    files.extend(["focus.rs", "decimal.rs", "model.rs", "time.rs", "text.rs"].map(|f| src.join(f)));
    files.sort();
    files
}

/// What the core must not name: adapters, their formats and runtimes, the command
/// line, the environment and the clock.
const FORBIDDEN: &[&str] = &[
    "crate::lake",
    "lake::",
    "arrow",
    "parquet",
    "object_store",
    "tokio",
    "clap",
    "std::env",
    "env::var",
    "Utc::now",
    "Local::now",
    "SystemTime",
    "Instant::now",
    "crate::jobs",
    "crate::cost",
    "crate::generate",
];

/// The forbidden names a source names, outside comments, with their line numbers.
fn violations(source: &str) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for f in FORBIDDEN {
            if code.contains(f) {
                found.push((n + 1, *f));
            }
        }
    }
    found
}

#[test]
fn the_core_names_no_adapter_format_runtime_or_clock() {
    let files = core_files();
    assert!(files.len() >= 14, "the core's files are found: {files:?}");
    let mut bad = Vec::new();
    for f in &files {
        let source = std::fs::read_to_string(f).unwrap();
        for (line, name) in violations(&source) {
            bad.push(format!("{}:{line}: names `{name}`", f.display()));
        }
    }
    assert!(bad.is_empty(), "the core must stay pure:\n{}", bad.join("\n"));
}

/// The check itself catches what it must, and leaves comments alone.
#[test]
fn the_boundary_check_sees_imports_and_clock_reads() {
    assert_eq!(violations("use crate::lake::inputs::UsageChunk;"), vec![(1, "crate::lake"), (1, "lake::")]);
    assert_eq!(violations("fn f(a: &arrow_array::StringArray) {}"), vec![(1, "arrow")]);
    assert_eq!(violations("let t = chrono::Utc::now();"), vec![(1, "Utc::now")]);
    assert_eq!(violations("let v = std::env::var(\"X\");"), vec![(1, "std::env"), (1, "env::var")]);
    assert!(violations("// the lake adapter turns arrow columns into rows").is_empty());
}
