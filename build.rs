//! Writes the pkg-config and CMake package files (build/c_package.rs) and generates
//! `include/signalr.h` from `src/ffi` with cbindgen, writing it only when it changed so
//! that builds do not loop and the committed header stays byte-identical.

use std::path::PathBuf;

#[path = "build/c_package.rs"]
mod c_package;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build/c_package.rs");
    println!("cargo:rerun-if-env-changed=CI");
    c_package::write(&root);

    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));

    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    config.after_includes = Some(format!(
        "\n#define SIGNALR_VERSION \"{version}\"\n#define SIGNALR_VERSION_MAJOR {major}\n\
         #define SIGNALR_VERSION_MINOR {minor}\n#define SIGNALR_VERSION_PATCH {patch}\n"
    ));
    // Only the C API: parsing src/ffi alone keeps the rest of the crate's public items (protocol
    // constants, transport types) out of the header.
    let bindings = match cbindgen::Builder::new().with_src(root.join("src/ffi/mod.rs")).with_config(config).generate() {
        Ok(b) => b,
        // In CI a stale header must not pass the freshness check (scripts/test-c.sh): fail here.
        Err(e) if std::env::var_os("CI").is_some() => panic!("cbindgen could not generate include/signalr.h: {e}"),
        Err(e) => {
            // A Rust compile error makes cbindgen fail too; let rustc report it instead.
            println!("cargo:warning=signalr.h not regenerated: {e}");
            return;
        }
    };
    let mut text = Vec::new();
    bindings.write(&mut text);
    let header = root.join("include").join("signalr.h");
    if std::fs::read(&header).ok().as_deref() != Some(&text[..]) {
        std::fs::create_dir_all(header.parent().unwrap()).expect("create include/");
        std::fs::write(&header, text).expect("write include/signalr.h");
    }
}
