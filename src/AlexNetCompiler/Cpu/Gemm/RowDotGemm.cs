using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// C[M, N] = A[M, K] * B[N, K]^T for a small M (a dense layer's forward pass at a small batch): every C element is
/// a dot product of two rows that are both contiguous in K, so nothing needs packing. The blocked GEMM would have
/// to transpose B (the whole weight matrix, read once) into panels, which costs more than the few multiply-adds
/// per weight that a small batch needs; here each weight row is streamed once, straight from memory, while the
/// M rows of A stay in L2.
/// </summary>
public static unsafe partial class Gemm
{
    /// <summary>Largest M for which <see cref="MultiplyRowsByRows"/> beats packing (A must stay in L2).</summary>
    public const int RowDotMaxM = 24;

    /// <summary>Rows of B per work item handed to a thread.</summary>
    private const int RowDotRowsPerItem = 64;

    /// <summary>
    /// C[i, j] = sum_p a[i * lda + p] * b[j * ldb + p], then the epilogue (any row and column bias, ReLU).
    /// Lane-parallel sums: each element is 16 (or 8) partial sums of K/16 products, then a horizontal add.
    /// </summary>
    public static void MultiplyRowsByRows(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc,
        in GemmEpilogue epilogue, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"GEMM sizes must be non-negative (M={m}, N={n}, K={k}).");
        if (m == 0 || n == 0) return;
        int vectorK = RowDotWidth == 0 ? 0 : k / RowDotWidth * RowDotWidth;
        var job = new RowDotJob { M = m, N = n, K = k, VectorK = vectorK, A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc, Epilogue = epilogue };
        if (!IsSingleRow(m) && vectorK > 0)
        {
            // Every item reads A's rows chunk by chunk. Rows a multiple of 4 KiB apart (fc6's 9216 floats are 36 KiB)
            // fall in the same L1 sets, more of them than a set holds, so each chunk is copied once, its rows side by side.
            job.Chunks = ctx.Scratch(0, ScratchSlot.InputRows, (long)m * vectorK);
            for (int p0 = 0; p0 < vectorK; p0 += RowDotChunk)
            {
                int length = Math.Min(RowDotChunk, vectorK - p0);
                for (int i = 0; i < m; i++)
                    new ReadOnlySpan<float>(a + (long)i * lda + p0, length).CopyTo(new Span<float>(job.Chunks + (long)p0 * m + i * length, length));
            }
        }
        int items = (n + RowDotRowsPerItem - 1) / RowDotRowsPerItem;
        ctx.For(items, &RowDotItem, Unsafe.AsPointer(ref job));
    }

    private struct RowDotJob
    {
        public int M, N, K, Lda, Ldb, Ldc;
        /// <summary>K rounded down to whole vectors: the lane-parallel part; the rest is the scalar tail.</summary>
        public int VectorK;
        public float* A, B, C;
        /// <summary>The vector part of A, chunk by chunk: chunk p0 / <see cref="RowDotChunk"/> holds A's rows side by side, each the chunk's length; null where A is read in place (<see cref="IsSingleRow"/>, or K shorter than a vector).</summary>
        public float* Chunks;
        public GemmEpilogue Epilogue;

        /// <summary>Row i of A, placed so that [p0, p0 + length of the chunk) indexes chunk p0 / <see cref="RowDotChunk"/>'s copy.</summary>
        public readonly float* ChunkRow(int i, int p0, int length) => Chunks + (long)p0 * (M - 1) + (long)i * length;
    }

    /// <summary>A batch of one with Vector512: <see cref="RowDotSingle"/>, which reads A in place.</summary>
    private static bool IsSingleRow(int m) => m == 1 && RowDotWidth == 16;

    /// <summary>Floats per vector of the lane-parallel sums: 16 (Vector512), 8 (Vector256), 0 (scalar).</summary>
    private static readonly int RowDotWidth = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 0;

    private static void RowDotItem(void* state, int item, int threadIndex)
    {
        ref RowDotJob job = ref Unsafe.AsRef<RowDotJob>(state);
        int j0 = item * RowDotRowsPerItem, j1 = Math.Min(job.N, j0 + RowDotRowsPerItem);
        if (IsSingleRow(job.M)) RowDotSingle(ref job, j0, j1, job.VectorK);
        else if (RowDotWidth == 16 && job.M >= 4) RowDotTiles(ref job, j0, j1);
        else RowDotPairs(ref job, j0, j1);
        if (job.Epilogue.IsActive)
        {
            var e = job.Epilogue;
            var shifted = new GemmEpilogue(e.RowBias, e.ColumnBias == null ? null : e.ColumnBias + j0, e.Relu);
            ApplyEpilogue(job.C + j0, job.Ldc, job.M, j1 - j0, shifted);
        }
    }

    /// <summary>
    /// Rows [j0, j1) of B against every row of A (two or three with Vector512, two or more with Vector256), eight rows
    /// of B at a time. A's rows are taken in pairs, each pair against the eight rows in one register tile (<see cref="Dot2x8"/>), chunk by chunk of K: a chunk of the eight
    /// rows stays in L1 while every pair is multiplied by it, and A's chunks are read from L2 once per eight rows of B.
    /// </summary>
    private static void RowDotPairs(ref RowDotJob job, int j0, int j1)
    {
        int width = RowDotWidth, vectorK = job.VectorK;
        // Per pair: its 16 lane-parallel sums (2 x 8 vectors), kept here between chunks of K.
        float* lanes = stackalloc float[MaxPairs * 16 * 16];
        float** bRows = stackalloc float*[8];
        for (int j = j0; j < j1; j += 8)
        {
            int nj = Math.Min(8, j1 - j);
            RowsRepeatingLast(job.B + (long)j * job.Ldb, job.Ldb, nj, bRows, 8);
            // Up to MaxPairs pairs at once; more rows of A (past RowDotMaxM) take another pass over these rows of B.
            for (int first = 0; first < job.M; first += 2 * MaxPairs)
            {
                int rows = Math.Min(2 * MaxPairs, job.M - first), pairs = (rows + 1) / 2;
                new Span<float>(lanes, pairs * 16 * width).Clear();
                // Each lane adds its products in order of p, so the sums are the same bits whatever the chunk, the tile
                // or the number of rows (and the same as RowDotSingle's).
                for (int p0 = 0; p0 < vectorK; p0 += RowDotChunk)
                {
                    int p1 = Math.Min(vectorK, p0 + RowDotChunk), length = p1 - p0;
                    int nextLength = first == 0 ? Math.Min(RowDotChunk, vectorK - p1) : 0;
                    for (int g = 0; g < pairs; g++)
                    {
                        // The weights come from memory with the first pair. Fetched only when that pair asks for them,
                        // the multiply-adds would wait on each chunk; instead the pairs share out the asking for the
                        // eight rows' next chunk (one row each at eight pairs, several each with fewer), so that the
                        // fetch overlaps their work. A second block of rows finds the weights in cache already.
                        for (int r = g; r < 8 && nextLength > 0; r += pairs) PrefetchRun(bRows[r] + p1, nextLength);
                        int i = first + 2 * g;
                        Dot2x8(p0, p1, job.ChunkRow(i, p0, length), job.ChunkRow(Math.Min(i + 1, job.M - 1), p0, length), bRows, lanes + g * 16 * width);
                    }
                }
                for (int r = 0; r < rows; r++)
                {
                    int i = first + r;
                    float* a = job.A + (long)i * job.Lda;
                    float* rowLanes = lanes + (r / 2 * 16 + r % 2 * 8) * width;
                    float* c = job.C + (long)i * job.Ldc + j;
                    for (int s = 0; s < nj; s++) c[s] = TailSum(LaneSum(rowLanes + s * width, width), a, bRows[s], vectorK, job.K);
                }
            }
        }
    }

    /// <summary>
    /// Rows [j0, j1) of B against four or more rows of A with Vector512: six rows of B at a time against four rows of
    /// A at a time (<see cref="Dot4x6"/>, 24 accumulators), chunk by chunk of K, the next chunk of the six rows fetched
    /// while the groups of four work on this one. Ten loads per 24 FMAs, where <see cref="Dot2x8"/> takes ten per 16:
    /// the bench's dense command at batch 16 ran fc6's forward product in 6.7-7.6 ms instead of 8.8-9.2, fc7's in
    /// 2.9 instead of 3.4-3.5. Each lane still adds its products in order of p, so the same bits as
    /// <see cref="RowDotSingle"/>. Two or three rows of A keep the pairs, which repeat at most one.
    /// </summary>
    private static void RowDotTiles(ref RowDotJob job, int j0, int j1)
    {
        const int rowsOfB = 6, rowsOfA = 4, mostGroups = (RowDotMaxM + rowsOfA - 1) / rowsOfA;
        float** bRows = stackalloc float*[rowsOfB];
        int* aRows = stackalloc int[rowsOfA];
        // Per four rows of A: their 24 lane-parallel sums, kept here between chunks of K.
        Vector512<float>* lanes = stackalloc Vector512<float>[mostGroups * rowsOfA * rowsOfB];
        for (int j = j0; j < j1; j += rowsOfB)
        {
            int nj = Math.Min(rowsOfB, j1 - j);
            RowsRepeatingLast(job.B + (long)j * job.Ldb, job.Ldb, nj, bRows, rowsOfB);
            // Up to RowDotMaxM rows of A at once; more take another pass over these rows of B.
            for (int firstRow = 0; firstRow < job.M; firstRow += mostGroups * rowsOfA)
            {
                int rows = Math.Min(mostGroups * rowsOfA, job.M - firstRow), groups = (rows + rowsOfA - 1) / rowsOfA;
                new Span<Vector512<float>>(lanes, groups * rowsOfA * rowsOfB).Clear();
                for (int p0 = 0; p0 < job.VectorK; p0 += RowDotChunk)
                {
                    int p1 = Math.Min(job.VectorK, p0 + RowDotChunk), length = p1 - p0;
                    int nextLength = firstRow == 0 ? Math.Min(RowDotChunk, job.VectorK - p1) : 0;
                    for (int g = 0; g < groups; g++)
                    {
                        // The groups share out the asking for the six rows' next chunk, so that it arrives while they work.
                        for (int r = g; r < rowsOfB && nextLength > 0; r += groups) PrefetchRun(bRows[r] + p1, nextLength);
                        // Rows past A's last repeat it (their sums are not stored).
                        for (int r = 0; r < rowsOfA; r++) aRows[r] = firstRow + Math.Min(g * rowsOfA + r, rows - 1);
                        Dot4x6(p0, p1, job.ChunkRow(aRows[0], p0, length), job.ChunkRow(aRows[1], p0, length),
                            job.ChunkRow(aRows[2], p0, length), job.ChunkRow(aRows[3], p0, length), bRows, lanes + g * rowsOfA * rowsOfB);
                    }
                }
                for (int r = 0; r < rows; r++)
                {
                    int i = firstRow + r;
                    float* a = job.A + (long)i * job.Lda;
                    float* c = job.C + (long)i * job.Ldc + j;
                    // Row r's sums: group r / 4, its row r % 4 of the group's six-wide rows, so at 6 r.
                    Vector512<float>* rowLanes = lanes + r * rowsOfB;
                    for (int t = 0; t < nj; t++) c[t] = TailSum(Vector512.Sum(rowLanes[t]), a, bRows[t], job.VectorK, job.K);
                }
            }
        }
    }

    /// <summary>
    /// lanes[r * 6 + t] += the lane-parallel products of a_r and rows[t] over [p0, p1), a multiple of 16 (each a_r
    /// indexed as the rows of B are): 24 independent Vector512 accumulators, 10 loads per 24 FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x6(int p0, int p1, float* a0, float* a1, float* a2, float* a3, float** rows, Vector512<float>* lanes)
    {
        float* b0 = rows[0], b1 = rows[1], b2 = rows[2], b3 = rows[3], b4 = rows[4], b5 = rows[5];
        Vector512<float> s00 = lanes[0], s01 = lanes[1], s02 = lanes[2], s03 = lanes[3], s04 = lanes[4], s05 = lanes[5];
        Vector512<float> s10 = lanes[6], s11 = lanes[7], s12 = lanes[8], s13 = lanes[9], s14 = lanes[10], s15 = lanes[11];
        Vector512<float> s20 = lanes[12], s21 = lanes[13], s22 = lanes[14], s23 = lanes[15], s24 = lanes[16], s25 = lanes[17];
        Vector512<float> s30 = lanes[18], s31 = lanes[19], s32 = lanes[20], s33 = lanes[21], s34 = lanes[22], s35 = lanes[23];
        for (int p = p0; p < p1; p += 16)
        {
            Vector512<float> x0 = Vector512.Load(a0 + p), x1 = Vector512.Load(a1 + p), x2 = Vector512.Load(a2 + p), x3 = Vector512.Load(a3 + p);
            Vector512<float> w = Vector512.Load(b0 + p);
            s00 = Vector512.FusedMultiplyAdd(x0, w, s00); s10 = Vector512.FusedMultiplyAdd(x1, w, s10);
            s20 = Vector512.FusedMultiplyAdd(x2, w, s20); s30 = Vector512.FusedMultiplyAdd(x3, w, s30);
            w = Vector512.Load(b1 + p);
            s01 = Vector512.FusedMultiplyAdd(x0, w, s01); s11 = Vector512.FusedMultiplyAdd(x1, w, s11);
            s21 = Vector512.FusedMultiplyAdd(x2, w, s21); s31 = Vector512.FusedMultiplyAdd(x3, w, s31);
            w = Vector512.Load(b2 + p);
            s02 = Vector512.FusedMultiplyAdd(x0, w, s02); s12 = Vector512.FusedMultiplyAdd(x1, w, s12);
            s22 = Vector512.FusedMultiplyAdd(x2, w, s22); s32 = Vector512.FusedMultiplyAdd(x3, w, s32);
            w = Vector512.Load(b3 + p);
            s03 = Vector512.FusedMultiplyAdd(x0, w, s03); s13 = Vector512.FusedMultiplyAdd(x1, w, s13);
            s23 = Vector512.FusedMultiplyAdd(x2, w, s23); s33 = Vector512.FusedMultiplyAdd(x3, w, s33);
            w = Vector512.Load(b4 + p);
            s04 = Vector512.FusedMultiplyAdd(x0, w, s04); s14 = Vector512.FusedMultiplyAdd(x1, w, s14);
            s24 = Vector512.FusedMultiplyAdd(x2, w, s24); s34 = Vector512.FusedMultiplyAdd(x3, w, s34);
            w = Vector512.Load(b5 + p);
            s05 = Vector512.FusedMultiplyAdd(x0, w, s05); s15 = Vector512.FusedMultiplyAdd(x1, w, s15);
            s25 = Vector512.FusedMultiplyAdd(x2, w, s25); s35 = Vector512.FusedMultiplyAdd(x3, w, s35);
        }
        lanes[0] = s00; lanes[1] = s01; lanes[2] = s02; lanes[3] = s03; lanes[4] = s04; lanes[5] = s05;
        lanes[6] = s10; lanes[7] = s11; lanes[8] = s12; lanes[9] = s13; lanes[10] = s14; lanes[11] = s15;
        lanes[12] = s20; lanes[13] = s21; lanes[14] = s22; lanes[15] = s23; lanes[16] = s24; lanes[17] = s25;
        lanes[18] = s30; lanes[19] = s31; lanes[20] = s32; lanes[21] = s33; lanes[22] = s34; lanes[23] = s35;
    }

    /// <summary>Pairs of A's rows an item keeps lane sums for (<see cref="RowDotMaxM"/> rows).</summary>
    private const int MaxPairs = (RowDotMaxM + 1) / 2;

    /// <summary>Asks for the cache lines of [p, p + length) ahead of their use (x86; elsewhere the hardware's prefetcher alone).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchRun(float* p, int length)
    {
        if (!Sse.IsSupported) return;
        for (int q = 0; q < length; q += 16) Sse.Prefetch0(p + q);
    }

    /// <summary>The horizontal sum of one accumulator's lanes (none without SIMD: the tail then holds all of K).</summary>
    private static float LaneSum(float* lanes, int width) =>
        width == 16 ? Vector512.Sum(Vector512.Load(lanes)) : width == 8 ? Vector256.Sum(Vector256.Load(lanes)) : 0f;

    /// <summary>
    /// One row of A (a batch of one): eight rows of B at a time, 9 loads per 8 FMAs and no repeated work, so the
    /// weights stream at the memory's pace. The same operations per element as the pairs of rows (lane sums in order
    /// of p, the horizontal sum, then the tail), so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowDotSingle(ref RowDotJob job, int j0, int j1, int vectorK)
    {
        float* a = job.A;
        float** rows = stackalloc float*[8];
        for (int j = j0; j < j1; j += 8)
        {
            int nj = Math.Min(8, j1 - j);
            RowsRepeatingLast(job.B + (long)j * job.Ldb, job.Ldb, nj, rows, 8);
            float* b0 = rows[0], b1 = rows[1], b2 = rows[2], b3 = rows[3], b4 = rows[4], b5 = rows[5], b6 = rows[6], b7 = rows[7];
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            for (int p = 0; p < vectorK; p += 16)
            {
                Vector512<float> x = Vector512.Load(a + p);
                s0 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b0 + p), s0);
                s1 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b1 + p), s1);
                s2 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b2 + p), s2);
                s3 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b3 + p), s3);
                s4 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b4 + p), s4);
                s5 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b5 + p), s5);
                s6 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b6 + p), s6);
                s7 = Vector512.FusedMultiplyAdd(x, Vector512.Load(b7 + p), s7);
            }
            // The horizontal sums first: an accumulator still live at a call would be kept in memory, not in a
            // register, and stored on every pass of the loop above.
            float t0 = Vector512.Sum(s0), t1 = Vector512.Sum(s1), t2 = Vector512.Sum(s2), t3 = Vector512.Sum(s3);
            float t4 = Vector512.Sum(s4), t5 = Vector512.Sum(s5), t6 = Vector512.Sum(s6), t7 = Vector512.Sum(s7);
            float* c = job.C + j;
            if (nj > 0) c[0] = TailSum(t0, a, b0, vectorK, job.K);
            if (nj > 1) c[1] = TailSum(t1, a, b1, vectorK, job.K);
            if (nj > 2) c[2] = TailSum(t2, a, b2, vectorK, job.K);
            if (nj > 3) c[3] = TailSum(t3, a, b3, vectorK, job.K);
            if (nj > 4) c[4] = TailSum(t4, a, b4, vectorK, job.K);
            if (nj > 5) c[5] = TailSum(t5, a, b5, vectorK, job.K);
            if (nj > 6) c[6] = TailSum(t6, a, b6, vectorK, job.K);
            if (nj > 7) c[7] = TailSum(t7, a, b7, vectorK, job.K);
        }
    }

    /// <summary>
    /// rows[t] = first + min(t, valid - 1) * stride for t &lt; count: the rows of a register tile, those past the end
    /// repeating the last valid one (their results are computed but not stored).
    /// </summary>
    private static void RowsRepeatingLast(float* first, long stride, int valid, float** rows, int count)
    {
        for (int t = 0; t < count; t++) rows[t] = first + Math.Min(t, valid - 1) * stride;
    }

    /// <summary>sum plus the products over [vectorK, k), added in order: the tail past the last whole vector.</summary>
    private static float TailSum(float sum, float* a, float* b, int vectorK, int k)
    {
        for (int p = vectorK; p < k; p++) sum += a[p] * b[p];
        return sum;
    }

    /// <summary>
    /// Floats of K per chunk: eight rows of B are 16 KiB, with one pair of A's rows and the next chunk being fetched
    /// about 36 KiB, which fits a 48 KiB L1 (on the AMD EPYC, fc6 and fc7 at batch 16 ran faster with 512 than with
    /// 256, and about as fast with 1024: the bench's dense command).
    /// </summary>
    private const int RowDotChunk = 512;

    /// <summary>
    /// lanes[(r * 8 + s) * width ..] += the lane-parallel products of a_r and rows[s] over [p0, p1), a multiple of the
    /// vector width: 16 independent vector accumulators, 10 loads per 16 FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot2x8(int p0, int p1, float* a0, float* a1, float** rows, float* lanes)
    {
        float* b0 = rows[0], b1 = rows[1], b2 = rows[2], b3 = rows[3], b4 = rows[4], b5 = rows[5], b6 = rows[6], b7 = rows[7];
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = (Vector512<float>*)lanes;
            Vector512<float> s00 = acc[0], s01 = acc[1], s02 = acc[2], s03 = acc[3], s04 = acc[4], s05 = acc[5], s06 = acc[6], s07 = acc[7];
            Vector512<float> s10 = acc[8], s11 = acc[9], s12 = acc[10], s13 = acc[11], s14 = acc[12], s15 = acc[13], s16 = acc[14], s17 = acc[15];
            for (int p = p0; p < p1; p += 16)
            {
                Vector512<float> x0 = Vector512.Load(a0 + p), x1 = Vector512.Load(a1 + p);
                Vector512<float> w = Vector512.Load(b0 + p);
                s00 = Vector512.FusedMultiplyAdd(x0, w, s00); s10 = Vector512.FusedMultiplyAdd(x1, w, s10);
                w = Vector512.Load(b1 + p);
                s01 = Vector512.FusedMultiplyAdd(x0, w, s01); s11 = Vector512.FusedMultiplyAdd(x1, w, s11);
                w = Vector512.Load(b2 + p);
                s02 = Vector512.FusedMultiplyAdd(x0, w, s02); s12 = Vector512.FusedMultiplyAdd(x1, w, s12);
                w = Vector512.Load(b3 + p);
                s03 = Vector512.FusedMultiplyAdd(x0, w, s03); s13 = Vector512.FusedMultiplyAdd(x1, w, s13);
                w = Vector512.Load(b4 + p);
                s04 = Vector512.FusedMultiplyAdd(x0, w, s04); s14 = Vector512.FusedMultiplyAdd(x1, w, s14);
                w = Vector512.Load(b5 + p);
                s05 = Vector512.FusedMultiplyAdd(x0, w, s05); s15 = Vector512.FusedMultiplyAdd(x1, w, s15);
                w = Vector512.Load(b6 + p);
                s06 = Vector512.FusedMultiplyAdd(x0, w, s06); s16 = Vector512.FusedMultiplyAdd(x1, w, s16);
                w = Vector512.Load(b7 + p);
                s07 = Vector512.FusedMultiplyAdd(x0, w, s07); s17 = Vector512.FusedMultiplyAdd(x1, w, s17);
            }
            acc[0] = s00; acc[1] = s01; acc[2] = s02; acc[3] = s03; acc[4] = s04; acc[5] = s05; acc[6] = s06; acc[7] = s07;
            acc[8] = s10; acc[9] = s11; acc[10] = s12; acc[11] = s13; acc[12] = s14; acc[13] = s15; acc[14] = s16; acc[15] = s17;
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var acc = (Vector256<float>*)lanes;
            Vector256<float> s00 = acc[0], s01 = acc[1], s02 = acc[2], s03 = acc[3], s04 = acc[4], s05 = acc[5], s06 = acc[6], s07 = acc[7];
            Vector256<float> s10 = acc[8], s11 = acc[9], s12 = acc[10], s13 = acc[11], s14 = acc[12], s15 = acc[13], s16 = acc[14], s17 = acc[15];
            for (int p = p0; p < p1; p += 8)
            {
                Vector256<float> x0 = Vector256.Load(a0 + p), x1 = Vector256.Load(a1 + p);
                Vector256<float> w = Vector256.Load(b0 + p);
                s00 = Vector256.FusedMultiplyAdd(x0, w, s00); s10 = Vector256.FusedMultiplyAdd(x1, w, s10);
                w = Vector256.Load(b1 + p);
                s01 = Vector256.FusedMultiplyAdd(x0, w, s01); s11 = Vector256.FusedMultiplyAdd(x1, w, s11);
                w = Vector256.Load(b2 + p);
                s02 = Vector256.FusedMultiplyAdd(x0, w, s02); s12 = Vector256.FusedMultiplyAdd(x1, w, s12);
                w = Vector256.Load(b3 + p);
                s03 = Vector256.FusedMultiplyAdd(x0, w, s03); s13 = Vector256.FusedMultiplyAdd(x1, w, s13);
                w = Vector256.Load(b4 + p);
                s04 = Vector256.FusedMultiplyAdd(x0, w, s04); s14 = Vector256.FusedMultiplyAdd(x1, w, s14);
                w = Vector256.Load(b5 + p);
                s05 = Vector256.FusedMultiplyAdd(x0, w, s05); s15 = Vector256.FusedMultiplyAdd(x1, w, s15);
                w = Vector256.Load(b6 + p);
                s06 = Vector256.FusedMultiplyAdd(x0, w, s06); s16 = Vector256.FusedMultiplyAdd(x1, w, s16);
                w = Vector256.Load(b7 + p);
                s07 = Vector256.FusedMultiplyAdd(x0, w, s07); s17 = Vector256.FusedMultiplyAdd(x1, w, s17);
            }
            acc[0] = s00; acc[1] = s01; acc[2] = s02; acc[3] = s03; acc[4] = s04; acc[5] = s05; acc[6] = s06; acc[7] = s07;
            acc[8] = s10; acc[9] = s11; acc[10] = s12; acc[11] = s13; acc[12] = s14; acc[13] = s15; acc[14] = s16; acc[15] = s17;
        }
    }
}
