//! Repository rules, checked as ordinary tests (rust-analyzer's tidy): the domain's
//! dependency ban, a `//!` line opening every Rust file, an ARCHITECTURE.md section for
//! every crate, and the crate graph ARCHITECTURE.md draws equal to cargo's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root (xtask lives one level below it).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Every `.rs` file under the workspace's source directories, skipping build output.
pub(crate) fn rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = ["crates", "tests", "xtask", "bench"]
        .iter()
        .map(|dir| root().join(dir))
        .collect();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "target") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The workspace's crates and their workspace dependencies (normal edges), by directory
/// name (`crates/domain` → `domain`; `tests`, `bench`, `xtask` by their own), read from
/// `cargo metadata`.
pub(crate) fn crate_graph() -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let output = crate::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output()
        .map_err(|error| format!("cargo metadata: could not start: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("cargo metadata: unreadable output: {error}"))?;
    let packages = metadata
        .get("packages")
        .and_then(serde_json::Value::as_array)
        .ok_or("cargo metadata: no packages")?;
    let dir_of = |manifest: &str| {
        Path::new(manifest)
            .parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
    };
    let mut graph = BTreeMap::new();
    for package in packages {
        let Some(name) = package
            .get("manifest_path")
            .and_then(serde_json::Value::as_str)
            .and_then(dir_of)
        else {
            continue;
        };
        let dependencies = package
            .get("dependencies")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter(|dependency| {
                dependency
                    .get("kind")
                    .is_some_and(serde_json::Value::is_null)
            })
            .filter_map(|dependency| dependency.get("path")?.as_str())
            .filter_map(|path| {
                Path::new(path)
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .collect();
        graph.insert(name, dependencies);
    }
    Ok(graph)
}

/// The crate graph as ARCHITECTURE.md draws it: the lines `crate → dep, dep` of its
/// fenced `text` block under "Crate graph".
pub(crate) fn documented_graph(architecture: &str) -> BTreeMap<String, BTreeSet<String>> {
    let Some((_, after)) = architecture.split_once("## Crate graph") else {
        return BTreeMap::new();
    };
    let Some((_, block)) = after.split_once("```text\n") else {
        return BTreeMap::new();
    };
    let block = block.split("```").next().unwrap_or_default();
    block
        .lines()
        .filter_map(|line| {
            let (name, dependencies) = line.split_once('→')?;
            Some((
                name.trim().to_owned(),
                dependencies
                    .split(',')
                    .map(str::trim)
                    .filter(|dependency| !dependency.is_empty() && *dependency != "-")
                    .map(str::to_owned)
                    .collect(),
            ))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    fn architecture() -> String {
        std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md")
    }

    #[test]
    fn the_domain_depends_on_no_runtime_sql_or_http_crate() {
        crate::domain_dependency_ban().unwrap();
    }

    #[test]
    fn every_rust_file_opens_with_a_doc_comment_saying_what_it_is() {
        let missing: Vec<String> = rust_files()
            .into_iter()
            .filter(|path| {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                !text
                    .lines()
                    .find(|line| !line.trim().is_empty() && !line.starts_with("#!["))
                    .is_some_and(|line| line.starts_with("//!"))
            })
            .map(|path| path.display().to_string())
            .collect();
        assert!(
            missing.is_empty(),
            "files without a `//!` line: {missing:#?}"
        );
    }

    #[test]
    fn architecture_md_has_a_section_for_every_crate() {
        let architecture = architecture();
        let crates = std::fs::read_dir(root().join("crates")).unwrap();
        let mut missing = Vec::new();
        for entry in crates.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !architecture.contains(&format!("### `crates/{name}`")) {
                missing.push(name);
            }
        }
        for name in ["tests", "xtask", "bench"] {
            if !architecture.contains(&format!("### `{name}`")) {
                missing.push(name.to_owned());
            }
        }
        assert!(
            missing.is_empty(),
            "ARCHITECTURE.md has no section for {missing:?}"
        );
    }

    #[test]
    fn the_crate_graph_in_architecture_md_is_cargos() {
        let actual = crate_graph().unwrap();
        let documented = documented_graph(&architecture());
        assert_eq!(
            documented,
            actual,
            "ARCHITECTURE.md's crate graph differs from cargo metadata's; it should read:\n{}",
            actual
                .iter()
                .map(|(name, dependencies)| {
                    let list: Vec<&str> = dependencies.iter().map(String::as_str).collect();
                    let list = if list.is_empty() {
                        "-".to_owned()
                    } else {
                        list.join(", ")
                    };
                    format!("{name} → {list}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
