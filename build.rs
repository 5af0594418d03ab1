//! Embeds into the binary every SQL file of `migrations/<backend>/` (in file-name order) and
//! every file of the web client in `web/`.
use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=web");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    fs::write(
        out.join("migrations.rs"),
        migrations(&root.join("migrations")),
    )
    .unwrap();
    fs::write(out.join("web_files.rs"), web_files(&root.join("web"))).unwrap();
}

/// The migrations of both backends, in file-name order; they must have the same names (the
/// newest one is the schema version `--version` and `/readyz` report).
fn migrations(root: &Path) -> String {
    let mut code = String::new();
    let mut names: Vec<Vec<String>> = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let dir = root.join(backend);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        code.push_str(&format!(
            "pub const {}: &[(&str, &str)] = &[\n",
            backend.to_uppercase()
        ));
        let mut these = Vec::new();
        for file in files {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            these.push(name.clone());
            code.push_str(&format!(
                "    ({name:?}, include_str!({:?})),\n",
                file.display().to_string()
            ));
        }
        code.push_str("];\n");
        names.push(these);
    }
    assert_eq!(
        names[0], names[1],
        "migrations/sqlite and migrations/postgres must hold the same migrations"
    );
    let newest = names[0].last().expect("at least one migration");
    println!("cargo:rustc-env=SIMPLE_CHAT_SCHEMA={newest}");
    code
}

/// `pub const WEB: &[(&str, &[u8])]`: each file's path relative to `web/` and its bytes.
fn web_files(root: &Path) -> String {
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort();
    let mut code = String::from("pub const WEB: &[(&str, &[u8])] = &[\n");
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    code
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
