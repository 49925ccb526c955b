using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// The forward pass of a strided convolution (AlexNet's conv1: 11x11, stride 4, 3 input channels) with the output
/// channels in the vector lanes, and no columns at all. The panels' path (Conv2dKernels.Panels.cs) spends about a quarter
/// of conv1's time building packed columns, 363 floats per output position from 3 x 11 x 11 input values, and splitting
/// the input rows into stride phases so that its 32 positions a vector can be loaded. Here a tile of positions (6, or 8 for
/// 48 channels) times 64 (or 48) output channels is held in 24 accumulators; each step of K loads the weights of 64
/// channels (four vectors, packed K-major) and broadcasts one input value per position, read in place from zero-padded
/// copies of the input rows at offsets precomputed per step. The stride is only in those offsets, so nothing is
/// split into phases, and no position is wasted on a vector's tail. A strip of <see cref="LaneStripPositions"/> positions
/// is written [position][channel] into the thread's scratch, then gathered into the output planes with bias and ReLU.
/// <para>
/// Each output is the sum the GEMM's micro-kernel forms for it: FMAs in order of K from zero within each block of
/// <see cref="Gemm.KC"/>, a later block's sum added to the earlier ones', then the bias added and ReLU applied, so the
/// bits are those of the panels' path (tests compare them with the column matrix's). One exception: a NaN sum, which
/// the GEMM's ReLU turns into zero in the last few columns of a tile (<see cref="Gemm.ApplyEpilogue"/>'s scalar tail)
/// and keeps in the others, stays NaN here everywhere.
/// </para>
/// </summary>
public static unsafe partial class Conv2dKernels
{
    /// <summary>Output positions per strip: a multiple of both tiles' positions (6 and 8).</summary>
    internal const int LaneStripPositions = 48;

    /// <summary>Most K (input channels per group x kernel area) taken: an item keeps one input offset per step of K on the stack.</summary>
    private const int MaxLaneDepth = 4096;

    /// <summary>
    /// Floats of zero-padded input rows an item aims at (1 MiB, L2): a plane whose rows need more is split into parts of
    /// its positions, each copying only the rows it reads.
    /// </summary>
    private const int LanePaddedFloats = 256 * 1024;

    /// <summary>Vectors of 16 output channels per tile: 4 (with 6 positions) where the channels per group are a multiple of 64, 3 (with 8) of 48, else none.</summary>
    internal static int LaneVectors(int outChannelsPerGroup) =>
        outChannelsPerGroup <= 0 ? 0 : outChannelsPerGroup % 64 == 0 ? 4 : outChannelsPerGroup % 48 == 0 ? 3 : 0;

    /// <summary>
    /// Whether the forward pass runs with the output channels in the vector lanes: under <see cref="ColumnLayout.Auto"/>
    /// where it would take column panels (a column stride above 1, one sample to an item), and with <see cref="ColumnLayout.ChannelLanes"/>
    /// wherever it can: AVX-512, output channels per group a multiple of 48 or 64, K at most <see cref="MaxLaneDepth"/>,
    /// and one output row's padded input rows within <see cref="LanePaddedFloats"/>.
    /// </summary>
    internal static bool UsesChannelLanes(in Conv2dGeometry g, int batch, CpuContext ctx)
    {
        int cg = g.InChannels / g.Groups;
        bool fits = Avx512F.IsSupported && Gemm.BestKernel == GemmKernel.Vector512 && LaneVectors(g.OutChannels / g.Groups) != 0
            && (long)cg * g.KernelHeight * g.KernelWidth <= MaxLaneDepth && g.OutHeight > 0 && g.OutWidth > 0
            && (long)cg * g.KernelHeight * LaneRowLength(g) <= LanePaddedFloats;
        // The padded rows' offsets are ints.
        fits = fits && (long)cg * ((long)(g.OutHeight - 1) * g.StrideHeight + g.KernelHeight) * LaneRowLength(g) <= int.MaxValue;
        return ctx.ForwardColumns switch
        {
            ColumnLayout.ChannelLanes => fits,
            // Where the panels would run (conv1 of both AlexNets was measured; other strided shapes were not).
            ColumnLayout.Auto => fits && g.StrideWidth > 1 && !IsDirect(g) && SamplesPerItem(g, batch, ctx.Threads) == 1,
            _ => false,
        };
    }

    /// <summary>Floats of one zero-padded input row: every column a window reads.</summary>
    private static int LaneRowLength(in Conv2dGeometry g) =>
        Math.Max(g.InWidth + 2 * g.PaddingWidth, (g.OutWidth - 1) * g.StrideWidth + g.KernelWidth);

    /// <summary>Padded input rows (in padded coordinates, row 0 being PaddingHeight above the image) that output positions [first, end) read.</summary>
    private static int LaneRows(in Conv2dGeometry g, int first, int end, out int firstRow)
    {
        firstRow = first / g.OutWidth * g.StrideHeight;
        return (end - 1) / g.OutWidth * g.StrideHeight + g.KernelHeight - firstRow;
    }

    private static void ChannelLanesForward(ref ConvJob job)
    {
        ref readonly Conv2dGeometry g = ref job.G;
        CpuContext ctx = job.Ctx;
        int strips = (job.P + LaneStripPositions - 1) / LaneStripPositions, pairs = job.Batch * job.Groups;
        int rowLength = LaneRowLength(g);
        // Parts of a plane: enough for every thread to have an item, and for each part's rows to fit LanePaddedFloats.
        long wholeRows = (long)job.Cg * LaneRows(g, 0, job.P, out _) * rowLength;
        int parts = (int)Math.Max((ctx.Threads + pairs - 1) / pairs, (wholeRows + LanePaddedFloats - 1) / LanePaddedFloats);
        parts = Math.Clamp(parts, 1, strips);
        job.LaneParts = parts;
        job.LaneStrips = strips;
        long padded = 0;
        for (int part = 0; part < parts; part++)
        {
            LanePart(ref job, part, out int first, out int end);
            padded = Math.Max(padded, (long)job.Cg * LaneRows(g, first, end, out _) * rowLength);
        }
        job.LaneScratchFloats = LaneStripPositions * 64 + padded;
        ctx.ReserveScratch(ScratchSlot.Columns, job.LaneScratchFloats);
        PackLaneWeights(ref job);
        ctx.For(pairs * parts, &ChannelLanesItem, Unsafe.AsPointer(ref job));
        GC.KeepAlive(job.WeightCache);
    }

    /// <summary>Output positions [first, end) of a part: whole strips, the parts' counts of strips differing by one at most.</summary>
    private static void LanePart(ref ConvJob job, int part, out int first, out int end)
    {
        first = (int)((long)job.LaneStrips * part / job.LaneParts) * LaneStripPositions;
        end = Math.Min(job.P, (int)((long)job.LaneStrips * (part + 1) / job.LaneParts) * LaneStripPositions);
    }

    /// <summary>
    /// Every group's weight K-major in blocks of 16 x <see cref="LaneVectors"/> output channels:
    /// [group][block][k][channel of the block], once per call, or found in the forward pass's weight cache.
    /// </summary>
    private static void PackLaneWeights(ref ConvJob job)
    {
        int width = 16 * LaneVectors(job.OCg);
        job.PackedGroupLength = (long)job.OCg * job.Kc;
        long length = job.Groups * job.PackedGroupLength;
        Conv2dWeightCache? cache = job.WeightCache;
        var weight = new ReadOnlySpan<float>(job.Weight, job.G.WeightLength);
        job.PackedWeight = cache?.Find(PreparedWeightForm.ChannelLanes, job.G, length, weight);
        if (job.PackedWeight != null) return;
        job.PackedWeight = cache is null ? job.Ctx.Scratch(0, ScratchSlot.TransformedFilters, length) : cache.Reserve(length);
        for (int grp = 0; grp < job.Groups; grp++)
            for (int o0 = 0; o0 < job.OCg; o0 += width)
            {
                float* to = job.PackedWeight + grp * job.PackedGroupLength + (long)o0 * job.Kc;
                for (int i = 0; i < width; i++)
                {
                    float* from = job.Weight + (long)(grp * job.OCg + o0 + i) * job.Kc;
                    for (int k = 0; k < job.Kc; k++) to[(long)k * width + i] = from[k];
                }
            }
        cache?.Commit(PreparedWeightForm.ChannelLanes, job.G, length, weight);
    }

    /// <summary>One part of one sample's group: its padded input rows, then strip by strip every block of output channels.</summary>
    private static void ChannelLanesItem(void* state, int item, int threadIndex)
    {
        ref ConvJob job = ref Unsafe.AsRef<ConvJob>(state);
        ref readonly Conv2dGeometry g = ref job.G;
        int part = item % job.LaneParts, pair = item / job.LaneParts;
        int grp = pair % job.Groups, n = pair / job.Groups;
        LanePart(ref job, part, out int first, out int end);
        int rowLength = LaneRowLength(g), rows = LaneRows(g, first, end, out int firstRow);
        float* strip = job.Ctx.Scratch(threadIndex, ScratchSlot.Columns, job.LaneScratchFloats);
        float* padded = strip + LaneStripPositions * 64;
        CopyPaddedRows(g, job.Cg, job.Input + job.InputOffset(n, grp), firstRow, rows, rowLength, padded);

        int* offsets = stackalloc int[job.Kc];
        for (int c = 0, k = 0; c < job.Cg; c++)
            for (int ky = 0; ky < g.KernelHeight; ky++)
                for (int kx = 0; kx < g.KernelWidth; kx++)
                    offsets[k++] = (c * rows + ky) * rowLength + kx;

        int vectors = LaneVectors(job.OCg), width = 16 * vectors, tilePositions = vectors == 4 ? 6 : 8;
        float** bases = stackalloc float*[8];
        float* output = job.Output + job.OutputOffset(n, grp);
        float* weight = job.PackedWeight + grp * job.PackedGroupLength;
        float* bias = job.Bias == null ? null : job.Bias + grp * job.OCg;
        for (int s = first; s < end; s += LaneStripPositions)
        {
            int count = Math.Min(LaneStripPositions, end - s);
            for (int o0 = 0; o0 < job.OCg; o0 += width)
            {
                float* w = weight + (long)o0 * job.Kc;
                for (int tile = 0; tile < count; tile += tilePositions)
                {
                    // Positions past the part's end read the last one's inputs; their sums are not stored.
                    for (int j = 0; j < tilePositions; j++)
                    {
                        int p = Math.Min(s + tile + j, end - 1);
                        bases[j] = padded + (long)(p / g.OutWidth * g.StrideHeight - firstRow) * rowLength + p % g.OutWidth * g.StrideWidth;
                    }
                    float* sums = strip + tile * width;
                    for (int pc = 0; pc < job.Kc; pc += Gemm.KC)
                    {
                        int kc = Math.Min(Gemm.KC, job.Kc - pc);
                        if (vectors == 4) LaneTile64x6(kc, w + (long)pc * width, offsets + pc, bases, sums, pc > 0);
                        else LaneTile48x8(kc, w + (long)pc * width, offsets + pc, bases, sums, pc > 0);
                    }
                }
                StoreLaneStrip(strip, width, count, output + (long)o0 * job.P + s, job.P, bias == null ? null : bias + o0, job.Relu);
            }
        }
    }

    /// <summary>
    /// Rows [firstRow, firstRow + rows) of every channel's input plane padded with zeros (padded coordinates: row r is
    /// input row r - PaddingHeight, column x input column x - PaddingWidth), each <paramref name="rowLength"/> floats,
    /// channel by channel.
    /// </summary>
    private static void CopyPaddedRows(in Conv2dGeometry g, int channels, float* input, int firstRow, int rows, int rowLength, float* padded)
    {
        int h = g.InHeight, w = g.InWidth, pw = g.PaddingWidth;
        for (int c = 0; c < channels; c++)
        {
            float* plane = input + (long)c * h * w;
            for (int r = 0; r < rows; r++)
            {
                float* to = padded + ((long)c * rows + r) * rowLength;
                int iy = firstRow + r - g.PaddingHeight;
                if ((uint)iy >= (uint)h)
                {
                    new Span<float>(to, rowLength).Clear();
                    continue;
                }
                new Span<float>(to, pw).Clear();
                new ReadOnlySpan<float>(plane + (long)iy * w, w).CopyTo(new Span<float>(to + pw, w));
                new Span<float>(to + pw + w, rowLength - pw - w).Clear();
            }
        }
    }

    /// <summary>
    /// 64 output channels x 6 positions over <paramref name="kc"/> steps of K: 24 accumulators; per step four loads of
    /// weights and six broadcasts of inputs (position j's at bases[j] + offsets[p]). Writes sums[j * 64 + channel],
    /// adding what is there when <paramref name="accumulate"/> (a later block of K), as the GEMM's micro-kernel does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LaneTile64x6(int kc, float* w, int* offsets, float** bases, float* sums, bool accumulate)
    {
        float* x0 = bases[0], x1 = bases[1], x2 = bases[2], x3 = bases[3], x4 = bases[4], x5 = bases[5];
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default, c35 = default;
        for (int p = 0; p < kc; p++)
        {
            int o = offsets[p];
            Vector512<float> w0 = Vector512.Load(w), w1 = Vector512.Load(w + 16), w2 = Vector512.Load(w + 32), w3 = Vector512.Load(w + 48);
            Vector512<float> x = Vector512.Create(x0[o]);
            c00 = Vector512.FusedMultiplyAdd(x, w0, c00); c10 = Vector512.FusedMultiplyAdd(x, w1, c10);
            c20 = Vector512.FusedMultiplyAdd(x, w2, c20); c30 = Vector512.FusedMultiplyAdd(x, w3, c30);
            x = Vector512.Create(x1[o]);
            c01 = Vector512.FusedMultiplyAdd(x, w0, c01); c11 = Vector512.FusedMultiplyAdd(x, w1, c11);
            c21 = Vector512.FusedMultiplyAdd(x, w2, c21); c31 = Vector512.FusedMultiplyAdd(x, w3, c31);
            x = Vector512.Create(x2[o]);
            c02 = Vector512.FusedMultiplyAdd(x, w0, c02); c12 = Vector512.FusedMultiplyAdd(x, w1, c12);
            c22 = Vector512.FusedMultiplyAdd(x, w2, c22); c32 = Vector512.FusedMultiplyAdd(x, w3, c32);
            x = Vector512.Create(x3[o]);
            c03 = Vector512.FusedMultiplyAdd(x, w0, c03); c13 = Vector512.FusedMultiplyAdd(x, w1, c13);
            c23 = Vector512.FusedMultiplyAdd(x, w2, c23); c33 = Vector512.FusedMultiplyAdd(x, w3, c33);
            x = Vector512.Create(x4[o]);
            c04 = Vector512.FusedMultiplyAdd(x, w0, c04); c14 = Vector512.FusedMultiplyAdd(x, w1, c14);
            c24 = Vector512.FusedMultiplyAdd(x, w2, c24); c34 = Vector512.FusedMultiplyAdd(x, w3, c34);
            x = Vector512.Create(x5[o]);
            c05 = Vector512.FusedMultiplyAdd(x, w0, c05); c15 = Vector512.FusedMultiplyAdd(x, w1, c15);
            c25 = Vector512.FusedMultiplyAdd(x, w2, c25); c35 = Vector512.FusedMultiplyAdd(x, w3, c35);
            w += 64;
        }
        StoreLaneSums(sums, c00, c10, c20, c30, accumulate);
        StoreLaneSums(sums + 64, c01, c11, c21, c31, accumulate);
        StoreLaneSums(sums + 128, c02, c12, c22, c32, accumulate);
        StoreLaneSums(sums + 192, c03, c13, c23, c33, accumulate);
        StoreLaneSums(sums + 256, c04, c14, c24, c34, accumulate);
        StoreLaneSums(sums + 320, c05, c15, c25, c35, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLaneSums(float* to, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d, bool accumulate)
    {
        if (accumulate)
        {
            a += Vector512.Load(to); b += Vector512.Load(to + 16); c += Vector512.Load(to + 32); d += Vector512.Load(to + 48);
        }
        a.Store(to); b.Store(to + 16); c.Store(to + 32); d.Store(to + 48);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLaneSums(float* to, Vector512<float> a, Vector512<float> b, Vector512<float> c, bool accumulate)
    {
        if (accumulate)
        {
            a += Vector512.Load(to); b += Vector512.Load(to + 16); c += Vector512.Load(to + 32);
        }
        a.Store(to); b.Store(to + 16); c.Store(to + 32);
    }

    /// <summary>48 output channels x 8 positions, as <see cref="LaneTile64x6"/>: three loads of weights and eight broadcasts per step; writes sums[j * 48 + channel].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LaneTile48x8(int kc, float* w, int* offsets, float** bases, float* sums, bool accumulate)
    {
        float* x0 = bases[0], x1 = bases[1], x2 = bases[2], x3 = bases[3], x4 = bases[4], x5 = bases[5], x6 = bases[6], x7 = bases[7];
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default, c06 = default, c07 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default, c16 = default, c17 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default, c26 = default, c27 = default;
        for (int p = 0; p < kc; p++)
        {
            int o = offsets[p];
            Vector512<float> w0 = Vector512.Load(w), w1 = Vector512.Load(w + 16), w2 = Vector512.Load(w + 32);
            Vector512<float> x = Vector512.Create(x0[o]);
            c00 = Vector512.FusedMultiplyAdd(x, w0, c00); c10 = Vector512.FusedMultiplyAdd(x, w1, c10); c20 = Vector512.FusedMultiplyAdd(x, w2, c20);
            x = Vector512.Create(x1[o]);
            c01 = Vector512.FusedMultiplyAdd(x, w0, c01); c11 = Vector512.FusedMultiplyAdd(x, w1, c11); c21 = Vector512.FusedMultiplyAdd(x, w2, c21);
            x = Vector512.Create(x2[o]);
            c02 = Vector512.FusedMultiplyAdd(x, w0, c02); c12 = Vector512.FusedMultiplyAdd(x, w1, c12); c22 = Vector512.FusedMultiplyAdd(x, w2, c22);
            x = Vector512.Create(x3[o]);
            c03 = Vector512.FusedMultiplyAdd(x, w0, c03); c13 = Vector512.FusedMultiplyAdd(x, w1, c13); c23 = Vector512.FusedMultiplyAdd(x, w2, c23);
            x = Vector512.Create(x4[o]);
            c04 = Vector512.FusedMultiplyAdd(x, w0, c04); c14 = Vector512.FusedMultiplyAdd(x, w1, c14); c24 = Vector512.FusedMultiplyAdd(x, w2, c24);
            x = Vector512.Create(x5[o]);
            c05 = Vector512.FusedMultiplyAdd(x, w0, c05); c15 = Vector512.FusedMultiplyAdd(x, w1, c15); c25 = Vector512.FusedMultiplyAdd(x, w2, c25);
            x = Vector512.Create(x6[o]);
            c06 = Vector512.FusedMultiplyAdd(x, w0, c06); c16 = Vector512.FusedMultiplyAdd(x, w1, c16); c26 = Vector512.FusedMultiplyAdd(x, w2, c26);
            x = Vector512.Create(x7[o]);
            c07 = Vector512.FusedMultiplyAdd(x, w0, c07); c17 = Vector512.FusedMultiplyAdd(x, w1, c17); c27 = Vector512.FusedMultiplyAdd(x, w2, c27);
            w += 48;
        }
        StoreLaneSums(sums, c00, c10, c20, accumulate);
        StoreLaneSums(sums + 48, c01, c11, c21, accumulate);
        StoreLaneSums(sums + 96, c02, c12, c22, accumulate);
        StoreLaneSums(sums + 144, c03, c13, c23, accumulate);
        StoreLaneSums(sums + 192, c04, c14, c24, accumulate);
        StoreLaneSums(sums + 240, c05, c15, c25, accumulate);
        StoreLaneSums(sums + 288, c06, c16, c26, accumulate);
        StoreLaneSums(sums + 336, c07, c17, c27, accumulate);
    }

    /// <summary>
    /// A strip's sums, [position][channel] with <paramref name="width"/> channels, into the output planes (row stride
    /// <paramref name="planeLength"/>), <paramref name="count"/> positions: the bias added and ReLU applied along the
    /// channels as <see cref="Gemm.ApplyEpilogue"/> does (nothing added when neither is asked for), then 8 x 8 blocks
    /// transposed into the planes.
    /// </summary>
    private static void StoreLaneStrip(float* sums, int width, int count, float* output, int planeLength, float* bias, bool relu)
    {
        if (bias != null || relu)
        {
            for (int p = 0; p < count; p++)
                for (int i = 0; i < width; i += 16)
                {
                    float* at = sums + p * width + i;
                    Vector512<float> v = Vector512.Load(at) + (bias == null ? Vector512<float>.Zero : Vector512.Load(bias + i));
                    if (relu) v = Vector512.Max(v, Vector512<float>.Zero);
                    v.Store(at);
                }
        }
        float* edge = stackalloc float[64];
        for (int p = 0; p < count; p += 8)
        {
            // Rows past count hold stale sums: transposed, never stored.
            int positions = Math.Min(8, count - p);
            float* r = sums + p * width;
            for (int i = 0; i < width; i += 8)
            {
                float* to = output + (long)i * planeLength + p;
                float* r0 = r + i;
                if (positions == 8)
                {
                    Gemm.Transpose8x8Avx(r0, r0 + width, r0 + 2 * width, r0 + 3 * width, r0 + 4 * width, r0 + 5 * width, r0 + 6 * width, r0 + 7 * width, to, planeLength);
                    continue;
                }
                Gemm.Transpose8x8Avx(r0, r0 + width, r0 + 2 * width, r0 + 3 * width, r0 + 4 * width, r0 + 5 * width, r0 + 6 * width, r0 + 7 * width, edge, 8);
                for (int k = 0; k < 8; k++)
                    new ReadOnlySpan<float>(edge + k * 8, positions).CopyTo(new Span<float>(to + (long)k * planeLength, positions));
            }
        }
    }
}
