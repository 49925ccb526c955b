// alexnet_prelude.cuh: the shape-generic half of every generated network's CUDA source, shipped once in the
// AlexNetCompiler runtime (embedded resource, exposed as AlexNetCompiler.Cuda.CudaPrelude) instead of being
// copied into each network. Generated sources #include it; the runtime hands it to NVRTC as a named header.
// Tiled GEMM (FP32 FMA, or TF32 tensor cores via inline PTX mma.sync when ALEXNET_TF32 is defined) and the
// layer templates; each network instantiates them with its exact shapes as template arguments, so every
// constant is baked in. Free of CUDA toolkit headers on purpose: NVRTC runs without the toolkit installed.
#ifndef ALEXNET_PRELUDE_CUH
#define ALEXNET_PRELUDE_CUH

// ALEXNET_PRELUDE_VERSION (generated sources check it) and ALEXNET_THREADS (threads per block) are defined just
// above by the runtime, from the contract it shares with the generator (src/Common/CudaContract.cs).

// ---------------------------------------------------------------------------------------------------------
// Common code (shape-generic templates). Tensors are float32 NCHW, batch-major; indices fit in int32
// (the runtime checks maxBatch against the largest buffer).
// ---------------------------------------------------------------------------------------------------------
typedef unsigned long long u64;


// Dropout keep decision, bit-identical to the CPU backend's DropoutKernels.Keep: a pure function of
// (seed, layer index, flat element index over [batch, features]), so backward recomputes the mask instead of
// storing it. Layer seed = seed + layer * golden; hash = mix(mix(layer seed + golden) + index * golden) with
// SplitMix64's finaliser (Steele et al. 2014); kept when the top 24 bits >= round(p * 2^24); kept values
// are scaled by 1 / (1 - p) (inverted dropout).
__device__ __forceinline__ u64 splitmix64_mix(u64 z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ float dropout_multiplier(u64 seed, u64 layer, u64 index, float p)
{
    const u64 golden = 0x9E3779B97F4A7C15ull;
    u64 hash = splitmix64_mix(splitmix64_mix(seed + layer * golden + golden) + index * golden);
    u64 threshold = (u64)rint((double)p * 16777216.0);
    return (hash >> 40) >= threshold ? 1.0f / (1.0f - p) : 0.0f;
}

// ---- GEMM: C[M x N] = A[M x K] * B[K x N] over k in [k_begin, k_end), one BM x BN tile per 256-thread block ----
// The problem type P supplies a(m, k), b(k, n) (called only in range) and store(m, n, value) (called only
// for m < M, n < N), plus A_K_CONTIGUOUS / B_K_CONTIGUOUS: whether consecutive k are adjacent in memory,
// which decides how the 256 threads walk the tile when loading (coalescing).
//
// The block tile is chosen at compile time: -DALEXNET_GEMM_BM=64|128 -DALEXNET_GEMM_BN=64|128 (64 x 64 when
// neither is given). The runner compiles one module per tile it is asked for and, when given several, times
// every GEMM kernel with each and keeps the fastest per kernel (CudaRunnerOptions.GemmTiles); grids come from
// the launch plan's GEMM extents divided by the tile, so the generated source is the same for every tile.
#ifndef ALEXNET_GEMM_BM
#define ALEXNET_GEMM_BM 64
#endif
#ifndef ALEXNET_GEMM_BN
#define ALEXNET_GEMM_BN 64
#endif
#if !((ALEXNET_GEMM_BM == 64 || ALEXNET_GEMM_BM == 128) && (ALEXNET_GEMM_BN == 64 || ALEXNET_GEMM_BN == 128))
#error "ALEXNET_GEMM_BM and ALEXNET_GEMM_BN must each be 64 or 128"
#endif
// GEMM kernels are declared with ALEXNET_GEMM_LAUNCH_BOUNDS. With TF32 the 128 x 128 tile asks for two blocks per
// SM, which caps a thread at 128 registers without spilling (left alone, ptxas takes a few more, and one block of
// eight warps is then all an SM holds). Everything else keeps plain bounds: in FP32 the 128 x 128 tile's 64
// accumulators and 16 operands need more than 128 registers (capped, it spills), and naming a minimum of blocks,
// even one, changes ptxas' heuristics (GEMMs with a single k-tile then took 146 registers instead of 32..48).
// The autotuner weighs the lower occupancy of a large tile against its reuse. CI checks the ptxas reports.
#if defined(ALEXNET_TF32) && ALEXNET_GEMM_BM * ALEXNET_GEMM_BN >= 128 * 128
#define ALEXNET_GEMM_LAUNCH_BOUNDS __launch_bounds__(ALEXNET_THREADS, 2)
#else
#define ALEXNET_GEMM_LAUNCH_BOUNDS __launch_bounds__(ALEXNET_THREADS)
#endif
#define GEMM_BM ALEXNET_GEMM_BM
#define GEMM_BN ALEXNET_GEMM_BN
#define GEMM_BK 16
// Elements of the A (B) tile each thread loads per k-tile: BM * BK / 256.
#define GEMM_A_LOADS (GEMM_BM / 16)
#define GEMM_B_LOADS (GEMM_BN / 16)
// Rows of BM + 8 floats (72 or 136, both 8 mod 32): the TF32 fragment reads (8 k-rows x 4 columns per warp)
// then hit 32 distinct banks.
#define GEMM_LDA (GEMM_BM + 8)
#define GEMM_LDB (GEMM_BN + 8)

// An empty kernel alexnet_gemm_tile_<BM>x<BN> names the tile in every compiled module, so a loader (the tests'
// CUDA emulator) can tell which tile a CUBIN was built with.
#define GEMM_TILE_MARKER_KERNEL(bm, bn) extern "C" __global__ void alexnet_gemm_tile_##bm##x##bn() {}
#define GEMM_TILE_MARKER(bm, bn) GEMM_TILE_MARKER_KERNEL(bm, bn)
GEMM_TILE_MARKER(ALEXNET_GEMM_BM, ALEXNET_GEMM_BN)

// The value unchanged, but unknown to the compiler's optimiser (an empty move in PTX).
#ifndef ALEXNET_EMULATED_DEVICE
__device__ __forceinline__ int opaque_int(int x)
{
    asm("mov.b32 %0, %0;" : "+r"(x));
    return x;
}
#else
__device__ __forceinline__ int opaque_int(int x) { return x; }
#endif

// (A CPU emulator of these kernels, used by the tests, supplies its own to_tf32 and mma_m16n8k8_tf32.)
#if defined(ALEXNET_TF32) && !defined(ALEXNET_EMULATED_DEVICE)
__device__ __forceinline__ unsigned to_tf32(float x)
{
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// D = A(16x8, row) * B(8x8, col) + D, TF32 inputs, FP32 accumulate (PTX ISA: mma.m16n8k8).
__device__ __forceinline__ void mma_m16n8k8_tf32(float* d, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1)
{
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
#endif

// Where thread t's i-th load of a k-tile lands: row (m or n) and k within the tile. K-contiguous operands put 16
// consecutive threads along k (coalesced 64-byte runs); the others put consecutive threads along the row.
template <bool K_CONTIGUOUS, int ROWS>
__device__ __forceinline__ void gemm_load_slot(int t, int i, int& row, int& k)
{
    row = K_CONTIGUOUS ? t / GEMM_BK + (ALEXNET_THREADS / GEMM_BK) * i : t % ROWS;
    k = K_CONTIGUOUS ? t % GEMM_BK : t / ROWS + (ALEXNET_THREADS / ROWS) * i;
}

template <class P>
__device__ __forceinline__ void gemm_load_tile(const P& p, int M, int N, int m0, int n0, int k0, int k_end, float (&ra)[GEMM_A_LOADS], float (&rb)[GEMM_B_LOADS])
{
    const int t = threadIdx.x;
#pragma unroll
    for (int i = 0; i < GEMM_A_LOADS; ++i)
    {
        int mm, ka;
        gemm_load_slot<P::A_K_CONTIGUOUS, GEMM_BM>(t, i, mm, ka);
        int m = m0 + mm, k = k0 + ka;
        ra[i] = (m < M && k < k_end) ? p.a(m, k) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < GEMM_B_LOADS; ++i)
    {
        int nn, kb;
        gemm_load_slot<P::B_K_CONTIGUOUS, GEMM_BN>(t, i, nn, kb);
        int n = n0 + nn, k = k0 + kb;
        rb[i] = (n < N && k < k_end) ? p.b(k, n) : 0.0f;
    }
}

// Shared memory holds what the multiply reads: FP32 values, or with ALEXNET_TF32 the TF32 bit patterns, rounded
// once per element here rather than once per fragment read (each element is read by several warps).
__device__ __forceinline__ float gemm_shared_value(float x)
{
#ifdef ALEXNET_TF32
    return __uint_as_float(to_tf32(x));
#else
    return x;
#endif
}

template <class P>
__device__ __forceinline__ void gemm_store_tile(float (*As)[GEMM_LDA], float (*Bs)[GEMM_LDB], const float (&ra)[GEMM_A_LOADS], const float (&rb)[GEMM_B_LOADS])
{
    const int t = threadIdx.x;
#pragma unroll
    for (int i = 0; i < GEMM_A_LOADS; ++i)
    {
        int mm, ka;
        gemm_load_slot<P::A_K_CONTIGUOUS, GEMM_BM>(t, i, mm, ka);
        As[ka][mm] = gemm_shared_value(ra[i]);
    }
#pragma unroll
    for (int i = 0; i < GEMM_B_LOADS; ++i)
    {
        int nn, kb;
        gemm_load_slot<P::B_K_CONTIGUOUS, GEMM_BN>(t, i, nn, kb);
        Bs[kb][nn] = gemm_shared_value(rb[i]);
    }
}

#ifdef ALEXNET_TF32
// 8 warps as 4 x 2: warp w owns rows wm .. wm + BM/4 - 1 and columns wn .. wn + BN/2 - 1, as GEMM_MI x GEMM_NJ
// m16n8 tiles (1 x 4 for 64 x 64, 2 x 8 for 128 x 128).
#define GEMM_MI (GEMM_BM / 64)
#define GEMM_NJ (GEMM_BN / 16)
#else
// 16 x 16 threads; thread (tx, ty) owns rows 4*ty + 64*i' + (0..3) and columns 4*tx + 64*j' + (0..3): a
// GEMM_TM x GEMM_TN block read from shared memory as 16-byte vectors.
#define GEMM_TM (GEMM_BM / 16)
#define GEMM_TN (GEMM_BN / 16)
#endif

template <class P>
__device__ __forceinline__ void gemm_block(const P& p, int M, int N, int m0, int n0, int k_begin, int k_end)
{
    // Two buffers: while the block multiplies one tile, each thread stores the next (already fetched into
    // registers) into the other, so one barrier per tile suffices.
    __shared__ __align__(16) float As[2][GEMM_BK][GEMM_LDA];
    __shared__ __align__(16) float Bs[2][GEMM_BK][GEMM_LDB];
    const int t = threadIdx.x;
    float ra[GEMM_A_LOADS], rb[GEMM_B_LOADS];
#ifdef ALEXNET_TF32
    const int lane = t & 31, warp = t >> 5, g = lane >> 2, q = lane & 3;
    const int wm = (GEMM_BM / 4) * (warp >> 1), wn = (GEMM_BN / 2) * (warp & 1);
    float acc[GEMM_MI][GEMM_NJ][4];
#pragma unroll
    for (int i = 0; i < GEMM_MI; ++i)
#pragma unroll
        for (int j = 0; j < GEMM_NJ; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;
#else
    const int tx = t % 16, ty = t / 16;
    float acc[GEMM_TM][GEMM_TN];
#pragma unroll
    for (int i = 0; i < GEMM_TM; ++i)
#pragma unroll
        for (int j = 0; j < GEMM_TN; ++j) acc[i][j] = 0.0f;
#endif

    if (k_begin < k_end)
    {
        gemm_load_tile(p, M, N, m0, n0, k_begin, k_end, ra, rb);
        gemm_store_tile<P>(As[0], Bs[0], ra, rb);
    }
    __syncthreads();
    int buffer = 0;
    // When K fits one k-tile the loop below would vanish at compile time, and ptxas then hoists the shared loads
    // of all 16 k-steps ahead of the FMAs: 255 registers and spills at 128 x 128. Hiding k_end keeps the loop.
    k_end = opaque_int(k_end);
    for (int k0 = k_begin; k0 < k_end; k0 += GEMM_BK)
    {
        const bool has_next = k0 + GEMM_BK < k_end;
        // Fetch the next tile into registers while this one is multiplied (hides global latency).
        if (has_next) gemm_load_tile(p, M, N, m0, n0, k0 + GEMM_BK, k_end, ra, rb);
        const float (*Ac)[GEMM_LDA] = As[buffer];
        const float (*Bc)[GEMM_LDB] = Bs[buffer];
#ifdef ALEXNET_TF32
#pragma unroll
        for (int ks = 0; ks < GEMM_BK; ks += 8)
        {
            unsigned a[GEMM_MI][4];
#pragma unroll
            for (int i = 0; i < GEMM_MI; ++i)
            {
                const int r = wm + 16 * i + g;
                a[i][0] = __float_as_uint(Ac[ks + q][r]);
                a[i][1] = __float_as_uint(Ac[ks + q][r + 8]);
                a[i][2] = __float_as_uint(Ac[ks + q + 4][r]);
                a[i][3] = __float_as_uint(Ac[ks + q + 4][r + 8]);
            }
#pragma unroll
            for (int j = 0; j < GEMM_NJ; ++j)
            {
                const int c = wn + 8 * j + g;
                unsigned b0 = __float_as_uint(Bc[ks + q][c]);
                unsigned b1 = __float_as_uint(Bc[ks + q + 4][c]);
#pragma unroll
                for (int i = 0; i < GEMM_MI; ++i) mma_m16n8k8_tf32(acc[i][j], a[i][0], a[i][1], a[i][2], a[i][3], b0, b1);
            }
        }
#else
        // Per k, GEMM_TM / 4 + GEMM_TN / 4 16-byte shared loads feed GEMM_TM x GEMM_TN FMAs (scalar loads took
        // four times as many, and shared-memory issue, not the FMA units, bounded the loop). A warp reads two A
        // addresses per vector (broadcast) and 256 contiguous bytes of B, so the loads are free of bank conflicts.
#pragma unroll
        for (int kk = 0; kk < GEMM_BK; ++kk)
        {
            float av[GEMM_TM], bv[GEMM_TN];
#pragma unroll
            for (int i = 0; i < GEMM_TM / 4; ++i)
            {
                const float4 a4 = *reinterpret_cast<const float4*>(&Ac[kk][4 * ty + 64 * i]);
                av[4 * i] = a4.x; av[4 * i + 1] = a4.y; av[4 * i + 2] = a4.z; av[4 * i + 3] = a4.w;
            }
#pragma unroll
            for (int j = 0; j < GEMM_TN / 4; ++j)
            {
                const float4 b4 = *reinterpret_cast<const float4*>(&Bc[kk][4 * tx + 64 * j]);
                bv[4 * j] = b4.x; bv[4 * j + 1] = b4.y; bv[4 * j + 2] = b4.z; bv[4 * j + 3] = b4.w;
            }
#pragma unroll
            for (int i = 0; i < GEMM_TM; ++i)
#pragma unroll
                for (int j = 0; j < GEMM_TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
#endif
        // The other buffer was last read before the previous barrier, so it is free; the barrier below makes
        // the stores visible before the next pass reads them, and ends this pass's reads of the current one.
        if (has_next) gemm_store_tile<P>(As[buffer ^ 1], Bs[buffer ^ 1], ra, rb);
        __syncthreads();
        buffer ^= 1;
    }

#ifdef ALEXNET_TF32
    // Accumulator layout of m16n8 (PTX ISA): c0,c1 at row g, columns 2q, 2q+1; c2,c3 at row g+8.
#pragma unroll
    for (int i = 0; i < GEMM_MI; ++i)
#pragma unroll
        for (int j = 0; j < GEMM_NJ; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r)
            {
                int m = m0 + wm + 16 * i + g + (r >= 2 ? 8 : 0);
                int n = n0 + wn + 8 * j + 2 * q + (r & 1);
                if (m < M && n < N) p.store(m, n, acc[i][j][r]);
            }
#else
#pragma unroll
    for (int i = 0; i < GEMM_TM; ++i)
#pragma unroll
        for (int j = 0; j < GEMM_TN; ++j)
        {
            int m = m0 + 4 * ty + 64 * (i / 4) + i % 4, n = n0 + 4 * tx + 64 * (j / 4) + j % 4;
            if (m < M && n < N) p.store(m, n, acc[i][j]);
        }
#endif
}

// ---- Block reduction (256 threads): every thread gets the sum ----
__device__ __forceinline__ float block_sum(float v, float* scratch)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    float total = 0.0f;
#pragma unroll
    for (int w = 0; w < ALEXNET_THREADS / 32; ++w) total += scratch[w];
    __syncthreads();
    return total;
}

__device__ __forceinline__ float block_max(float v, float* scratch)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    float best = scratch[0];
#pragma unroll
    for (int w = 1; w < ALEXNET_THREADS / 32; ++w) best = fmaxf(best, scratch[w]);
    __syncthreads();
    return best;
}

// ---- Conv2d as implicit GEMM (no im2col buffer: the B loader gathers input pixels) ----
// Input [C, H, W], weight [OC, C/G, KH, KW], output [OC, OH, OW] per sample; k = (c, kh, kw) within a group.
template <int C, int H, int W, int OC, int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW, int G, bool BIAS, bool RELU>
struct Conv2d
{
    static constexpr int ICG = C / G, OCG = OC / G, KHW = KH * KW, KK = ICG * KHW, P = OH * OW, HW = H * W;
    static constexpr int WGRAD_CHUNK = 4096; // reduction length (batch * OH * OW) per weight-gradient block

    __device__ static float im2col(const float* x, int group, int k, int n)
    {
        int c = k / KHW, r = k % KHW, kh = r / KW, kw = r % KW;
        int b = n / P, pp = n % P, oh = pp / OW, ow = pp % OW;
        int ih = oh * SH - PH + kh, iw = ow * SW - PW + kw;
        if ((unsigned)ih >= (unsigned)H || (unsigned)iw >= (unsigned)W) return 0.0f;
        return x[((b * C + group * ICG + c) * H + ih) * W + iw];
    }

    // out[b, oc, p] = act(bias[oc] + sum_k W[oc, k] * im2col[k, (b, p)]): M = OCG, N = batch * P, K = KK.
    struct Forward
    {
        static constexpr bool A_K_CONTIGUOUS = true, B_K_CONTIGUOUS = false;
        const float* x; const float* w; const float* bias; float* y; int group;
        __device__ float a(int m, int k) const { return w[(group * OCG + m) * KK + k]; }
        __device__ float b(int k, int n) const { return im2col(x, group, k, n); }
        __device__ void store(int m, int n, float v) const
        {
            int oc = group * OCG + m, b = n / P, pp = n % P;
            if constexpr (BIAS) v += bias[oc];
            if constexpr (RELU) v = fmaxf(v, 0.0f);
            y[(b * OC + oc) * P + pp] = v;
        }
    };

    // dX[b, c, h, w] = sum_{k = (oc, kh, kw)} W[oc, c, kh, kw] * dY[b, oc, oh, ow] with h = oh*SH - PH + kh:
    // M = ICG, N = batch * H * W, K = OCG * KH * KW. The B loader keeps only taps whose (h + PH - kh) divides by SH.
    struct BackwardData
    {
        static constexpr bool A_K_CONTIGUOUS = false, B_K_CONTIGUOUS = false;
        const float* w; const float* dy; float* dx; int group;
        __device__ float a(int m, int k) const
        {
            int oc = k / KHW, r = k % KHW;
            return w[((group * OCG + oc) * ICG + m) * KHW + r];
        }
        __device__ float b(int k, int n) const
        {
            int oc = k / KHW, r = k % KHW, kh = r / KW, kw = r % KW;
            int b = n / HW, q = n % HW, h = q / W, w_ = q % W;
            int th = h + PH - kh, tw = w_ + PW - kw;
            if (th < 0 || tw < 0 || th % SH != 0 || tw % SW != 0) return 0.0f;
            int oh = th / SH, ow = tw / SW;
            if (oh >= OH || ow >= OW) return 0.0f;
            return dy[((b * OC + group * OCG + oc) * OH + oh) * OW + ow];
        }
        __device__ void store(int m, int n, float v) const
        {
            int b = n / HW, q = n % HW;
            dx[(b * C + group * ICG + m) * HW + q] = v;
        }
    };

    // dW[oc, k] = sum_{j = (b, p)} dY[b, oc, p] * im2col[k, j]: M = OCG, N = KK, reduction over batch * P split
    // into WGRAD_CHUNK pieces (blockIdx.x) whose partial tiles are added atomically into the zeroed gradient.
    struct BackwardWeights
    {
        static constexpr bool A_K_CONTIGUOUS = true, B_K_CONTIGUOUS = true;
        const float* x; const float* dy; float* dw; int group;
        __device__ float a(int m, int j) const { return dy[((j / P) * OC + group * OCG + m) * P + j % P]; }
        __device__ float b(int j, int n) const { return im2col(x, group, n, j); }
        __device__ void store(int m, int n, float v) const { atomicAdd(&dw[(group * OCG + m) * KK + n], v); }
    };

    __device__ static void forward(const float* x, const float* w, const float* bias, float* y, int batch)
    {
        Forward p{x, w, bias, y, (int)blockIdx.z};
        gemm_block(p, OCG, batch * P, blockIdx.y * GEMM_BM, blockIdx.x * GEMM_BN, 0, KK);
    }

    __device__ static void backward_data(const float* w, const float* dy, float* dx, int batch)
    {
        BackwardData p{w, dy, dx, (int)blockIdx.z};
        gemm_block(p, ICG, batch * HW, blockIdx.y * GEMM_BM, blockIdx.x * GEMM_BN, 0, OCG * KHW);
    }

    static constexpr int WGRAD_TILES_M = (OCG + GEMM_BM - 1) / GEMM_BM;

    __device__ static void backward_weights(const float* x, const float* dy, float* dw, int batch)
    {
        BackwardWeights p{x, dy, dw, (int)blockIdx.z};
        int tile = blockIdx.y, tm = tile % WGRAD_TILES_M, tn = tile / WGRAD_TILES_M;
        int j0 = blockIdx.x * WGRAD_CHUNK, j1 = min(batch * P, j0 + WGRAD_CHUNK);
        gemm_block(p, OCG, KK, tm * GEMM_BM, tn * GEMM_BN, j0, j1);
    }
};

// ---- ReLU mask and bias gradient, per (channel, sample) block: dY *= (Y > 0) in place; dBias[c] += sum ----
template <int CH, int P, bool BIAS, bool RELU>
__device__ __forceinline__ void conv_bias_relu_backward(const float* y, float* dy, float* dbias)
{
    __shared__ float scratch[ALEXNET_THREADS / 32];
    const int c = blockIdx.x, b = blockIdx.y;
    const int base = (b * CH + c) * P;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < P; i += ALEXNET_THREADS)
    {
        float g = dy[base + i];
        if constexpr (RELU)
        {
            if (y[base + i] <= 0.0f) { g = 0.0f; dy[base + i] = 0.0f; }
        }
        sum += g;
    }
    if constexpr (BIAS)
    {
        sum = block_sum(sum, scratch);
        if (threadIdx.x == 0) atomicAdd(&dbias[c], sum);
    }
}

// ---- Dense: input [IN] (flattened CHW), weight [OUT, IN], output [OUT]; dropout on the input fused ----
template <int IN, int OUT, bool BIAS, bool RELU, bool DROPOUT>
struct Dense
{
    // y[b, o] = act(bias[o] + sum_i drop(x)[b, i] * W[o, i]): M = batch, N = OUT, K = IN.
    struct Forward
    {
        static constexpr bool A_K_CONTIGUOUS = true, B_K_CONTIGUOUS = true;
        const float* x; const float* w; const float* bias; float* y; u64 seed; u64 layer; float p;
        __device__ float a(int m, int k) const
        {
            float v = x[m * IN + k];
            if constexpr (DROPOUT) v *= p > 0.0f ? dropout_multiplier(seed, layer, (u64)(m * IN + k), p) : 1.0f;
            return v;
        }
        __device__ float b(int k, int n) const { return w[n * IN + k]; }
        __device__ void store(int m, int n, float v) const
        {
            if constexpr (BIAS) v += bias[n];
            if constexpr (RELU) v = fmaxf(v, 0.0f);
            y[m * OUT + n] = v;
        }
    };

    // dX[b, i] = drop'(sum_o dY[b, o] * W[o, i]): M = batch, N = IN, K = OUT. The dropout mask is recomputed.
    struct BackwardData
    {
        static constexpr bool A_K_CONTIGUOUS = true, B_K_CONTIGUOUS = false;
        const float* dy; const float* w; float* dx; u64 seed; u64 layer; float p;
        __device__ float a(int m, int k) const { return dy[m * OUT + k]; }
        __device__ float b(int k, int n) const { return w[k * IN + n]; }
        __device__ void store(int m, int n, float v) const
        {
            if constexpr (DROPOUT) v *= p > 0.0f ? dropout_multiplier(seed, layer, (u64)(m * IN + n), p) : 1.0f;
            dx[m * IN + n] = v;
        }
    };

    // dW[o, i] = sum_b dY[b, o] * drop(x)[b, i]: M = OUT, N = IN, K = batch. Overwrites dW.
    struct BackwardWeights
    {
        static constexpr bool A_K_CONTIGUOUS = false, B_K_CONTIGUOUS = false;
        const float* dy; const float* x; float* dw; u64 seed; u64 layer; float p;
        __device__ float a(int m, int k) const { return dy[k * OUT + m]; }
        __device__ float b(int k, int n) const
        {
            float v = x[k * IN + n];
            if constexpr (DROPOUT) v *= p > 0.0f ? dropout_multiplier(seed, layer, (u64)(k * IN + n), p) : 1.0f;
            return v;
        }
        __device__ void store(int m, int n, float v) const { dw[m * IN + n] = v; }
    };

    __device__ static void forward(const float* x, const float* w, const float* bias, float* y, int batch, u64 seed, u64 layer, float p)
    {
        Forward f{x, w, bias, y, seed, layer, p};
        gemm_block(f, batch, OUT, blockIdx.y * GEMM_BM, blockIdx.x * GEMM_BN, 0, IN);
    }

    __device__ static void backward_data(const float* dy, const float* w, float* dx, int batch, u64 seed, u64 layer, float p)
    {
        BackwardData f{dy, w, dx, seed, layer, p};
        gemm_block(f, batch, IN, blockIdx.y * GEMM_BM, blockIdx.x * GEMM_BN, 0, OUT);
    }

    __device__ static void backward_weights(const float* dy, const float* x, float* dw, int batch, u64 seed, u64 layer, float p)
    {
        BackwardWeights f{dy, x, dw, seed, layer, p};
        gemm_block(f, OUT, IN, blockIdx.y * GEMM_BM, blockIdx.x * GEMM_BN, 0, batch);
    }
};

// ReLU mask and bias gradient for a dense layer: one thread per feature, looping over the batch (coalesced).
template <int OUT, bool BIAS, bool RELU>
__device__ __forceinline__ void dense_bias_relu_backward(const float* y, float* dy, float* dbias, int batch)
{
    int o = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
    if (o >= OUT) return;
    float sum = 0.0f;
    for (int b = 0; b < batch; ++b)
    {
        float g = dy[b * OUT + o];
        if constexpr (RELU)
        {
            if (y[b * OUT + o] <= 0.0f) { g = 0.0f; dy[b * OUT + o] = 0.0f; }
        }
        sum += g;
    }
    if constexpr (BIAS) dbias[o] = sum;
}

// ---- LRN across channels fused with the following max pool ----
// LRN (Krizhevsky et al. 2012, 3.3): b_c = a_c * s_c^-beta, s_c = k + alpha * sum_{c' = c - SIZE/2}^{c + (SIZE-1)/2} a_c'^2
// (alpha applied to the plain sum; the window as in torch's LocalResponseNorm). The pool (floor mode,
// -infinity padding) keeps the first maximum in row-major window order; its flat index h * W + w is stored
// for backward. Forward keeps only the pooled output and argmax: backward recomputes s from the LRN input.
// LRN = false gives a plain max pool; POOL = false (1x1, stride 1) gives a plain LRN. The pool's kernel (PKH x PKW),
// stride and padding are given per axis: a non-square pool is as valid a spec as a square one.
template <int C, int H, int W, int OH, int OW, bool LRN, int SIZE, bool POOL, int PKH, int PKW, int PSH, int PSW, int PPH, int PPW>
struct LrnPool
{
    static constexpr int HW = H * W, OHW = OH * OW;

    __device__ static float lrn_scale(const float* a, int c, int hw, float alpha, float k)
    {
        float sum = 0.0f;
#pragma unroll
        for (int j = c - SIZE / 2; j <= c + (SIZE - 1) / 2; ++j)
            if (j >= 0 && j < C) { float v = a[j * HW + hw]; sum = fmaf(v, v, sum); }
        return fmaf(alpha, sum, k);
    }

    __device__ static float lrn_value(const float* a, int c, int hw, float alpha, float beta, float k)
    {
        float v = a[c * HW + hw];
        if constexpr (LRN) v *= powf(lrn_scale(a, c, hw, alpha, k), -beta);
        return v;
    }

    // One thread per output element (b, c, ph, pw).
    __device__ static void forward(const float* x, float* y, int* argmax, int batch, float alpha, float beta, float k)
    {
        int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
        if (i >= batch * C * OHW) return;
        int b = i / (C * OHW), c = (i / OHW) % C, o = i % OHW, ph = o / OW, pw = o % OW;
        const float* a = x + (size_t)b * C * HW;
        if constexpr (!POOL)
        {
            y[i] = lrn_value(a, c, o, alpha, beta, k);
            return;
        }
        else
        {
            float best = -__int_as_float(0x7f800000);
            int best_index = -1;
            for (int kh = 0; kh < PKH; ++kh)
            {
                int h = ph * PSH - PPH + kh;
                if (h < 0 || h >= H) continue;
                for (int kw = 0; kw < PKW; ++kw)
                {
                    int w = pw * PSW - PPW + kw;
                    if (w < 0 || w >= W) continue;
                    float v = lrn_value(a, c, h * W + w, alpha, beta, k);
                    if (v > best || best_index < 0 || v != v) { best = v; best_index = h * W + w; }
                }
            }
            y[i] = best;
            if (argmax != nullptr) argmax[i] = best_index;
        }
    }

    // Gradient reaching the LRN output at (c, hw): the pool outputs whose window covers it and chose it.
    __device__ static float pooled_gradient(const float* dp, const int* argmax, int c, int h, int w)
    {
        if constexpr (!POOL) return dp[c * HW + h * W + w];
        else
        {
            int lo_h = h + PPH - PKH + 1, lo_w = w + PPW - PKW + 1;
            int ph0 = lo_h <= 0 ? 0 : (lo_h + PSH - 1) / PSH, ph1 = min((h + PPH) / PSH, OH - 1);
            int pw0 = lo_w <= 0 ? 0 : (lo_w + PSW - 1) / PSW, pw1 = min((w + PPW) / PSW, OW - 1);
            float g = 0.0f;
            for (int ph = ph0; ph <= ph1; ++ph)
                for (int pw = pw0; pw <= pw1; ++pw)
                {
                    int o = c * OHW + ph * OW + pw;
                    if (argmax[o] == h * W + w) g += dp[o];
                }
            return g;
        }
    }

    // One thread per input element (b, c, h, w): dA_c = dB_c * s_c^-beta
    //   - 2 alpha beta a_c * sum_{j : c in window(j)} dB_j * a_j * s_j^(-beta - 1).
    __device__ static void backward(const float* x, const float* dy, const int* argmax, float* dx, int batch, float alpha, float beta, float k)
    {
        int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
        if (i >= batch * C * HW) return;
        int b = i / (C * HW), c = (i / HW) % C, hw = i % HW, h = hw / W, w = hw % W;
        const float* a = x + (size_t)b * C * HW;
        const float* dp = dy + (size_t)b * C * OHW;
        const int* am = POOL ? argmax + (size_t)b * C * OHW : argmax;
        if constexpr (!LRN)
        {
            dx[i] = pooled_gradient(dp, am, c, h, w);
        }
        else
        {
            float own = 0.0f, cross = 0.0f;
#pragma unroll
            for (int j = c - (SIZE - 1) / 2; j <= c + SIZE / 2; ++j)
            {
                if (j < 0 || j >= C) continue;
                float g = pooled_gradient(dp, am, j, h, w);
                if (g == 0.0f) continue;
                float s = lrn_scale(a, j, hw, alpha, k);
                float sb = powf(s, -beta);
                if (j == c) own = g * sb;
                cross = fmaf(g * a[j * HW + hw], sb / s, cross);
            }
            dx[i] = own - 2.0f * alpha * beta * a[c * HW + hw] * cross;
        }
    }
};

// ---- Adaptive average pool (PyTorch's AdaptiveAvgPool2d) ----
// Output (oh, ow) of a channel averages input rows [floor(oh * H / OH), ceil((oh + 1) * H / OH)) and the columns
// likewise, summed in row-major order as the CPU backend does. Windows overlap when the sizes do not divide, so
// backward gathers: input row h lies in the windows oh = floor(h * OH / H) .. ceil((h + 1) * OH / H) - 1.
template <int C, int H, int W, int OH, int OW>
struct AdaptiveAvgPool
{
    // In 32 bits, so that the divisions by these constants compile to multiplications (64-bit ones call a subroutine).
    // The largest value: (i + 1) * in + out - 1 in a bin's end, (h + 1) * OH + H - 1 in backward's window range.
    static_assert((long long)H * OH + (H > OH ? H : OH) < 2147483647LL && (long long)W * OW + (W > OW ? W : OW) < 2147483647LL,
                  "AdaptiveAvgPool: input size times output size must fit in 32 bits");
    __device__ static int bin_start(int i, int in, int out) { return i * in / out; }
    __device__ static int bin_end(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }

    // One thread per output element (b, c, oh, ow).
    __device__ static void forward(const float* x, float* y, int batch)
    {
        int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
        if (i >= batch * C * OH * OW) return;
        int plane = i / (OH * OW), o = i % (OH * OW), oh = o / OW, ow = o % OW;
        const float* a = x + (size_t)plane * H * W;
        int h0 = bin_start(oh, H, OH), h1 = bin_end(oh, H, OH), w0 = bin_start(ow, W, OW), w1 = bin_end(ow, W, OW);
        float sum = 0.0f;
        for (int h = h0; h < h1; ++h)
            for (int w = w0; w < w1; ++w) sum += a[h * W + w];
        y[i] = sum / (float)((h1 - h0) * (w1 - w0));
    }

    // One thread per input element (b, c, h, w): the sum of dY / (window size) over the windows that hold it.
    // __fdividef (2 ulp): the IEEE division is a subroutine call, and calling it in these loops spills registers.
    __device__ static void backward(const float* dy, float* dx, int batch)
    {
        int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
        if (i >= batch * C * H * W) return;
        int plane = i / (H * W), hw = i % (H * W), h = hw / W, w = hw % W;
        const float* d = dy + (size_t)plane * OH * OW;
        int oh0 = h * OH / H, oh1 = ((h + 1) * OH + H - 1) / H;
        int ow0 = w * OW / W, ow1 = ((w + 1) * OW + W - 1) / W;
        float g = 0.0f;
        for (int oh = oh0; oh < oh1; ++oh)
        {
            int rows = bin_end(oh, H, OH) - bin_start(oh, H, OH);
            for (int ow = ow0; ow < ow1; ++ow)
                g += __fdividef(d[oh * OW + ow], (float)(rows * (bin_end(ow, W, OW) - bin_start(ow, W, OW))));
        }
        dx[i] = g;
    }
};

// ---- Softmax cross-entropy, fused and stable: one block per sample ----
// loss[b] = log(sum_j exp(z_j - max)) + max - z_label;  dz = (softmax(z) - onehot(label)) / batch.
template <int CLASSES>
__device__ __forceinline__ void softmax_cross_entropy(const float* logits, const int* labels, float* losses, float* dlogits, int batch)
{
    __shared__ float scratch[ALEXNET_THREADS / 32];
    const int b = blockIdx.x;
    const float* z = logits + (size_t)b * CLASSES;
    float m = -__int_as_float(0x7f800000);
    for (int j = threadIdx.x; j < CLASSES; j += ALEXNET_THREADS) m = fmaxf(m, z[j]);
    m = block_max(m, scratch);
    float s = 0.0f;
    for (int j = threadIdx.x; j < CLASSES; j += ALEXNET_THREADS) s += expf(z[j] - m);
    s = block_sum(s, scratch);
    const int label = labels[b];
    const float inv_batch = 1.0f / (float)batch;
    for (int j = threadIdx.x; j < CLASSES; j += ALEXNET_THREADS)
        dlogits[(size_t)b * CLASSES + j] = (expf(z[j] - m) / s - (j == label ? 1.0f : 0.0f)) * inv_batch;
    if (threadIdx.x == 0) losses[b] = logf(s) + m - z[label];
}

// ---- Element-wise layers that could not be fused ----
__device__ __forceinline__ void relu_forward(const float* x, float* y, int n)
{
    int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}

__device__ __forceinline__ void relu_backward(const float* y, float* dy, int n)
{
    int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
    if (i < n && y[i] <= 0.0f) dy[i] = 0.0f;
}

__device__ __forceinline__ void dropout_apply(const float* x, float* y, int n, u64 seed, u64 layer, float p)
{
    int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
    if (i < n) y[i] = p > 0.0f ? x[i] * dropout_multiplier(seed, layer, (u64)i, p) : x[i];
}

// ---- SGD over the flat parameter buffer ----
// PyTorch (torch.optim.SGD, dampening 0, no Nesterov): g = grad + wd * p; v = first ? g : mu * v + g; p -= lr * v.
// Paper (Krizhevsky et al. 2012, section 5): v = mu * v - wd * lr * p - lr * grad; p += v.
extern "C" __global__ void __launch_bounds__(ALEXNET_THREADS)
sgd_update(float* __restrict__ params, const float* __restrict__ grads, float* __restrict__ velocity,
           int count, float lr, float momentum, float weight_decay, int first_step, int paper_variant)
{
    int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
    if (i >= count) return;
    float p = params[i], g = grads[i];
    if (paper_variant)
    {
        float v = momentum * velocity[i] - weight_decay * lr * p - lr * g;
        velocity[i] = v;
        params[i] = p + v;
    }
    else
    {
        g = fmaf(weight_decay, p, g);
        float v = first_step ? g : fmaf(momentum, velocity[i], g);
        velocity[i] = v;
        params[i] = p - lr * v;
    }
}

// ---- Scale a float buffer in place: a data-parallel shard's gradient times shard / batch before the ranks sum ----
extern "C" __global__ void __launch_bounds__(ALEXNET_THREADS)
scale_buffer(float* __restrict__ values, int count, float factor)
{
    int i = blockIdx.x * ALEXNET_THREADS + threadIdx.x;
    if (i < count) values[i] *= factor;
}

#endif // ALEXNET_PRELUDE_CUH
