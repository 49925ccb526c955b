using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>Which register-blocked micro-kernel a GEMM uses.</summary>
public enum GemmKernel
{
    /// <summary>The best one the hardware accelerates.</summary>
    Auto,
    /// <summary>6 x 32 tile, 12 Vector512 accumulators, FMA.</summary>
    Vector512,
    /// <summary>6 x 16 tile (twice per 32-column panel), 12 Vector256 accumulators, FMA.</summary>
    Vector256,
    /// <summary>Plain loops: machines without SIMD acceleration.</summary>
    Scalar,
}

/// <summary>
/// What a GEMM applies to each finished element of C: c = c + rowBias[i] + columnBias[j], then max(0, c) when
/// <see cref="Relu"/>. Applied once, after the last K block, while the tile is still in L1.
/// </summary>
public readonly unsafe struct GemmEpilogue(float* rowBias, float* columnBias, bool relu)
{
    public float* RowBias { get; } = rowBias;
    public float* ColumnBias { get; } = columnBias;
    public bool Relu { get; } = relu;
    public bool IsActive => RowBias != null || ColumnBias != null || Relu;
    public static GemmEpilogue None => default;
}

/// <summary>
/// Single-precision GEMM on row-major matrices: C[M, N] = op(A)[M, K] * op(B)[K, N] (or C +=), where op(X) is X or
/// X transposed. The structure is the classic one of Goto and van de Geijn ("Anatomy of high-performance matrix
/// multiplication", 2008): B is packed in KC x NC blocks (kept in L3), A in MC x KC blocks (kept in L2), and a
/// register-blocked micro-kernel multiplies an MR x KC sliver of A by a KC x NR panel of B (kept in L1) into an
/// MR x NR tile of C held entirely in registers.
/// </summary>
public static unsafe partial class Gemm
{
    /// <summary>Rows of the micro-tile.</summary>
    public const int MR = 6;
    /// <summary>Columns of the micro-tile (two Vector512 of floats).</summary>
    public const int NR = 32;
    /// <summary>Depth of a packed block: KC x NR panel of B = 32 KiB fits L1 (48 KiB on Zen 5).</summary>
    public const int KC = 256;
    /// <summary>Rows of a packed A block: MC x KC = 120 KiB stays in L2.</summary>
    public const int MC = 120;
    /// <summary>Columns of a packed B block: KC x NC = 3 MiB stays in L3.</summary>
    public const int NC = 3072;

    /// <summary>Below this many multiply-adds a GEMM runs on the calling thread: waking helpers costs more.</summary>
    private const long ParallelThreshold = 1L << 18;

    private static readonly GemmKernel s_bestKernel =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? GemmKernel.Vector512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? GemmKernel.Vector256
        : GemmKernel.Scalar;

    /// <summary>The micro-kernel <see cref="GemmKernel.Auto"/> picks on this machine.</summary>
    public static GemmKernel BestKernel => s_bestKernel;

    /// <summary>
    /// C[M, N] = op(A) * op(B) (or += when <paramref name="accumulate"/>), then the epilogue.
    /// op(A) is M x K: element (i, p) is a[i * lda + p], or a[p * lda + i] when <paramref name="transA"/>.
    /// op(B) is K x N: element (p, j) is b[p * ldb + j], or b[j * ldb + p] when <paramref name="transB"/>.
    /// <paramref name="threadIndex"/> &lt; 0: spread over the context's threads (the caller must not be inside a
    /// parallel loop of <paramref name="ctx"/>). &gt;= 0: run on the calling thread using that thread's scratch.
    /// </summary>
    public static void Multiply(
        int m, int n, int k,
        float* a, int lda, bool transA,
        float* b, int ldb, bool transB,
        float* c, int ldc, bool accumulate,
        in GemmEpilogue epilogue, CpuContext ctx, int threadIndex = -1, GemmKernel kernel = GemmKernel.Auto) =>
        MultiplyCore(m, n, k, a, lda, transA, null, b, ldb, transB, null, c, ldc, accumulate, epilogue, ctx, threadIndex, kernel);

    /// <summary>
    /// As <see cref="Multiply"/>, with op(B) already packed whole (<see cref="PackBRows"/>, <see cref="PackedBLength"/>
    /// floats): when the product spreads over the threads by rows of C, each thread reads the one packed B instead of
    /// packing all of it again. The same bits as <see cref="Multiply"/> on the unpacked op(B).
    /// </summary>
    public static void MultiplyPackedB(
        int m, int n, int k,
        float* a, int lda, bool transA,
        float* packedB,
        float* c, int ldc, bool accumulate,
        in GemmEpilogue epilogue, CpuContext ctx, int threadIndex = -1, GemmKernel kernel = GemmKernel.Auto)
    {
        if (packedB == null) throw new ArgumentNullException(nameof(packedB));
        MultiplyCore(m, n, k, a, lda, transA, null, null, 0, false, packedB, c, ldc, accumulate, epilogue, ctx, threadIndex, kernel);
    }

    /// <summary>Floats of a whole packed K x N op(B) (<see cref="PackBRows"/>): N rounded up to whole panels, times K.</summary>
    public static long PackedBLength(int n, int k) => (long)RoundUp(n, NR) * k;

    /// <summary>
    /// Packs rows [firstRow, firstRow + rowCount) of a K x N op(B), row r read at rows + (r - firstRow) * ldr, in the
    /// order the blocked loops read them: per block of <see cref="KC"/> rows (the last one shorter), the NR-column panels
    /// of all N columns, each K-major, columns past N zero; block pc / KC starts at RoundUp(N, NR) * pc. Every row has
    /// floats of its own, so rows may be packed in any order and by different threads.
    /// </summary>
    public static void PackBRows(int n, int k, int firstRow, int rowCount, float* rows, int ldr, float* dst)
    {
        if (n < 0 || k < 0 || firstRow < 0 || rowCount < 0 || (long)firstRow + rowCount > k)
            throw new ArgumentOutOfRangeException(nameof(firstRow), $"Rows {firstRow} to {firstRow + rowCount} of a K={k} x N={n} matrix do not exist.");
        long paddedN = RoundUp(n, NR);
        for (int r = 0; r < rowCount; r++)
        {
            int p = firstRow + r, pc = p / KC * KC;
            long panelStride = (long)Math.Min(KC, k - pc) * NR;
            float* src = rows + (long)r * ldr;
            float* panelRow = dst + paddedN * pc + (long)(p - pc) * NR;
            int j = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; j + NR <= n; j += NR, panelRow += panelStride)
                {
                    Vector256.Store(Vector256.Load(src + j), panelRow);
                    Vector256.Store(Vector256.Load(src + j + 8), panelRow + 8);
                    Vector256.Store(Vector256.Load(src + j + 16), panelRow + 16);
                    Vector256.Store(Vector256.Load(src + j + 24), panelRow + 24);
                }
            }
            for (; j < n; j += NR, panelRow += panelStride)
            {
                int t = 0, valid = Math.Min(NR, n - j);
                for (; t < valid; t++) panelRow[t] = src[j + t];
                for (; t < NR; t++) panelRow[t] = 0f;
            }
        }
    }

    /// <summary>
    /// Whether a product spread over <paramref name="threads"/> threads splits the columns of C (each thread packing its
    /// own columns of op(B) and all of op(A)) rather than its rows (each packing its rows of op(A) and all of op(B)).
    /// </summary>
    internal static bool SplitsColumns(int m, int n, int threads) => n / NR >= threads && (n >= m || m / MR < threads);

    /// <summary>
    /// As <see cref="Multiply"/> on the calling thread (<paramref name="threadIndex"/> &gt;= 0), with op(A) already
    /// packed by <see cref="PackWhole"/>: an operand that many products share (a Winograd layer's transformed filters,
    /// one product per chunk of tiles) is packed once instead of once per product. The same bits as
    /// <see cref="Multiply"/> on the unpacked op(A).
    /// </summary>
    public static void MultiplyPacked(
        int m, int n, int k,
        float* packedA,
        float* b, int ldb, bool transB,
        float* c, int ldc, bool accumulate,
        in GemmEpilogue epilogue, CpuContext ctx, int threadIndex, GemmKernel kernel = GemmKernel.Auto)
    {
        if (packedA == null) throw new ArgumentNullException(nameof(packedA));
        if (threadIndex < 0) throw new ArgumentOutOfRangeException(nameof(threadIndex), "A product with a packed A runs on the calling thread: pass its thread index.");
        MultiplyCore(m, n, k, null, 0, false, packedA, b, ldb, transB, null, c, ldc, accumulate, epilogue, ctx, threadIndex, kernel);
    }

    /// <summary>
    /// C[M, N] = op(A) * op(B), then the epilogue, on the calling thread, with op(A) packed by <see cref="PackWhole"/>
    /// and op(B) by <see cref="PackBRows"/> (N columns): the same bits as <see cref="Multiply"/> on the unpacked operands.
    /// </summary>
    internal static void MultiplyPackedAB(int m, int n, int k, float* packedA, float* packedB, float* c, int ldc,
        in GemmEpilogue epilogue, CpuContext ctx, int threadIndex, GemmKernel kernel = GemmKernel.Auto)
    {
        if (packedA == null) throw new ArgumentNullException(nameof(packedA));
        if (packedB == null) throw new ArgumentNullException(nameof(packedB));
        if (threadIndex < 0) throw new ArgumentOutOfRangeException(nameof(threadIndex), "A product of packed operands runs on the calling thread: pass its thread index.");
        MultiplyCore(m, n, k, null, 0, false, packedA, null, 0, false, packedB, c, ldc, false, epilogue, ctx, threadIndex, kernel);
    }

    /// <summary>Floats <see cref="PackWhole"/> writes for an M x K op(A) (8 more: the transposed stores' spill).</summary>
    public static long PackedLength(int m, int k) => (long)RoundUp(m, MR) * k + 8;

    /// <summary>
    /// Packs all of op(A) (M x K) in the order the blocked loops read it: per block of <see cref="KC"/> columns of K (the
    /// last one shorter), the MR-row slivers of all M rows, each K-major, rows past M zero. Block pc / KC starts at
    /// RoundUp(M, MR) * pc. <paramref name="dst"/> holds <see cref="PackedLength"/> floats.
    /// </summary>
    public static void PackWhole(int m, int k, float* a, int lda, bool transA, float* dst)
    {
        if (m < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"GEMM sizes must be non-negative (M={m}, K={k}).");
        // In order: a block's spill past its last sliver lands in the next block, which is packed afterwards.
        for (int pc = 0; pc < k; pc += KC)
            PackA(a, lda, transA, 0, pc, m, Math.Min(KC, k - pc), dst + (long)RoundUp(m, MR) * pc);
    }

    private static void MultiplyCore(
        int m, int n, int k,
        float* a, int lda, bool transA, float* packedA,
        float* b, int ldb, bool transB, float* packedB,
        float* c, int ldc, bool accumulate,
        in GemmEpilogue epilogue, CpuContext ctx, int threadIndex, GemmKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"GEMM sizes must be non-negative (M={m}, N={n}, K={k}).");
        if (m == 0 || n == 0) return;
        if (kernel == GemmKernel.Auto) kernel = s_bestKernel;
        if (kernel == GemmKernel.Vector512 && !(Vector512.IsHardwareAccelerated && Avx512F.IsSupported))
            throw new PlatformNotSupportedException("The Vector512 GEMM kernel needs AVX-512F.");
        if (kernel == GemmKernel.Vector256 && !(Vector256.IsHardwareAccelerated && Fma.IsSupported))
            throw new PlatformNotSupportedException("The Vector256 GEMM kernel needs AVX2 and FMA.");

        if (k == 0)
        {
            // op(A) * op(B) is all zeros: only the epilogue (and the overwrite) remain.
            for (int i = 0; i < m; i++)
            {
                float* row = c + (long)i * ldc;
                if (!accumulate) new Span<float>(row, n).Clear();
            }
            if (epilogue.IsActive) ApplyEpilogue(c, ldc, m, n, epilogue);
            return;
        }

        if (threadIndex >= 0 || ctx.Threads == 1 || (long)m * n * k < ParallelThreshold)
        {
            MultiplyOnThread(m, n, k, a, lda, transA, packedA, b, ldb, transB, packedB, RoundUp(n, NR), 0, c, ldc, accumulate, epilogue, ctx, Math.Max(threadIndex, 0), kernel);
            return;
        }

        // Split the larger of M and N into one contiguous range per thread, aligned to the micro-tile. Each thread
        // packs its own panels; the duplicated packing of the shared operand is small next to the multiply, or, for
        // op(B), done once beforehand by the caller (MultiplyPackedB).
        var job = new ParallelJob
        {
            M = m, N = n, K = k, A = a, Lda = lda, TransA = transA, B = b, Ldb = ldb, TransB = transB, PackedB = packedB,
            C = c, Ldc = ldc, Accumulate = accumulate, Epilogue = epilogue, Ctx = ctx, Kernel = kernel,
        };
        ReserveScratch(m, n, k, ctx);
        int threads = ctx.Threads;
        bool splitN = SplitsColumns(m, n, threads);
        int units = splitN ? (n + NR - 1) / NR : (m + MR - 1) / MR;
        int parts = Math.Min(threads, units);
        job.SplitN = splitN;
        job.Parts = parts;
        job.UnitsPerPart = units / parts;
        job.ExtraUnits = units % parts;
        ctx.For(parts, &RunPart, Unsafe.AsPointer(ref job));
    }

    private struct ParallelJob
    {
        public int M, N, K, Lda, Ldb, Ldc, Parts, UnitsPerPart, ExtraUnits;
        public float* A, B, C, PackedB;
        public bool TransA, TransB, Accumulate, SplitN;
        public GemmEpilogue Epilogue;
        public CpuContext Ctx;
        public GemmKernel Kernel;
    }

    private static void RunPart(void* state, int part, int threadIndex)
    {
        ref ParallelJob job = ref Unsafe.AsRef<ParallelJob>(state);
        int firstUnit = part * job.UnitsPerPart + Math.Min(part, job.ExtraUnits);
        int unitCount = job.UnitsPerPart + (part < job.ExtraUnits ? 1 : 0);
        if (job.SplitN)
        {
            int j0 = firstUnit * NR;
            int nPart = Math.Min(unitCount * NR, job.N - j0);
            if (nPart <= 0) return;
            float* b = job.B == null ? null : job.TransB ? job.B + (long)j0 * job.Ldb : job.B + j0;
            var epilogue = new GemmEpilogue(job.Epilogue.RowBias, job.Epilogue.ColumnBias == null ? null : job.Epilogue.ColumnBias + j0, job.Epilogue.Relu);
            MultiplyOnThread(job.M, nPart, job.K, job.A, job.Lda, job.TransA, null, b, job.Ldb, job.TransB, job.PackedB, RoundUp(job.N, NR), j0,
                job.C + j0, job.Ldc, job.Accumulate, epilogue, job.Ctx, threadIndex, job.Kernel);
        }
        else
        {
            int i0 = firstUnit * MR;
            int mPart = Math.Min(unitCount * MR, job.M - i0);
            if (mPart <= 0) return;
            float* a = job.TransA ? job.A + i0 : job.A + (long)i0 * job.Lda;
            var epilogue = new GemmEpilogue(job.Epilogue.RowBias == null ? null : job.Epilogue.RowBias + i0, job.Epilogue.ColumnBias, job.Epilogue.Relu);
            MultiplyOnThread(mPart, job.N, job.K, a, job.Lda, job.TransA, null, job.B, job.Ldb, job.TransB, job.PackedB, RoundUp(job.N, NR), 0,
                job.C + (long)i0 * job.Ldc, job.Ldc, job.Accumulate, epilogue, job.Ctx, threadIndex, job.Kernel);
        }
    }

    /// <summary>
    /// Grows every thread's packing buffers to what a single-threaded product of (at most) this size takes, before a
    /// parallel loop whose items run such products on their own threads (<see cref="CpuContext.ReserveScratch"/>).
    /// </summary>
    internal static void ReserveScratch(int m, int n, int k, CpuContext ctx)
    {
        int kcMax = Math.Min(KC, k);
        ctx.ReserveScratch(ScratchSlot.GemmPackedA, (long)Math.Min(MC, RoundUp(m, MR)) * kcMax + 8);
        ctx.ReserveScratch(ScratchSlot.GemmPackedB, (long)Math.Min(NC, RoundUp(n, NR)) * kcMax);
    }

    /// <summary>
    /// The blocked loop nest on one thread (BLIS order: jc, pc, ic, jr, ir). With <paramref name="prepackedA"/> (all of
    /// op(A) packed by <see cref="PackWhole"/>) the A blocks are read from there instead of being packed; with
    /// <paramref name="prepackedB"/> (all of a wider op(B) packed by <see cref="PackBRows"/>, <paramref name="packedBColumns"/>
    /// columns to a row of panels) the panels of columns from <paramref name="packedBFirstColumn"/> on are read from there.
    /// </summary>
    private static void MultiplyOnThread(
        int m, int n, int k,
        float* a, int lda, bool transA, float* prepackedA,
        float* b, int ldb, bool transB, float* prepackedB, int packedBColumns, int packedBFirstColumn,
        float* c, int ldc, bool accumulate,
        in GemmEpilogue epilogue, CpuContext ctx, int threadIndex, GemmKernel kernel)
    {
        int kcMax = Math.Min(KC, k);
        int mcMax = Math.Min(MC, RoundUp(m, MR));
        int ncMax = Math.Min(NC, RoundUp(n, NR));
        // + 8: PackA's transposed stores may spill 2 floats past the last sliver.
        float* packedA = prepackedA != null ? null : ctx.Scratch(threadIndex, ScratchSlot.GemmPackedA, (long)mcMax * kcMax + 8);
        float* packedB = prepackedB != null ? null : ctx.Scratch(threadIndex, ScratchSlot.GemmPackedB, (long)ncMax * kcMax);
        float* edgeTile = stackalloc float[MR * NR];

        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc);
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                bool firstK = pc == 0;
                bool lastK = pc + kc == k;
                // A small M reads each B panel only a few times: packing B would cost more than it saves, so
                // full panels of a non-transposed B are read in place (row stride ldb) and only the ragged last
                // panel is packed (zero-padded).
                bool directB = prepackedB == null && !transB && m <= RowDotMaxM;
                if (prepackedB != null) packedB = prepackedB + (long)packedBColumns * pc + (long)(packedBFirstColumn + jc) * kc;
                else if (!directB) PackB(b, ldb, transB, pc, jc, kc, nc, packedB);
                else if (nc % NR != 0) PackB(b, ldb, transB, pc, jc + nc / NR * NR, kc, nc % NR, packedB);
                for (int ic = 0; ic < m; ic += MC)
                {
                    int mc = Math.Min(MC, m - ic);
                    float* blockA = packedA;
                    if (prepackedA != null) blockA = prepackedA + (long)RoundUp(m, MR) * pc + (long)ic * kc;
                    else PackA(a, lda, transA, ic, pc, mc, kc, packedA);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* panelB = directB ? (nr == NR ? b + (long)pc * ldb + jc + jr : packedB) : packedB + (long)jr * kc;
                        int strideB = directB && nr == NR ? ldb : NR;
                        for (int ir = 0; ir < mc; ir += MR)
                        {
                            int mr = Math.Min(MR, mc - ir);
                            float* sliverA = blockA + (long)ir * kc;
                            float* tile = c + (long)(ic + ir) * ldc + jc + jr;
                            bool add = accumulate || !firstK;
                            if (mr == MR && nr == NR)
                            {
                                RunKernel(kernel, kc, sliverA, panelB, strideB, tile, ldc, add);
                            }
                            else
                            {
                                // Edge tile: compute the full padded tile aside, then copy the valid part.
                                RunKernel(kernel, kc, sliverA, panelB, strideB, edgeTile, NR, false);
                                for (int r = 0; r < mr; r++)
                                {
                                    float* dst = tile + (long)r * ldc;
                                    float* src = edgeTile + r * NR;
                                    if (add) for (int j = 0; j < nr; j++) dst[j] += src[j];
                                    else for (int j = 0; j < nr; j++) dst[j] = src[j];
                                }
                            }
                            if (lastK && epilogue.IsActive)
                            {
                                var tileEpilogue = new GemmEpilogue(
                                    epilogue.RowBias == null ? null : epilogue.RowBias + ic + ir,
                                    epilogue.ColumnBias == null ? null : epilogue.ColumnBias + jc + jr,
                                    epilogue.Relu);
                                ApplyEpilogue(tile, ldc, mr, nr, tileEpilogue);
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>dst[k * ldd + i] = row_i[k] for i, k in [0, 8): the classic unpack / shuffle / permute transpose.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8Avx(float* r0, float* r1, float* r2, float* r3, float* r4, float* r5, float* r6, float* r7, float* dst, int ldd)
    {
        Vector256<float> t0 = Avx.UnpackLow(Avx.LoadVector256(r0), Avx.LoadVector256(r1));
        Vector256<float> t1 = Avx.UnpackHigh(Avx.LoadVector256(r0), Avx.LoadVector256(r1));
        Vector256<float> t2 = Avx.UnpackLow(Avx.LoadVector256(r2), Avx.LoadVector256(r3));
        Vector256<float> t3 = Avx.UnpackHigh(Avx.LoadVector256(r2), Avx.LoadVector256(r3));
        Vector256<float> t4 = Avx.UnpackLow(Avx.LoadVector256(r4), Avx.LoadVector256(r5));
        Vector256<float> t5 = Avx.UnpackHigh(Avx.LoadVector256(r4), Avx.LoadVector256(r5));
        Vector256<float> t6 = Avx.UnpackLow(Avx.LoadVector256(r6), Avx.LoadVector256(r7));
        Vector256<float> t7 = Avx.UnpackHigh(Avx.LoadVector256(r6), Avx.LoadVector256(r7));
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RunKernel(GemmKernel kernel, int kc, float* a, float* b, int strideB, float* c, int ldc, bool accumulate)
    {
        switch (kernel)
        {
            case GemmKernel.Vector512: MicroKernels.Kernel6x32Vector512(kc, a, b, strideB, c, ldc, accumulate); break;
            case GemmKernel.Vector256:
                MicroKernels.Kernel6x16Vector256(kc, a, b, strideB, c, ldc, accumulate);
                MicroKernels.Kernel6x16Vector256(kc, a, b + 16, strideB, c + 16, ldc, accumulate);
                break;
            default: MicroKernels.KernelScalar(kc, a, b, strideB, c, ldc, accumulate); break;
        }
    }

    /// <summary>c[i, j] += rowBias[i] + columnBias[j]; then max(0, .) when relu. Vectorised along the row.</summary>
    internal static void ApplyEpilogue(float* c, int ldc, int rows, int cols, in GemmEpilogue e)
    {
        float* rowBias = e.RowBias, colBias = e.ColumnBias;
        bool relu = e.Relu;
        for (int i = 0; i < rows; i++)
        {
            float* row = c + (long)i * ldc;
            float rb = rowBias == null ? 0f : rowBias[i];
            var rbv = Vector256.Create(rb);
            int j = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                for (; j <= cols - 8; j += 8)
                {
                    Vector256<float> v = Vector256.Load(row + j) + rbv;
                    if (colBias != null) v += Vector256.Load(colBias + j);
                    if (relu) v = Vector256.Max(v, Vector256<float>.Zero);
                    v.Store(row + j);
                }
            }
            for (; j < cols; j++)
            {
                float v = row[j] + rb;
                if (colBias != null) v += colBias[j];
                if (relu) v = v > 0f ? v : 0f;
                row[j] = v;
            }
        }
    }

    /// <summary>
    /// Packs op(A)[ic : ic + mc, pc : pc + kc] as MR-row slivers, each K-major: dst[sliver][p][r], rows past the
    /// end zero-filled so the micro-kernel always runs a full tile.
    /// </summary>
    private static void PackA(float* a, int lda, bool transA, int ic, int pc, int mc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* sliver = dst + (long)ir * kc;
            if (transA)
            {
                // op(A)(i, p) = a[p * lda + i]: each p gives MR contiguous values.
                float* src = a + (long)pc * lda + ic + ir;
                if (mr == MR)
                {
                    for (int p = 0; p < kc; p++, src += lda, sliver += MR)
                    {
                        sliver[0] = src[0]; sliver[1] = src[1]; sliver[2] = src[2];
                        sliver[3] = src[3]; sliver[4] = src[4]; sliver[5] = src[5];
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++, src += lda, sliver += MR)
                    {
                        int r = 0;
                        for (; r < mr; r++) sliver[r] = src[r];
                        for (; r < MR; r++) sliver[r] = 0f;
                    }
                }
            }
            else
            {
                // op(A)(i, p) = a[i * lda + p]: walk MR rows side by side.
                if (mr == MR && Avx.IsSupported)
                {
                    // 8 x 8 register transposes of the 6 rows (the last row read twice to fill 8): each output
                    // vector is 8 floats stored at a stride of 6, so its 2 extra lanes spill into the next slot and
                    // are overwritten by the next store (the scratch has room for the spill past the end).
                    float* r0 = a + (long)(ic + ir) * lda + pc;
                    float* r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda;
                    int p = 0;
                    for (; p + 8 <= kc; p += 8)
                        Transpose8x8Avx(r0 + p, r1 + p, r2 + p, r3 + p, r4 + p, r5 + p, r5 + p, r5 + p, sliver + p * MR, MR);
                    for (; p < kc; p++)
                    {
                        float* d = sliver + p * MR;
                        d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p]; d[3] = r3[p]; d[4] = r4[p]; d[5] = r5[p];
                    }
                    continue;
                }
                for (int r = 0; r < MR; r++)
                {
                    float* d = sliver + r;
                    if (r < mr)
                    {
                        float* src = a + (long)(ic + ir + r) * lda + pc;
                        for (int p = 0; p < kc; p++) d[p * MR] = src[p];
                    }
                    else
                    {
                        for (int p = 0; p < kc; p++) d[p * MR] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs op(B)[pc : pc + kc, jc : jc + nc] as NR-column panels, each K-major: dst[panel][p][j], columns past the
    /// end zero-filled.
    /// </summary>
    private static void PackB(float* b, int ldb, bool transB, int pc, int jc, int kc, int nc, float* dst)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* panel = dst + (long)jr * kc;
            if (!transB)
            {
                // op(B)(p, j) = b[p * ldb + j]: each p gives NR contiguous values.
                float* src = b + (long)pc * ldb + jc + jr;
                if (nr == NR && Vector256.IsHardwareAccelerated)
                {
                    for (int p = 0; p < kc; p++, src += ldb, panel += NR)
                    {
                        Vector256.Store(Vector256.Load(src), panel);
                        Vector256.Store(Vector256.Load(src + 8), panel + 8);
                        Vector256.Store(Vector256.Load(src + 16), panel + 16);
                        Vector256.Store(Vector256.Load(src + 24), panel + 24);
                    }
                }
                else
                {
                    for (int p = 0; p < kc; p++, src += ldb, panel += NR)
                    {
                        int j = 0;
                        for (; j < nr; j++) panel[j] = src[j];
                        for (; j < NR; j++) panel[j] = 0f;
                    }
                }
            }
            else
            {
                // op(B)(p, j) = b[j * ldb + p]: a transpose. Read 8 source rows at a time, each contiguous in p,
                // and write 8 adjacent floats of each packed row.
                int j = 0;
                for (; j + 8 <= nr; j += 8)
                {
                    float* s0 = b + (long)(jc + jr + j) * ldb + pc;
                    float* s1 = s0 + ldb, s2 = s1 + ldb, s3 = s2 + ldb, s4 = s3 + ldb, s5 = s4 + ldb, s6 = s5 + ldb, s7 = s6 + ldb;
                    float* d = panel + j;
                    int p = 0;
                    if (Avx.IsSupported)
                    {
                        // 8 x 8 blocks transposed in registers: 8 loads, 24 shuffles, 8 stores per 64 floats.
                        for (; p + 8 <= kc; p += 8, d += 8 * NR)
                            Transpose8x8Avx(s0 + p, s1 + p, s2 + p, s3 + p, s4 + p, s5 + p, s6 + p, s7 + p, d, NR);
                    }
                    for (; p < kc; p++, d += NR)
                    {
                        d[0] = s0[p]; d[1] = s1[p]; d[2] = s2[p]; d[3] = s3[p];
                        d[4] = s4[p]; d[5] = s5[p]; d[6] = s6[p]; d[7] = s7[p];
                    }
                }
                for (; j < nr; j++)
                {
                    float* s = b + (long)(jc + jr + j) * ldb + pc;
                    float* d = panel + j;
                    for (int p = 0; p < kc; p++, d += NR) *d = s[p];
                }
                for (; j < NR; j++)
                {
                    float* d = panel + j;
                    for (int p = 0; p < kc; p++, d += NR) *d = 0f;
                }
            }
        }
    }
}
