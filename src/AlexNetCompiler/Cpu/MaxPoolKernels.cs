using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// Fast max pooling: the same result as the reference's window scan (first maximum in row-major order wins, a NaN
/// counts as the maximum), on raw pointers with the window bounds hoisted, a run of (sample, channel) planes per work
/// item spread over the threads; inference at a column stride of 2 takes rows' maxima first (<see cref="SeparableWindows"/>).
/// Backward zeroes each input plane and scatters into it, so planes never collide.
/// </summary>
public static unsafe partial class MaxPoolKernels
{
    public static void Forward(in PoolGeometry g, int batch, ReadOnlySpan<float> input, Span<float> output, Span<int> argmax, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length);
        if (!argmax.IsEmpty && argmax.Length != output.Length)
            throw new ArgumentException($"MaxPool: argmax has {argmax.Length} entries, expected {output.Length} or none.", nameof(argmax));
        fixed (float* pIn = input, pOut = output)
        fixed (int* pArg = argmax)
        {
            var job = new PoolJob { G = g, Input = pIn, Output = pOut, Argmax = argmax.IsEmpty ? null : pArg, Planes = batch * g.Channels };
            ctx.ForRuns(job.Planes, &ForwardPlane, Unsafe.AsPointer(ref job));
        }
    }

    public static void Backward(in PoolGeometry g, int batch, ReadOnlySpan<float> dOutput, ReadOnlySpan<int> argmax, Span<float> dInput, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ThrowIfShapesMismatch(g, batch, dInput.Length, dOutput.Length);
        if (argmax.Length != dOutput.Length)
            throw new ArgumentException($"MaxPool backward: argmax has {argmax.Length} entries, expected {dOutput.Length}.", nameof(argmax));
        fixed (float* pDy = dOutput, pDx = dInput)
        fixed (int* pArg = argmax)
        {
            var job = new PoolJob { G = g, Output = pDy, Input = pDx, Argmax = pArg };
            ctx.ForRuns(batch * g.Channels, &BackwardPlane, Unsafe.AsPointer(ref job));
        }
    }

    /// <summary>Most floats of the next plane asked for ahead: 16 KiB, a third of L1 (AlexNet's largest plane, 55 x 55, is 12 KiB).</summary>
    private const int PrefetchFloats = 4096;

    private struct PoolJob
    {
        public PoolGeometry G;
        public float* Input, Output;
        public int* Argmax;
        public int Planes;
    }

    private static void ForwardPlane(void* state, int plane, int threadIndex)
    {
        ref PoolJob job = ref Unsafe.AsRef<PoolJob>(state);
        ref readonly PoolGeometry g = ref job.G;
        int inW = g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        float* x = job.Input + (long)plane * g.InHeight * inW;
        float* y = job.Output + (long)plane * outPlane;
        int* arg = job.Argmax == null ? null : job.Argmax + (long)plane * outPlane;
        // The next plane (its first PrefetchFloats), most often this thread's next where ForRuns hands out runs of
        // planes, asked for while this one is pooled: the hardware's own prefetch left the pools waiting on memory, at a
        // third of the read rate the dense layers reach.
        if (plane + 1 < job.Planes) Gemm.PrefetchRun(x + (long)g.InHeight * inW, Math.Min(g.InHeight * inW, PrefetchFloats));
        if (arg == null && UsesSeparableWindows(g))
        {
            float* rowMaxima = stackalloc float[SeparableRowMaximaLength(g)];
            if (SeparableWindows(g, x, y, rowMaxima)) return;
        }
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            int hStart = oh * g.StrideHeight - g.PaddingHeight;
            int hFirst = Math.Max(hStart, 0), hEnd = Math.Min(hStart + g.KernelHeight, g.InHeight);
            int ow = 0;
            if (Avx2.IsSupported && hFirst < hEnd)
            {
                // Output columns whose windows lie fully inside the row: 8 windows at once (16 at a column stride of 2,
                // StrideTwoWindows), branch free; the columns before and after them (padding, or a row narrower than 8
                // windows) 8 at a time with masked reads. A kernel wider than the row leaves no window inside it.
                int owInsideFirst = Math.Min(g.OutWidth, (g.PaddingWidth + g.StrideWidth - 1) / g.StrideWidth);
                int insideSpan = inW + g.PaddingWidth - g.KernelWidth;
                int owInsideEnd = insideSpan < 0 ? 0 : Math.Min(g.OutWidth, insideSpan / g.StrideWidth + 1);
                for (; ow < owInsideFirst; ow += 8) MaskedWindows(in g, x, y, arg, oh, ow, Math.Min(8, owInsideFirst - ow), hFirst, hEnd);
                ow = owInsideFirst;
                if (g.StrideWidth == 2 && Avx512F.IsSupported)
                {
                    // Inference asks for no indices: a copy of the loop without them (the constant folds the index work away).
                    if (arg == null)
                    {
                        for (; ow + 16 <= owInsideEnd; ow += 16) StrideTwoWindows(in g, x, y, null, oh, ow, 16, hFirst, hEnd, trackIndex: false);
                    }
                    else
                    {
                        for (; ow + 16 <= owInsideEnd; ow += 16) StrideTwoWindows(in g, x, y, arg, oh, ow, 16, hFirst, hEnd, trackIndex: true);
                    }
                    if (ow < owInsideEnd)
                    {
                        StrideTwoWindows(in g, x, y, arg, oh, ow, owInsideEnd - ow, hFirst, hEnd, trackIndex: arg != null);
                        ow = owInsideEnd;
                    }
                }
                for (; ow + 8 <= owInsideEnd; ow += 8) VectorWindows(in g, x, y, arg, oh, ow, hFirst, hEnd);
                for (; ow < g.OutWidth; ow += 8) MaskedWindows(in g, x, y, arg, oh, ow, Math.Min(8, g.OutWidth - ow), hFirst, hEnd);
                continue;
            }
            for (; ow < g.OutWidth; ow++) ScalarWindow(in g, x, y, arg, oh, ow, hFirst, hEnd);
        }
    }

    /// <summary>
    /// Up to eight adjacent windows (output columns ow0 .. ow0 + lanes - 1) that may reach into the padding: the
    /// window elements outside the row are neither read nor compared, so the result is the scalar scan's, including
    /// its index when a whole window is -infinity (the first element inside the row).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MaskedWindows(in PoolGeometry g, float* x, float* y, int* arg, int oh, int ow0, int lanes, int hFirst, int hEnd)
    {
        int inW = g.InWidth;
        Vector256<int> lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        Vector256<int> columns = (lane + Vector256.Create(ow0)) * Vector256.Create(g.StrideWidth) - Vector256.Create(g.PaddingWidth);
        Vector256<int> active = Vector256.LessThan(lane, Vector256.Create(lanes));
        Vector256<int> width = Vector256.Create(inW);
        Vector256<float> negativeInfinity = Vector256.Create(float.NegativeInfinity);
        Vector256<float> best = negativeInfinity;
        Vector256<int> bestIndex = Vector256.Max(columns, Vector256<int>.Zero) + Vector256.Create(hFirst * inW);
        for (int h = hFirst; h < hEnd; h++)
        {
            Vector256<int> rowStart = Vector256.Create(h * inW);
            for (int kx = 0; kx < g.KernelWidth; kx++)
            {
                Vector256<int> column = columns + Vector256.Create(kx);
                Vector256<int> inside = active & Vector256.GreaterThanOrEqual(column, Vector256<int>.Zero) & Vector256.LessThan(column, width);
                Vector256<int> index = rowStart + column;
                Vector256<float> v = Avx2.GatherMaskVector256(negativeInfinity, x, index, inside.AsSingle(), 4);
                Vector256<float> replace = (Vector256.GreaterThan(v, best) | ~Vector256.Equals(v, v)) & inside.AsSingle();
                best = Vector256.ConditionalSelect(replace, v, best);
                bestIndex = Vector256.ConditionalSelect(replace.AsInt32(), index, bestIndex);
            }
        }
        int o = oh * g.OutWidth + ow0;
        if (lanes == 8)
        {
            best.Store(y + o);
            if (arg != null) bestIndex.Store(arg + o);
            return;
        }
        for (int i = 0; i < lanes; i++)
        {
            y[o + i] = best.GetElement(i);
            if (arg != null) arg[o + i] = bestIndex.GetElement(i);
        }
    }

    /// <summary>
    /// Eight adjacent windows (output columns ow0 .. ow0 + 7), all inside the row: the window elements are visited in
    /// the same row-major order as the scalar scan, with the same rule (strictly greater, or NaN, replaces).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void VectorWindows(in PoolGeometry g, float* x, float* y, int* arg, int oh, int ow0, int hFirst, int hEnd)
    {
        int inW = g.InWidth;
        Vector256<int> columns = (Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) + Vector256.Create(ow0)) * Vector256.Create(g.StrideWidth)
            - Vector256.Create(g.PaddingWidth);
        Vector256<float> best = Vector256.Create(float.NegativeInfinity);
        Vector256<int> bestIndex = columns + Vector256.Create(hFirst * inW);
        for (int h = hFirst; h < hEnd; h++)
        {
            Vector256<int> rowIndex = columns + Vector256.Create(h * inW);
            for (int kx = 0; kx < g.KernelWidth; kx++)
            {
                Vector256<int> index = rowIndex + Vector256.Create(kx);
                Vector256<float> v = Avx2.GatherVector256(x, index, 4);
                Vector256<float> replace = Vector256.GreaterThan(v, best) | ~Vector256.Equals(v, v);
                best = Vector256.ConditionalSelect(replace, v, best);
                bestIndex = Vector256.ConditionalSelect(replace.AsInt32(), index, bestIndex);
            }
        }
        int o = oh * g.OutWidth + ow0;
        best.Store(y + o);
        if (arg != null) bestIndex.Store(arg + o);
    }

    /// <summary>
    /// Up to sixteen adjacent windows (output columns ow0 .. ow0 + count - 1), all inside the row, at a column stride
    /// of 2 (AlexNet's overlapping pools): for each window element, the sixteen values lie at every other float of
    /// two neighbouring vectors, so two loads and one permute replace a gather. The loads are masked at the end of the
    /// input row; lanes past count are computed but not stored. The same visiting order and rule as the scalar scan.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StrideTwoWindows(in PoolGeometry g, float* x, float* y, int* arg, int oh, int ow0, int count, int hFirst, int hEnd, bool trackIndex)
    {
        int inW = g.InWidth, firstColumn = 2 * ow0 - g.PaddingWidth;
        Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        Vector512<int> evens = lane + lane;
        Vector512<int> columns = evens + Vector512.Create(firstColumn);
        Vector512<float> best = Vector512.Create(float.NegativeInfinity);
        Vector512<int> bestIndex = columns + Vector512.Create(hFirst * inW);
        for (int h = hFirst; h < hEnd; h++)
        {
            float* row = x + (long)h * inW + firstColumn;
            Vector512<int> rowIndex = columns + Vector512.Create(h * inW);
            for (int kx = 0; kx < g.KernelWidth; kx++)
            {
                // Floats of the row from column firstColumn + kx on: none past its end is read.
                int rowLeft = inW - firstColumn - kx;
                Vector512<float> low = Avx512F.MaskLoad(row + kx, Vector512.LessThan(lane, Vector512.Create(rowLeft)).AsSingle(), Vector512<float>.Zero);
                Vector512<float> high = Avx512F.MaskLoad(row + kx + 16, Vector512.LessThan(lane, Vector512.Create(rowLeft - 16)).AsSingle(), Vector512<float>.Zero);
                Vector512<float> v = Avx512F.PermuteVar16x32x2(low, evens, high);
                Vector512<float> replace = Vector512.GreaterThan(v, best) | ~Vector512.Equals(v, v);
                best = Vector512.ConditionalSelect(replace, v, best);
                if (trackIndex) bestIndex = Vector512.ConditionalSelect(replace.AsInt32(), rowIndex + Vector512.Create(kx), bestIndex);
            }
        }
        int o = oh * g.OutWidth + ow0;
        if (count == 16)
        {
            best.Store(y + o);
            if (trackIndex) bestIndex.Store(arg + o);
            return;
        }
        Vector512<int> stored = Vector512.LessThan(lane, Vector512.Create(count));
        Avx512F.MaskStore(y + o, stored.AsSingle(), best);
        if (trackIndex) Avx512F.MaskStore(arg + o, stored, bestIndex);
    }

    /// <summary>
    /// Whether an inference pass (no indices) pools a plane by <see cref="SeparableWindows"/>: a column stride of 2 with
    /// AVX-512 (AlexNet's overlapping pools), and a plane small enough for its row maxima on the stack.
    /// </summary>
    private static bool UsesSeparableWindows(in PoolGeometry g) =>
        g.StrideWidth == 2 && Avx512F.IsSupported && g.KernelWidth <= MaxSeparableKernelWidth
        && g.InHeight > 0 && (long)(g.OutHeight - 1) * g.StrideHeight - g.PaddingHeight < g.InHeight // every window has a row
        && (long)SeparableGroups(g) * g.KernelWidth <= MaxSeparableMasks && (long)g.InHeight * SeparableGroups(g) * 16 <= MaxSeparableRowMaxima;

    private const int MaxSeparableKernelWidth = 16, MaxSeparableMasks = 64, MaxSeparableRowMaxima = 8192;

    /// <summary>Groups of 16 output columns in a row.</summary>
    private static int SeparableGroups(in PoolGeometry g) => (g.OutWidth + 15) / 16;

    private static int SeparableRowMaximaLength(in PoolGeometry g) => g.InHeight * SeparableGroups(g) * 16;

    /// <summary>
    /// One plane's inference pass in two steps: each input row's maximum over every window's columns (16 windows at a
    /// time, from two loads and a permute per kernel column), then each window's maximum over its rows of those. Every
    /// input row is read once per kernel column instead of once per kernel column and window row that covers it (3x3
    /// windows at stride 2: 9 loads, permutes and selects per 16 outputs become about 6). Without a NaN the result is
    /// the window scan's, bit for bit: a value replaces the maximum only when strictly greater, so among equal values
    /// (+0 and -0 included) the first in its row wins, then the first row, which is the first in row-major order. A NaN
    /// must win wherever it is (the last one in row-major order), which this order cannot keep; so the rows' values are
    /// checked for NaN as they are read, and false is returned for a plane that holds one (the caller then scans its
    /// windows, and writes every output again). <paramref name="rowMaxima"/>: <see cref="SeparableRowMaximaLength"/> floats.
    /// </summary>
    private static bool SeparableWindows(in PoolGeometry g, float* x, float* y, float* rowMaxima)
    {
        int inW = g.InWidth, outW = g.OutWidth, kw = g.KernelWidth, groups = SeparableGroups(g), stride = groups * 16;
        Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        Vector512<int> evens = lane + lane, width = Vector512.Create(inW);
        Vector512<float> negativeInfinity = Vector512.Create(float.NegativeInfinity);
        // Per (group, kernel column): which of the 32 floats from the group's first column on lie inside the row; the
        // others are not read, and read as -infinity, which never replaces a value of the row.
        var inside = stackalloc Vector512<float>[2 * groups * kw];
        for (int grp = 0; grp < groups; grp++)
            for (int kx = 0; kx < kw; kx++)
            {
                Vector512<int> column = lane + Vector512.Create(32 * grp - g.PaddingWidth + kx);
                Vector512<int> upper = column + Vector512.Create(16);
                inside[2 * (grp * kw + kx)] = (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, width)).AsSingle();
                inside[2 * (grp * kw + kx) + 1] = (Vector512.GreaterThanOrEqual(upper, Vector512<int>.Zero) & Vector512.LessThan(upper, width)).AsSingle();
            }
        Vector512<float> unordered = Vector512<float>.Zero;
        for (int h = 0; h < g.InHeight; h++)
        {
            float* row = x + (long)h * inW;
            for (int grp = 0; grp < groups; grp++)
            {
                float* start = row + 32 * grp - g.PaddingWidth;
                Vector512<float>* masks = inside + 2 * grp * kw;
                Vector512<float> best = default;
                for (int kx = 0; kx < kw; kx++)
                {
                    Vector512<float> low = Avx512F.MaskLoad(start + kx, masks[2 * kx], negativeInfinity);
                    Vector512<float> high = Avx512F.MaskLoad(start + kx + 16, masks[2 * kx + 1], negativeInfinity);
                    unordered |= Avx512F.CompareUnordered(low, high);
                    Vector512<float> v = Avx512F.PermuteVar16x32x2(low, evens, high);
                    best = kx == 0 ? v : Vector512.ConditionalSelect(Vector512.GreaterThan(v, best), v, best);
                }
                best.Store(rowMaxima + h * stride + 16 * grp);
            }
        }
        if (!Vector512.EqualsAll(unordered.AsInt32(), Vector512<int>.Zero)) return false;
        for (int oh = 0; oh < g.OutHeight; oh++)
        {
            int hStart = oh * g.StrideHeight - g.PaddingHeight;
            int hFirst = Math.Max(hStart, 0), hEnd = Math.Min(hStart + g.KernelHeight, g.InHeight);
            for (int grp = 0; grp < groups; grp++)
            {
                float* column = rowMaxima + 16 * grp;
                Vector512<float> best = Vector512.Load(column + hFirst * stride);
                for (int h = hFirst + 1; h < hEnd; h++)
                {
                    Vector512<float> v = Vector512.Load(column + h * stride);
                    best = Vector512.ConditionalSelect(Vector512.GreaterThan(v, best), v, best);
                }
                int ow0 = 16 * grp, count = Math.Min(16, outW - ow0);
                float* to = y + oh * outW + ow0;
                if (count == 16) best.Store(to);
                else Avx512F.MaskStore(to, Vector512.LessThan(lane, Vector512.Create(count)).AsSingle(), best);
            }
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScalarWindow(in PoolGeometry g, float* x, float* y, int* arg, int oh, int ow, int hFirst, int hEnd)
    {
        int inW = g.InWidth;
        int wStart = ow * g.StrideWidth - g.PaddingWidth;
        int wFirst = Math.Max(wStart, 0), wEnd = Math.Min(wStart + g.KernelWidth, inW);
        float best = float.NegativeInfinity;
        int bestIndex = hFirst * inW + wFirst; // a window of -infinity still routes to its first element
        for (int h = hFirst; h < hEnd; h++)
        {
            float* row = x + h * inW;
            for (int w = wFirst; w < wEnd; w++)
            {
                float v = row[w];
                // NaN wins, as in the reference (and torch).
                if (v > best || float.IsNaN(v))
                {
                    best = v;
                    bestIndex = h * inW + w;
                }
            }
        }
        int o = oh * g.OutWidth + ow;
        y[o] = best;
        if (arg != null) arg[o] = bestIndex;
    }

    private static void BackwardPlane(void* state, int plane, int threadIndex)
    {
        ref PoolJob job = ref Unsafe.AsRef<PoolJob>(state);
        ref readonly PoolGeometry g = ref job.G;
        int inPlane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        float* dx = job.Input + (long)plane * inPlane;
        float* dy = job.Output + (long)plane * outPlane;
        int* arg = job.Argmax + (long)plane * outPlane;
        new Span<float>(dx, inPlane).Clear();
        for (int o = 0; o < outPlane; o++)
        {
            int target = arg[o];
            if ((uint)target >= (uint)inPlane)
                throw new ArgumentException($"MaxPool backward: argmax {target} at output {o} of plane {plane} is outside the {g.InHeight}x{g.InWidth} input plane.", "argmax");
            dx[target] += dy[o];
        }
    }
}
