//! The `penghubung` binary. All behaviour lives in the library; see `cli.rs`.

fn main() {
    std::process::exit(penghubung::cli::run());
}
