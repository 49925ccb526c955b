using System.Runtime.CompilerServices;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// Fast adaptive average pooling: the reference's windows and summation order (so the results are bit-identical), on
/// raw pointers with the bins computed once per call, a run of (sample, channel) planes per work item spread over
/// the threads. Backward zeroes each input plane and spreads into it, so planes never collide.
/// </summary>
public static unsafe partial class AdaptiveAvgPoolKernels
{
    /// <summary>input [N, C, H, W] to output [N, C, OH, OW].</summary>
    public static void Forward(in AdaptiveAvgPoolGeometry g, int batch, ReadOnlySpan<float> input, Span<float> output, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length);
        Span<int> bins = BinBuffer(g, stackalloc int[StackBins]);
        fixed (float* pIn = input, pOut = output)
        fixed (int* pBins = bins)
        {
            var job = new PoolJob(g, pIn, pOut, pBins);
            ctx.ForRuns(batch * g.Channels, &ForwardPlane, Unsafe.AsPointer(ref job));
        }
    }

    /// <summary>dOutput [N, C, OH, OW] to dInput [N, C, H, W] (overwritten).</summary>
    public static void Backward(in AdaptiveAvgPoolGeometry g, int batch, ReadOnlySpan<float> dOutput, Span<float> dInput, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ThrowIfShapesMismatch(g, batch, dInput.Length, dOutput.Length);
        Span<int> bins = BinBuffer(g, stackalloc int[StackBins]);
        fixed (float* pDx = dInput, pDy = dOutput)
        fixed (int* pBins = bins)
        {
            var job = new PoolJob(g, pDx, pDy, pBins);
            ctx.ForRuns(batch * g.Channels, &BackwardPlane, Unsafe.AsPointer(ref job));
        }
    }

    private const int StackBins = 256;

    // 2 x (OH + OW) bin bounds; on the stack for any usual size, on the heap for an enormous output.
    private static Span<int> BinBuffer(in AdaptiveAvgPoolGeometry g, Span<int> stack)
    {
        long count = 2L * (g.OutHeight + g.OutWidth);
        return count <= stack.Length ? stack.Slice(0, (int)count) : new int[count];
    }

    /// <summary>
    /// One call's shapes and buffers. Bins holds the row bins' starts and ends, then the column bins' (OH + OH + OW + OW
    /// entries); Input is the input (forward) or its gradient (backward), Output likewise.
    /// </summary>
    private readonly struct PoolJob
    {
        public readonly AdaptiveAvgPoolGeometry G;
        public readonly float* Input, Output;
        public readonly int* RowStart, RowEnd, ColumnStart, ColumnEnd;

        public PoolJob(in AdaptiveAvgPoolGeometry g, float* input, float* output, int* bins)
        {
            G = g;
            Input = input;
            Output = output;
            RowStart = bins;
            RowEnd = bins + g.OutHeight;
            ColumnStart = bins + 2 * g.OutHeight;
            ColumnEnd = ColumnStart + g.OutWidth;
            for (int i = 0; i < g.OutHeight; i++)
            {
                RowStart[i] = AdaptiveAvgPoolGeometry.BinStart(i, g.InHeight, g.OutHeight);
                RowEnd[i] = AdaptiveAvgPoolGeometry.BinEnd(i, g.InHeight, g.OutHeight);
            }
            for (int j = 0; j < g.OutWidth; j++)
            {
                ColumnStart[j] = AdaptiveAvgPoolGeometry.BinStart(j, g.InWidth, g.OutWidth);
                ColumnEnd[j] = AdaptiveAvgPoolGeometry.BinEnd(j, g.InWidth, g.OutWidth);
            }
        }
    }

    private static void ForwardPlane(void* state, int plane, int threadIndex)
    {
        ref readonly PoolJob job = ref Unsafe.AsRef<PoolJob>(state);
        ref readonly AdaptiveAvgPoolGeometry g = ref job.G;
        int inW = g.InWidth;
        float* x = job.Input + (long)plane * g.InHeight * inW;
        float* y = job.Output + (long)plane * g.OutHeight * g.OutWidth;
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            int h0 = job.RowStart[oh], h1 = job.RowEnd[oh];
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                int w0 = job.ColumnStart[ow], w1 = job.ColumnEnd[ow];
                float sum = 0f;
                for (int h = h0; h < h1; h++)
                {
                    float* row = x + h * inW;
                    for (int w = w0; w < w1; w++) sum += row[w];
                }
                *y++ = sum / ((h1 - h0) * (w1 - w0));
            }
        }
    }

    private static void BackwardPlane(void* state, int plane, int threadIndex)
    {
        ref readonly PoolJob job = ref Unsafe.AsRef<PoolJob>(state);
        ref readonly AdaptiveAvgPoolGeometry g = ref job.G;
        int inW = g.InWidth;
        float* dx = job.Input + (long)plane * g.InHeight * inW;
        float* dy = job.Output + (long)plane * g.OutHeight * g.OutWidth;
        new Span<float>(dx, g.InHeight * inW).Clear();
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            int h0 = job.RowStart[oh], h1 = job.RowEnd[oh];
            for (int ow = 0; ow < g.OutWidth; ow++)
            {
                int w0 = job.ColumnStart[ow], w1 = job.ColumnEnd[ow];
                float share = *dy++ / ((h1 - h0) * (w1 - w0));
                for (int h = h0; h < h1; h++)
                {
                    float* row = dx + h * inW;
                    for (int w = w0; w < w1; w++) row[w] += share;
                }
            }
        }
    }
}
