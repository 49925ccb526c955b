using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// The dense layer's backward products at a small batch, streamed without packing. With N samples each weight takes
/// part in only N multiply-adds per product, so the products are bound by memory, not arithmetic: the blocked GEMM
/// would first copy the whole weight matrix into packed panels (for fc6 of AlexNet, 151 MB read and written again)
/// and run its 6-row micro-tile mostly empty. Here every weight row is read once, straight from memory, and every
/// weight-gradient row written once, while the N rows of the input and of the output gradient stay in cache.
/// Vector512 only; elsewhere the blocked GEMM runs.
/// </summary>
public static unsafe partial class DenseKernels
{
    /// <summary>Columns of a strip: four Vector512 of floats, the width of one register tile.</summary>
    private const int StripWidth = 64;

    /// <summary>Rows of a tile: with four vectors each, 16 accumulator registers.</summary>
    private const int TileRows = 4;

    /// <summary>Weight rows summed into one partial sum before it is added to the result (as the GEMM's K block).</summary>
    private const int SumBlock = Gemm.KC;

    /// <summary>Weight-gradient rows per work item.</summary>
    private const int GradientRowsPerItem = 16;

    private static bool UseSmallBatchBackward(int batch) => batch <= Gemm.RowDotMaxM && Vector512.IsHardwareAccelerated;

    private struct SmallBatchJob
    {
        public int Batch, In, Out;
        /// <summary>Floats between rows of <see cref="X"/> (<see cref="InputRowsApart"/>).</summary>
        public int XStride;
        public float* X, W, DY, DX, DW;
    }

    /// <summary>
    /// The input's rows, copied into scratch (<see cref="ScratchSlot.InputRows"/>) with a row stride one cache line past
    /// a multiple of 4 KiB. The weight-gradient tiles read a strip of every row at once; in place, rows a multiple of
    /// 4 KiB apart (fc6's 9216 floats, fc7's 4096) fall in the same L1 sets, 16 rows in sets of 12 ways, and every read
    /// missed L1; here each row starts one set further on. Same values, so the same bits.
    /// </summary>
    private static float* InputRowsApart(int batch, int inFeatures, float* x, CpuContext ctx, out int stride)
    {
        stride = (inFeatures + 1023) / 1024 * 1024 + 16;
        float* rows = ctx.Scratch(0, ScratchSlot.InputRows, (long)batch * stride);
        for (int n = 0; n < batch; n++)
            new ReadOnlySpan<float>(x + (long)n * inFeatures, inFeatures).CopyTo(new Span<float>(rows + (long)n * stride, inFeatures));
        return rows;
    }

    /// <summary>dX[N, IN] = dY[N, OUT] * W[OUT, IN]: one work item per strip of input columns.</summary>
    private static void BackwardInputSmallBatch(int batch, int inFeatures, int outFeatures, float* dy, float* w, float* dx, CpuContext ctx)
    {
        var job = new SmallBatchJob { Batch = batch, In = inFeatures, Out = outFeatures, DY = dy, W = w, DX = dx };
        ctx.For((inFeatures + StripWidth - 1) / StripWidth, &InputStrip, Unsafe.AsPointer(ref job));
    }

    /// <summary>dW[OUT, IN] = dY[N, OUT]^T * X[N, IN]: one work item per block of weight rows.</summary>
    private static void BackwardWeightSmallBatch(int batch, int inFeatures, int outFeatures, float* x, float* dy, float* dw, CpuContext ctx)
    {
        var job = new SmallBatchJob { Batch = batch, In = inFeatures, Out = outFeatures, DY = dy, DW = dw };
        job.X = InputRowsApart(batch, inFeatures, x, ctx, out job.XStride);
        ctx.For((outFeatures + GradientRowsPerItem - 1) / GradientRowsPerItem, &WeightRows, Unsafe.AsPointer(ref job));
    }

    private static void InputStrip(void* state, int item, int threadIndex)
    {
        ref SmallBatchJob job = ref Unsafe.AsRef<SmallBatchJob>(state);
        int c0 = item * StripWidth;
        bool fullStrip = c0 + StripWidth <= job.In;
        // Block over the weight rows first, so the block of the strip (SumBlock x 64 floats, 64 KiB) stays in L2
        // while every group of samples passes over it.
        for (int o0 = 0; o0 < job.Out; o0 += SumBlock)
        {
            int o1 = Math.Min(job.Out, o0 + SumBlock);
            for (int n0 = 0; n0 < job.Batch; n0 += TileRows)
            {
                int rows = Math.Min(TileRows, job.Batch - n0);
                if (fullStrip) InputTile(ref job, c0, n0, rows, o0, o1);
                else InputColumnsScalar(ref job, c0, job.In, n0, rows, o0, o1);
            }
        }
    }

    /// <summary>
    /// dX[n0.., c0..c0+64] (+)= sum over o in [o0, o1) of dY[n, o] W[o, c]: a 4 x 64 register tile, one FMA chain per
    /// element, added to the result once per block (stored by the first block).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputTile(ref SmallBatchJob job, int c0, int n0, int rows, int o0, int o1)
    {
        int outF = job.Out;
        // Rows past the batch repeat the last sample (their sums are not stored).
        float* d0 = job.DY + (long)n0 * outF;
        float* d1 = rows > 1 ? d0 + outF : d0;
        float* d2 = rows > 2 ? d0 + 2L * outF : d1;
        float* d3 = rows > 3 ? d0 + 3L * outF : d2;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        float* wRow = job.W + (long)o0 * job.In + c0;
        for (int o = o0; o < o1; o++, wRow += job.In)
        {
            Vector512<float> w0 = Vector512.Load(wRow), w1 = Vector512.Load(wRow + 16), w2 = Vector512.Load(wRow + 32), w3 = Vector512.Load(wRow + 48);
            var g = Vector512.Create(d0[o]);
            a00 = Vector512.FusedMultiplyAdd(g, w0, a00); a01 = Vector512.FusedMultiplyAdd(g, w1, a01);
            a02 = Vector512.FusedMultiplyAdd(g, w2, a02); a03 = Vector512.FusedMultiplyAdd(g, w3, a03);
            g = Vector512.Create(d1[o]);
            a10 = Vector512.FusedMultiplyAdd(g, w0, a10); a11 = Vector512.FusedMultiplyAdd(g, w1, a11);
            a12 = Vector512.FusedMultiplyAdd(g, w2, a12); a13 = Vector512.FusedMultiplyAdd(g, w3, a13);
            g = Vector512.Create(d2[o]);
            a20 = Vector512.FusedMultiplyAdd(g, w0, a20); a21 = Vector512.FusedMultiplyAdd(g, w1, a21);
            a22 = Vector512.FusedMultiplyAdd(g, w2, a22); a23 = Vector512.FusedMultiplyAdd(g, w3, a23);
            g = Vector512.Create(d3[o]);
            a30 = Vector512.FusedMultiplyAdd(g, w0, a30); a31 = Vector512.FusedMultiplyAdd(g, w1, a31);
            a32 = Vector512.FusedMultiplyAdd(g, w2, a32); a33 = Vector512.FusedMultiplyAdd(g, w3, a33);
        }
        bool first = o0 == 0;
        float* dx = job.DX + (long)n0 * job.In + c0;
        StoreOrAdd(dx, first, a00, a01, a02, a03);
        if (rows > 1) StoreOrAdd(dx + job.In, first, a10, a11, a12, a13);
        if (rows > 2) StoreOrAdd(dx + 2L * job.In, first, a20, a21, a22, a23);
        if (rows > 3) StoreOrAdd(dx + 3L * job.In, first, a30, a31, a32, a33);
    }

    /// <summary>The columns of a last, partial strip, one at a time, summed in the same blocks.</summary>
    private static void InputColumnsScalar(ref SmallBatchJob job, int c0, int c1, int n0, int rows, int o0, int o1)
    {
        for (int r = 0; r < rows; r++)
        {
            float* d = job.DY + (long)(n0 + r) * job.Out;
            float* dx = job.DX + (long)(n0 + r) * job.In;
            for (int c = c0; c < c1; c++)
            {
                float sum = 0;
                for (int o = o0; o < o1; o++) sum = MathF.FusedMultiplyAdd(d[o], job.W[(long)o * job.In + c], sum);
                dx[c] = o0 == 0 ? sum : dx[c] + sum;
            }
        }
    }

    private static void WeightRows(void* state, int item, int threadIndex)
    {
        ref SmallBatchJob job = ref Unsafe.AsRef<SmallBatchJob>(state);
        int o0 = item * GradientRowsPerItem, o1 = Math.Min(job.Out, o0 + GradientRowsPerItem);
        int fullColumns = job.In / StripWidth * StripWidth;
        for (int o = o0; o < o1; o += TileRows)
        {
            int rows = Math.Min(TileRows, o1 - o);
            float* dw = job.DW + (long)o * job.In;
            for (int c = 0; c < fullColumns; c += StripWidth) WeightTile(job.Batch, job.XStride, job.Out, job.X + c, job.DY + o, rows, dw + c, job.In);
            WeightColumnsScalar(job.Batch, job.XStride, job.Out, job.X + fullColumns, job.DY + o, rows, job.In - fullColumns, dw + fullColumns, job.In);
        }
    }

    /// <summary>
    /// dst[r * dstStride + j] = sum over the samples n of dy[n * outF + r] x[n * xStride + j], r &lt; rows (at most 4),
    /// j &lt; 64: a 4 x 64 register tile of the weight gradient, one FMA chain over the samples per element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightTile(int batch, int xStride, int outF, float* x, float* dy, int rows, float* dst, long dstStride)
    {
        // Rows past the block repeat the last row (their sums are not stored).
        int r1 = rows > 1 ? 1 : 0, r2 = rows > 2 ? 2 : r1, r3 = rows > 3 ? 3 : r2;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        float* xRow = x;
        float* d = dy;
        for (int n = 0; n < batch; n++, xRow += xStride, d += outF)
        {
            Vector512<float> x0 = Vector512.Load(xRow), x1 = Vector512.Load(xRow + 16), x2 = Vector512.Load(xRow + 32), x3 = Vector512.Load(xRow + 48);
            var g = Vector512.Create(d[0]);
            a00 = Vector512.FusedMultiplyAdd(g, x0, a00); a01 = Vector512.FusedMultiplyAdd(g, x1, a01);
            a02 = Vector512.FusedMultiplyAdd(g, x2, a02); a03 = Vector512.FusedMultiplyAdd(g, x3, a03);
            g = Vector512.Create(d[r1]);
            a10 = Vector512.FusedMultiplyAdd(g, x0, a10); a11 = Vector512.FusedMultiplyAdd(g, x1, a11);
            a12 = Vector512.FusedMultiplyAdd(g, x2, a12); a13 = Vector512.FusedMultiplyAdd(g, x3, a13);
            g = Vector512.Create(d[r2]);
            a20 = Vector512.FusedMultiplyAdd(g, x0, a20); a21 = Vector512.FusedMultiplyAdd(g, x1, a21);
            a22 = Vector512.FusedMultiplyAdd(g, x2, a22); a23 = Vector512.FusedMultiplyAdd(g, x3, a23);
            g = Vector512.Create(d[r3]);
            a30 = Vector512.FusedMultiplyAdd(g, x0, a30); a31 = Vector512.FusedMultiplyAdd(g, x1, a31);
            a32 = Vector512.FusedMultiplyAdd(g, x2, a32); a33 = Vector512.FusedMultiplyAdd(g, x3, a33);
        }
        StoreOrAdd(dst, true, a00, a01, a02, a03);
        if (rows > 1) StoreOrAdd(dst + dstStride, true, a10, a11, a12, a13);
        if (rows > 2) StoreOrAdd(dst + 2 * dstStride, true, a20, a21, a22, a23);
        if (rows > 3) StoreOrAdd(dst + 3 * dstStride, true, a30, a31, a32, a33);
    }

    /// <summary><see cref="WeightTile"/> for <paramref name="columns"/> columns one at a time (those past the last whole strip).</summary>
    private static void WeightColumnsScalar(int batch, int xStride, int outF, float* x, float* dy, int rows, int columns, float* dst, long dstStride)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < columns; j++)
            {
                float sum = 0;
                for (int n = 0; n < batch; n++)
                    sum = MathF.FusedMultiplyAdd(dy[(long)n * outF + r], x[(long)n * xStride + j], sum);
                dst[r * dstStride + j] = sum;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOrAdd(float* p, bool store, Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3)
    {
        if (!store)
        {
            v0 += Vector512.Load(p); v1 += Vector512.Load(p + 16); v2 += Vector512.Load(p + 32); v3 += Vector512.Load(p + 48);
        }
        v0.Store(p); v1.Store(p + 16); v2.Store(p + 32); v3.Store(p + 48);
    }
}
