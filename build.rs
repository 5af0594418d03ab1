//! Embeds every SQL file of `migrations/<backend>/` into the binary, in file-name order.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let out = Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs");
    let root = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("migrations");
    let mut code = String::new();
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
        for file in files {
            let name = file.file_stem().unwrap().to_string_lossy().into_owned();
            code.push_str(&format!(
                "    ({name:?}, include_str!({:?})),\n",
                file.display().to_string()
            ));
        }
        code.push_str("];\n");
    }
    fs::write(out, code).unwrap();
}
