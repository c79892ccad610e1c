//! The `penghubung` binary. All behaviour lives in the library; see `cli.rs`.

/// mimalloc instead of glibc's malloc: the data plane allocates on one thread and frees on another (records
/// handed to the audit writer, buffers handed between tasks), which glibc serialises on its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(penghubung::cli::run());
}
