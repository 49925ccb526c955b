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
        var job = new RowDotJob { M = m, N = n, K = k, A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc, Epilogue = epilogue };
        int items = (n + RowDotRowsPerItem - 1) / RowDotRowsPerItem;
        ctx.For(items, &RowDotItem, Unsafe.AsPointer(ref job));
    }

    private struct RowDotJob
    {
        public int M, N, K, Lda, Ldb, Ldc;
        public float* A, B, C;
        public GemmEpilogue Epilogue;
    }

    private static void RowDotItem(void* state, int item, int threadIndex)
    {
        ref RowDotJob job = ref Unsafe.AsRef<RowDotJob>(state);
        int j0 = item * RowDotRowsPerItem, j1 = Math.Min(job.N, j0 + RowDotRowsPerItem);
        float* sums = stackalloc float[16];
        for (int j = j0; j < j1; j += 4)
        {
            int nj = Math.Min(4, j1 - j);
            // Rows past the end repeat the last valid row (their results are not stored).
            float* b0 = job.B + (long)j * job.Ldb;
            float* b1 = nj > 1 ? b0 + job.Ldb : b0;
            float* b2 = nj > 2 ? b0 + 2L * job.Ldb : b1;
            float* b3 = nj > 3 ? b0 + 3L * job.Ldb : b2;
            for (int i = 0; i < job.M; i += 4)
            {
                int mi = Math.Min(4, job.M - i);
                float* a0 = job.A + (long)i * job.Lda;
                float* a1 = mi > 1 ? a0 + job.Lda : a0;
                float* a2 = mi > 2 ? a0 + 2L * job.Lda : a1;
                float* a3 = mi > 3 ? a0 + 3L * job.Lda : a2;
                Dot4x4(job.K, a0, a1, a2, a3, b0, b1, b2, b3, sums);
                for (int r = 0; r < mi; r++)
                {
                    float* row = job.C + (long)(i + r) * job.Ldc + j;
                    for (int s = 0; s < nj; s++) row[s] = sums[r * 4 + s];
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

    /// <summary>sums[r * 4 + s] = dot(a_r, b_s) over k: 16 independent vector accumulators, 8 loads per 16 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x4(int k, float* a0, float* a1, float* a2, float* a3, float* b0, float* b1, float* b2, float* b3, float* sums)
    {
        int p = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
            Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
            for (; p <= k - 16; p += 16)
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
            sums[0] = Vector512.Sum(s00); sums[1] = Vector512.Sum(s01); sums[2] = Vector512.Sum(s02); sums[3] = Vector512.Sum(s03);
            sums[4] = Vector512.Sum(s10); sums[5] = Vector512.Sum(s11); sums[6] = Vector512.Sum(s12); sums[7] = Vector512.Sum(s13);
            sums[8] = Vector512.Sum(s20); sums[9] = Vector512.Sum(s21); sums[10] = Vector512.Sum(s22); sums[11] = Vector512.Sum(s23);
            sums[12] = Vector512.Sum(s30); sums[13] = Vector512.Sum(s31); sums[14] = Vector512.Sum(s32); sums[15] = Vector512.Sum(s33);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
            Vector256<float> s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
            for (; p <= k - 8; p += 8)
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
            sums[0] = Vector256.Sum(s00); sums[1] = Vector256.Sum(s01); sums[2] = Vector256.Sum(s02); sums[3] = Vector256.Sum(s03);
            sums[4] = Vector256.Sum(s10); sums[5] = Vector256.Sum(s11); sums[6] = Vector256.Sum(s12); sums[7] = Vector256.Sum(s13);
            sums[8] = Vector256.Sum(s20); sums[9] = Vector256.Sum(s21); sums[10] = Vector256.Sum(s22); sums[11] = Vector256.Sum(s23);
            sums[12] = Vector256.Sum(s30); sums[13] = Vector256.Sum(s31); sums[14] = Vector256.Sum(s32); sums[15] = Vector256.Sum(s33);
        }
        else
        {
            new Span<float>(sums, 16).Clear();
        }
        // The tail (K not a multiple of the vector width), in order after the vector part.
        for (; p < k; p++)
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
