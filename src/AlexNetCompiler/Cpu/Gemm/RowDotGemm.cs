using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
        int width = RowDotWidth, vectorK = job.VectorK;
        // Per group of 4 rows of A: its 16 lane-parallel sums (4 x 4 vectors), kept here between chunks of K.
        float* lanes = stackalloc float[RowDotGroups * 16 * 16];
        float* sums = stackalloc float[16];
        float** bRows = stackalloc float*[4];
        float** aRows = stackalloc float*[4 * RowDotGroups]; // 4 per group
        if (IsSingleRow(job.M)) RowDotSingle(ref job, j0, j1, vectorK);
        else for (int j = j0; j < j1; j += 4)
        {
            int nj = Math.Min(4, j1 - j);
            RowsRepeatingLast(job.B + (long)j * job.Ldb, job.Ldb, nj, bRows, 4);
            float* b0 = bRows[0], b1 = bRows[1], b2 = bRows[2], b3 = bRows[3];
            for (int first = 0; first < job.M; first += 4 * RowDotGroups)
            {
                int groups = Math.Min(RowDotGroups, (job.M - first + 3) / 4);
                for (int g = 0; g < groups; g++)
                {
                    int i = first + 4 * g;
                    RowsRepeatingLast(job.A + (long)i * job.Lda, job.Lda, Math.Min(4, job.M - i), aRows + 4 * g, 4);
                }
                new Span<float>(lanes, groups * 16 * width).Clear();
                // A chunk of the 4 rows of B stays in L1 while every group of A's rows is multiplied by it: B is read
                // from L2 once per chunk instead of once per group. Each lane still adds its products in order of p, so
                // the sums are the same bits whatever the chunk or the number of rows.
                for (int p0 = 0; p0 < vectorK; p0 += RowDotChunk)
                {
                    int p1 = Math.Min(vectorK, p0 + RowDotChunk);
                    for (int g = 0; g < groups; g++)
                    {
                        // The chunk's copies of the group's rows, the last repeated as in aRows.
                        int i = first + 4 * g, last = Math.Min(i + 3, job.M - 1), length = p1 - p0;
                        Dot4x4(p0, p1, job.ChunkRow(i, p0, length), job.ChunkRow(Math.Min(i + 1, last), p0, length),
                            job.ChunkRow(Math.Min(i + 2, last), p0, length), job.ChunkRow(last, p0, length), b0, b1, b2, b3, lanes + g * 16 * width);
                    }
                }
                for (int g = 0; g < groups; g++)
                {
                    int i = first + 4 * g, mi = Math.Min(4, job.M - i);
                    float** a = aRows + 4 * g;
                    SumLanes(vectorK, job.K, a[0], a[1], a[2], a[3], b0, b1, b2, b3, lanes + g * 16 * width, width, sums);
                    for (int r = 0; r < mi; r++)
                    {
                        float* row = job.C + (long)(i + r) * job.Ldc + j;
                        for (int s = 0; s < nj; s++) row[s] = sums[r * 4 + s];
                    }
                }
            }
        }
        if (job.Epilogue.IsActive)
        {
            var e = job.Epilogue;
            var shifted = new GemmEpilogue(e.RowBias, e.ColumnBias == null ? null : e.ColumnBias + j0, e.Relu);
            ApplyEpilogue(job.C + j0, job.Ldc, job.M, j1 - j0, shifted);
        }
    }

    /// <summary>
    /// One row of A (a batch of one): eight rows of B at a time, 9 loads per 8 FMAs and no repeated work, so the
    /// weights stream at the memory's pace. The same operations per element as the groups of four (lane sums in order
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

    /// <summary>sum plus the products over [vectorK, k), added in order (as <see cref="SumLanes"/> does).</summary>
    private static float TailSum(float sum, float* a, float* b, int vectorK, int k)
    {
        for (int p = vectorK; p < k; p++) sum += a[p] * b[p];
        return sum;
    }

    /// <summary>Groups of 4 rows of A whose lane sums an item keeps at once (24 rows: <see cref="RowDotMaxM"/>).</summary>
    private const int RowDotGroups = 6;

    /// <summary>
    /// Floats of K per chunk: 4 rows of B are 4 KiB, in L1 beside one group of A's rows (at batch 16, fc6 and fc7 ran
    /// about as fast with 512 and slower with 128 or 1024: the bench's kernels command).
    /// </summary>
    private const int RowDotChunk = 256;

    /// <summary>
    /// lanes[(r * 4 + s) * width ..] += the lane-parallel products of a_r and b_s over [p0, p1), a multiple of the
    /// vector width: 16 independent vector accumulators, 8 loads per 16 FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x4(int p0, int p1, float* a0, float* a1, float* a2, float* a3, float* b0, float* b1, float* b2, float* b3, float* lanes)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = (Vector512<float>*)lanes;
            Vector512<float> s00 = acc[0], s01 = acc[1], s02 = acc[2], s03 = acc[3], s10 = acc[4], s11 = acc[5], s12 = acc[6], s13 = acc[7];
            Vector512<float> s20 = acc[8], s21 = acc[9], s22 = acc[10], s23 = acc[11], s30 = acc[12], s31 = acc[13], s32 = acc[14], s33 = acc[15];
            for (int p = p0; p < p1; p += 16)
            {
                Vector512<float> w0 = Vector512.Load(b0 + p), w1 = Vector512.Load(b1 + p), w2 = Vector512.Load(b2 + p), w3 = Vector512.Load(b3 + p);
                Vector512<float> x = Vector512.Load(a0 + p);
                s00 = Vector512.FusedMultiplyAdd(x, w0, s00); s01 = Vector512.FusedMultiplyAdd(x, w1, s01);
                s02 = Vector512.FusedMultiplyAdd(x, w2, s02); s03 = Vector512.FusedMultiplyAdd(x, w3, s03);
                x = Vector512.Load(a1 + p);
                s10 = Vector512.FusedMultiplyAdd(x, w0, s10); s11 = Vector512.FusedMultiplyAdd(x, w1, s11);
                s12 = Vector512.FusedMultiplyAdd(x, w2, s12); s13 = Vector512.FusedMultiplyAdd(x, w3, s13);
                x = Vector512.Load(a2 + p);
                s20 = Vector512.FusedMultiplyAdd(x, w0, s20); s21 = Vector512.FusedMultiplyAdd(x, w1, s21);
                s22 = Vector512.FusedMultiplyAdd(x, w2, s22); s23 = Vector512.FusedMultiplyAdd(x, w3, s23);
                x = Vector512.Load(a3 + p);
                s30 = Vector512.FusedMultiplyAdd(x, w0, s30); s31 = Vector512.FusedMultiplyAdd(x, w1, s31);
                s32 = Vector512.FusedMultiplyAdd(x, w2, s32); s33 = Vector512.FusedMultiplyAdd(x, w3, s33);
            }
            acc[0] = s00; acc[1] = s01; acc[2] = s02; acc[3] = s03; acc[4] = s10; acc[5] = s11; acc[6] = s12; acc[7] = s13;
            acc[8] = s20; acc[9] = s21; acc[10] = s22; acc[11] = s23; acc[12] = s30; acc[13] = s31; acc[14] = s32; acc[15] = s33;
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var acc = (Vector256<float>*)lanes;
            Vector256<float> s00 = acc[0], s01 = acc[1], s02 = acc[2], s03 = acc[3], s10 = acc[4], s11 = acc[5], s12 = acc[6], s13 = acc[7];
            Vector256<float> s20 = acc[8], s21 = acc[9], s22 = acc[10], s23 = acc[11], s30 = acc[12], s31 = acc[13], s32 = acc[14], s33 = acc[15];
            for (int p = p0; p < p1; p += 8)
            {
                Vector256<float> w0 = Vector256.Load(b0 + p), w1 = Vector256.Load(b1 + p), w2 = Vector256.Load(b2 + p), w3 = Vector256.Load(b3 + p);
                Vector256<float> x = Vector256.Load(a0 + p);
                s00 = Vector256.FusedMultiplyAdd(x, w0, s00); s01 = Vector256.FusedMultiplyAdd(x, w1, s01);
                s02 = Vector256.FusedMultiplyAdd(x, w2, s02); s03 = Vector256.FusedMultiplyAdd(x, w3, s03);
                x = Vector256.Load(a1 + p);
                s10 = Vector256.FusedMultiplyAdd(x, w0, s10); s11 = Vector256.FusedMultiplyAdd(x, w1, s11);
                s12 = Vector256.FusedMultiplyAdd(x, w2, s12); s13 = Vector256.FusedMultiplyAdd(x, w3, s13);
                x = Vector256.Load(a2 + p);
                s20 = Vector256.FusedMultiplyAdd(x, w0, s20); s21 = Vector256.FusedMultiplyAdd(x, w1, s21);
                s22 = Vector256.FusedMultiplyAdd(x, w2, s22); s23 = Vector256.FusedMultiplyAdd(x, w3, s23);
                x = Vector256.Load(a3 + p);
                s30 = Vector256.FusedMultiplyAdd(x, w0, s30); s31 = Vector256.FusedMultiplyAdd(x, w1, s31);
                s32 = Vector256.FusedMultiplyAdd(x, w2, s32); s33 = Vector256.FusedMultiplyAdd(x, w3, s33);
            }
            acc[0] = s00; acc[1] = s01; acc[2] = s02; acc[3] = s03; acc[4] = s10; acc[5] = s11; acc[6] = s12; acc[7] = s13;
            acc[8] = s20; acc[9] = s21; acc[10] = s22; acc[11] = s23; acc[12] = s30; acc[13] = s31; acc[14] = s32; acc[15] = s33;
        }
    }

    /// <summary>
    /// sums[r * 4 + s] = the horizontal sum of lanes (r * 4 + s), then the products over [vectorK, k) (the tail past the
    /// last whole vector) added in order.
    /// </summary>
    private static void SumLanes(int vectorK, int k, float* a0, float* a1, float* a2, float* a3, float* b0, float* b1, float* b2, float* b3,
        float* lanes, int width, float* sums)
    {
        for (int t = 0; t < 16; t++)
        {
            sums[t] = width == 16 ? Vector512.Sum(Vector512.Load(lanes + t * 16))
                : width == 8 ? Vector256.Sum(Vector256.Load(lanes + t * 8))
                : 0f;
        }
        for (int p = vectorK; p < k; p++)
        {
            float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
            float w0 = b0[p], w1 = b1[p], w2 = b2[p], w3 = b3[p];
            sums[0] += x0 * w0; sums[1] += x0 * w1; sums[2] += x0 * w2; sums[3] += x0 * w3;
            sums[4] += x1 * w0; sums[5] += x1 * w1; sums[6] += x1 * w2; sums[7] += x1 * w3;
            sums[8] += x2 * w0; sums[9] += x2 * w1; sums[10] += x2 * w2; sums[11] += x2 * w3;
            sums[12] += x3 * w0; sums[13] += x3 * w1; sums[14] += x3 * w2; sums[15] += x3 * w3;
        }
    }
}
