//! kiln's host loops (GELU, AdamW) compiled for the CPU they run on. The workspace builds for
//! baseline x86-64 (SSE2, 4 lanes) so that one binary runs everywhere; burn's kernels choose
//! AVX-512 or AVX2 at run time (`x86-v4`), and [`vectorized`] does the same for kiln's own.

/// Runs `f`, a loop over slices, compiled for AVX-512 (16 lanes) or AVX2 (8) where the CPU has
/// them. The results are the same bit for bit on every path: Rust never contracts a multiply and
/// an add into an FMA on its own, and every lane rounds as the scalar code does.
#[inline]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { with_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

// LLVM inlines `f` into these (its only call site), so its loops are compiled with their
// features; the speed-up measured in BENCHMARKS.md (AdamW 5.8 → 2.8–3.1 s an epoch) shows it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
