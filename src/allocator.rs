//! Process-wide allocator settings for tensor workloads. The `kiln` binary applies them first
//! thing; an application embedding kiln's crates should call [`keep_freed_memory`] at the top of
//! its `main` too.

/// glibc's malloc serves blocks above a moving threshold (128 KiB at first) with fresh mmaps and
/// unmaps them on free, so every tensor of a training step or an inference batch — the same sizes
/// step after step — is page-faulted and zeroed anew by the kernel: that cost kiln a third of its
/// training throughput and half its inference throughput (BENCHMARKS.md). Blocks up to 32 MiB
/// (glibc's ceiling for this setting) now come from the heap, and freed memory stays there
/// for the next step instead of going back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters (under glibc's arena locks). A refusal
    // (it returns 0) leaves glibc's defaults, which are merely slower.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
