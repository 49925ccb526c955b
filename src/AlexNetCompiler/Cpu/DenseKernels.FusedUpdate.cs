using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// The dense layer's backward at a small batch with the optimizer's update applied in the same pass. Apart, the input
/// gradient reads the weights, the weight gradient is written out, and the SGD step reads the gradient, the weights
/// and the velocity and writes the last two: for fc6 of AlexNet, about 1 GB of memory traffic, at batch 1 most of a
/// training step. Here each weight row segment is read once for the input gradient and updated while it is still in
/// the L1 cache, with its gradient computed into a small buffer: the weights and the velocity are read and written
/// once, and the gradient never goes to memory.
/// <para>
/// Every sum is taken in the order of the separate kernels (the input gradient's blocks of <see cref="SumBlock"/>
/// weight rows, the weight gradient over the samples), so the result is bitwise that of backward followed by
/// <see cref="Sgd.Step(Span{float}, ReadOnlySpan{float})"/>.
/// </para>
/// </summary>
public static unsafe partial class DenseKernels
{
    /// <summary>Columns of a work item: eight strips. A thread reads each weight row in runs of 2 KiB.</summary>
    private const int PanelWidth = 8 * StripWidth;

    private struct FusedUpdateJob
    {
        public int Batch, In, Out;
        /// <summary>Floats between rows of <see cref="X"/> (<see cref="InputRowsApart"/>).</summary>
        public int XStride;
        public float* X, W, V, DY, DX;
        public SgdRule Rule;
        public CpuContext Ctx;
    }

    /// <summary>Per-thread scratch: one block's input-gradient sums [batch, panel] and the weight gradient of a tile's rows.</summary>
    private static long FusedUpdateScratchLength(int batch) => (long)(batch + TileRows) * PanelWidth;

    /// <summary>
    /// dX = dY W (when <paramref name="dx"/> is not null) with the old weights, then W and V updated by
    /// <paramref name="rule"/> from dW = dY^T X; one work item per panel of input columns.
    /// </summary>
    private static void BackwardAndUpdateSmallBatch(int batch, int inFeatures, int outFeatures, float* x, float* dy, float* dx,
        float* w, float* v, SgdRule rule, CpuContext ctx)
    {
        var job = new FusedUpdateJob
        {
            Batch = batch, In = inFeatures, Out = outFeatures, DY = dy, DX = dx, W = w, V = v, Rule = rule, Ctx = ctx,
        };
        job.X = InputRowsApart(batch, inFeatures, x, ctx, out job.XStride);
        ctx.ReserveScratch(ScratchSlot.Temporary, FusedUpdateScratchLength(batch));
        ctx.For((inFeatures + PanelWidth - 1) / PanelWidth, &UpdatePanel, Unsafe.AsPointer(ref job));
    }

    private static void UpdatePanel(void* state, int item, int threadIndex)
    {
        ref FusedUpdateJob job = ref Unsafe.AsRef<FusedUpdateJob>(state);
        int c0 = item * PanelWidth, width = Math.Min(PanelWidth, job.In - c0);
        float* scratch = job.Ctx.Scratch(threadIndex, ScratchSlot.Temporary, FusedUpdateScratchLength(job.Batch));
        float* sums = scratch;                                   // [batch, width]
        float* rowGradients = scratch + (long)job.Batch * PanelWidth; // [TileRows, PanelWidth]
        for (int o0 = 0; o0 < job.Out; o0 += SumBlock)
        {
            int o1 = Math.Min(job.Out, o0 + SumBlock);
            if (job.DX != null) new Span<float>(sums, job.Batch * width).Clear();
            for (int o = o0; o < o1; o += TileRows)
            {
                int rows = Math.Min(TileRows, o1 - o);
                // The input gradient first: it needs these rows' weights before the update.
                if (job.DX != null) AccumulateInputSums(ref job, o, rows, c0, width, sums);
                WeightGradientRows(ref job, o, rows, c0, width, rowGradients);
                for (int r = 0; r < rows; r++)
                {
                    long at = (long)(o + r) * job.In + c0;
                    job.Rule.Apply(job.W + at, rowGradients + r * PanelWidth, job.V + at, width);
                }
            }
            if (job.DX == null) continue;
            // As the separate kernel: the first block's sums are stored, later ones added.
            for (int n = 0; n < job.Batch; n++)
            {
                float* dx = job.DX + (long)n * job.In + c0;
                float* blockSums = sums + (long)n * width;
                if (o0 == 0) new Span<float>(blockSums, width).CopyTo(new Span<float>(dx, width));
                else SimdSpan.AddInPlace(dx, blockSums, width);
            }
        }
    }

    /// <summary>
    /// sums[n, c] += dY[n, o + r] W[o + r, c0 + c] for the tile's rows in order (the FMA chain of the separate kernel).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateInputSums(ref FusedUpdateJob job, int o, int rows, int c0, int width, float* sums)
    {
        int full = width / StripWidth * StripWidth;
        int quads = rows == TileRows ? job.Batch / 4 * 4 : 0;
        float* w = job.W + (long)o * job.In + c0;
        float* d = job.DY + o;
        // A whole tile and four samples at a time: 16 sums stay in registers while the four rows pass over them, one
        // load and one store per four FMAs instead of one of each per FMA.
        for (int n = 0; n < quads; n += 4)
        {
            float* d0 = d + (long)n * job.Out, d1 = d0 + job.Out, d2 = d1 + job.Out, d3 = d2 + job.Out;
            for (int c = 0; c < full; c += StripWidth)
            {
                float* s0 = sums + (long)n * width + c, s1 = s0 + width, s2 = s1 + width, s3 = s2 + width;
                Vector512<float> a00 = Vector512.Load(s0), a01 = Vector512.Load(s0 + 16), a02 = Vector512.Load(s0 + 32), a03 = Vector512.Load(s0 + 48);
                Vector512<float> a10 = Vector512.Load(s1), a11 = Vector512.Load(s1 + 16), a12 = Vector512.Load(s1 + 32), a13 = Vector512.Load(s1 + 48);
                Vector512<float> a20 = Vector512.Load(s2), a21 = Vector512.Load(s2 + 16), a22 = Vector512.Load(s2 + 32), a23 = Vector512.Load(s2 + 48);
                Vector512<float> a30 = Vector512.Load(s3), a31 = Vector512.Load(s3 + 16), a32 = Vector512.Load(s3 + 32), a33 = Vector512.Load(s3 + 48);
                float* wRow = w + c;
                for (int r = 0; r < TileRows; r++, wRow += job.In)
                {
                    Vector512<float> w0 = Vector512.Load(wRow), w1 = Vector512.Load(wRow + 16);
                    Vector512<float> w2 = Vector512.Load(wRow + 32), w3 = Vector512.Load(wRow + 48);
                    var g = Vector512.Create(d0[r]);
                    a00 = Vector512.FusedMultiplyAdd(g, w0, a00); a01 = Vector512.FusedMultiplyAdd(g, w1, a01);
                    a02 = Vector512.FusedMultiplyAdd(g, w2, a02); a03 = Vector512.FusedMultiplyAdd(g, w3, a03);
                    g = Vector512.Create(d1[r]);
                    a10 = Vector512.FusedMultiplyAdd(g, w0, a10); a11 = Vector512.FusedMultiplyAdd(g, w1, a11);
                    a12 = Vector512.FusedMultiplyAdd(g, w2, a12); a13 = Vector512.FusedMultiplyAdd(g, w3, a13);
                    g = Vector512.Create(d2[r]);
                    a20 = Vector512.FusedMultiplyAdd(g, w0, a20); a21 = Vector512.FusedMultiplyAdd(g, w1, a21);
                    a22 = Vector512.FusedMultiplyAdd(g, w2, a22); a23 = Vector512.FusedMultiplyAdd(g, w3, a23);
                    g = Vector512.Create(d3[r]);
                    a30 = Vector512.FusedMultiplyAdd(g, w0, a30); a31 = Vector512.FusedMultiplyAdd(g, w1, a31);
                    a32 = Vector512.FusedMultiplyAdd(g, w2, a32); a33 = Vector512.FusedMultiplyAdd(g, w3, a33);
                }
                a00.Store(s0); a01.Store(s0 + 16); a02.Store(s0 + 32); a03.Store(s0 + 48);
                a10.Store(s1); a11.Store(s1 + 16); a12.Store(s1 + 32); a13.Store(s1 + 48);
                a20.Store(s2); a21.Store(s2 + 16); a22.Store(s2 + 32); a23.Store(s2 + 48);
                a30.Store(s3); a31.Store(s3 + 16); a32.Store(s3 + 32); a33.Store(s3 + 48);
            }
        }
        for (int r = 0; r < rows; r++)
        {
            // The other samples (and a partial tile's rows) one row at a time: its four vectors stay in registers while
            // every remaining sample's sums pass over them.
            float* wRow = w + (long)r * job.In;
            float* dr = d + r;
            for (int c = 0; c < full; c += StripWidth)
            {
                Vector512<float> w0 = Vector512.Load(wRow + c), w1 = Vector512.Load(wRow + c + 16);
                Vector512<float> w2 = Vector512.Load(wRow + c + 32), w3 = Vector512.Load(wRow + c + 48);
                float* s = sums + (long)quads * width + c;
                for (int n = quads; n < job.Batch; n++, s += width)
                {
                    var g = Vector512.Create(dr[(long)n * job.Out]);
                    Vector512.FusedMultiplyAdd(g, w0, Vector512.Load(s)).Store(s);
                    Vector512.FusedMultiplyAdd(g, w1, Vector512.Load(s + 16)).Store(s + 16);
                    Vector512.FusedMultiplyAdd(g, w2, Vector512.Load(s + 32)).Store(s + 32);
                    Vector512.FusedMultiplyAdd(g, w3, Vector512.Load(s + 48)).Store(s + 48);
                }
            }
            for (int n = 0; n < job.Batch; n++)
            {
                float g = dr[(long)n * job.Out];
                float* s = sums + (long)n * width;
                for (int c = full; c < width; c++) s[c] = MathF.FusedMultiplyAdd(g, wRow[c], s[c]);
            }
        }
    }

    /// <summary>
    /// gradients[r, c] = sum over the samples of dY[n, o + r] X[n, c0 + c]: the separate kernel's register tiles and
    /// scalar sums (<see cref="WeightTile"/>, <see cref="WeightColumnsScalar"/>), into rows PanelWidth apart.
    /// </summary>
    private static void WeightGradientRows(ref FusedUpdateJob job, int o, int rows, int c0, int width, float* gradients)
    {
        int full = width / StripWidth * StripWidth;
        float* x = job.X + c0, dy = job.DY + o;
        for (int c = 0; c < full; c += StripWidth) WeightTile(job.Batch, job.XStride, job.Out, x + c, dy, rows, gradients + c, PanelWidth);
        WeightColumnsScalar(job.Batch, job.XStride, job.Out, x + full, dy, rows, width - full, gradients + full, PanelWidth);
    }
}
