using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// Fast 2-D convolution: im2col + blocked GEMM per (sample, group), bias and ReLU fused into the GEMM epilogue.
/// A 1x1, stride-1, unpadded convolution skips im2col (the input already is the column matrix). 3x3 stride-1
/// convolutions run Winograd F(4x4, 3x3) instead, forward, input gradient and weight gradient, and 5x5 stride-1
/// convolutions Winograd F(2x2, 5x5) (forward, and both gradients of the wider ones), on the shapes and batches where it measured faster
/// (Conv2dKernels.Winograd.cs, Conv2dKernels.WinogradWeight.cs); the choice is made here at run time from the shape
/// and batch (<see cref="Conv2dAlgorithm"/>). A strided convolution's forward pass builds no column matrix: with AVX-512
/// and whole blocks of 48 or 64 output channels it builds no columns at all, the channels in the vector lanes
/// (Conv2dKernels.ChannelLanes.cs); otherwise it writes its columns straight into the GEMM's packed panels, a slab of
/// output positions at a time (Conv2dKernels.Panels.cs).
/// <para>
/// Work is spread over threads by (sample, group) when there are at least as many of those as threads (each
/// thread then runs whole single-threaded GEMMs on its own scratch, with no synchronisation); otherwise (batch 1)
/// the items run one after another, each im2col and col2im split over the threads by channel and each GEMM by rows
/// or columns (where a forward GEMM splits its rows, the columns are packed once as im2col builds them,
/// <see cref="PackedColumnsFor"/>). A small output plane (under <see cref="SmallPlane"/> positions, such as 7x7) puts several samples'
/// columns side by side in one item (<see cref="SamplesPerItem"/>), so its GEMMs are wide enough for the micro-kernel.
/// </para>
/// </summary>
public static unsafe partial class Conv2dKernels
{
    // Per (sample, group): col [Kc = C/G * KH * KW, P = OH * OW]; weight of group g [OC/G, Kc]; output [OC/G, P]
    // (a block of samples: col [Kc, count * P], output block [OC/G, count * P]).

    /// <param name="algorithm">Auto: chosen by shape; the others force one (tests and benchmarks compare them).</param>
    /// <param name="weightCache">Where the weights' packed or Winograd-transformed form is kept between calls, used while
    /// the weights are unchanged (an inference pass); null prepares them on every call, as a training step must. Under
    /// Auto a cache also moves the forward pass to Winograd at batches below 16 (<see cref="WinogradMinInferenceBatch"/>).</param>
    public static void Forward(in Conv2dGeometry g, int batch, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> bias, Span<float> output, bool relu, CpuContext ctx, Conv2dAlgorithm algorithm = Conv2dAlgorithm.Auto,
        Conv2dWeightCache? weightCache = null)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        CheckConvShapes(g, batch, input.Length, weight.Length, bias.Length, output.Length, nameof(output));
        bool winograd = UsesWinogradForward(g, batch, algorithm == Conv2dAlgorithm.Auto ? ctx.Conv2dAlgorithm : algorithm, cached: weightCache != null);
        if (batch == 0) return;
        fixed (float* pIn = input, pW = weight, pB = bias, pOut = output)
        {
            if (winograd)
            {
                WinogradForward(g, batch, pIn, pW, bias.IsEmpty ? null : pB, pOut, relu, ctx, weightCache);
                return;
            }
            var job = new ConvJob(g, batch, ctx)
            {
                Input = pIn, Weight = pW, Bias = bias.IsEmpty ? null : pB, Output = pOut, Relu = relu, WeightCache = weightCache,
            };
            if (UsesChannelLanes(g, batch, ctx))
            {
                ChannelLanesForward(ref job);
                return;
            }
            if (UsesColumnPanels(g, batch, ctx))
            {
                PanelForward(ref job);
                return;
            }
            int items = job.Items;
            if (ctx.Threads > 1 && items >= ctx.Threads)
            {
                ReserveItemScratch(ref job, backward: false);
                PackWeights(ref job, transposed: false);
                ctx.For(items, &ForwardItem, Unsafe.AsPointer(ref job));
            }
            else
            {
                for (int item = 0; item < items; item++) ForwardItemCore(ref job, item, threadIndex: -1);
            }
        }
    }

    /// <param name="algorithm">Auto chooses by shape; the others force one. The weight gradient runs Winograd when the
    /// input gradient does (or is not wanted) and the shape qualifies, im2col + GEMM otherwise.</param>
    public static void Backward(in Conv2dGeometry g, int batch, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> dOutput, Span<float> dInput, Span<float> dWeight, Span<float> dBias, CpuContext ctx,
        Conv2dAlgorithm algorithm = Conv2dAlgorithm.Auto)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        CheckConvShapes(g, batch, input.Length, weight.Length, dBias.Length, dOutput.Length, nameof(dOutput));
        if (dWeight.Length != g.WeightLength)
            throw new ArgumentException($"Conv2d backward: dWeight has {dWeight.Length} floats, expected {g.WeightLength} ([{g.OutChannels}, {g.InChannels / g.Groups}, {g.KernelHeight}, {g.KernelWidth}]).", nameof(dWeight));
        if (!dInput.IsEmpty && dInput.Length != (long)batch * g.InputLength)
            throw new ArgumentException($"Conv2d backward: dInput has {dInput.Length} floats, expected {(long)batch * g.InputLength} (batch {batch} x {g.InputLength}) or none.", nameof(dInput));
        Conv2dAlgorithm chosen = algorithm == Conv2dAlgorithm.Auto ? ctx.Conv2dAlgorithm : algorithm;
        bool winogradData = !dInput.IsEmpty && UsesWinogradData(g, batch, chosen);
        // The weight gradient by Winograd where the input gradient needs no im2col items (they compute both).
        bool winogradWeight = (dInput.IsEmpty || winogradData) && UsesWinogradWeight(g, batch, chosen);
        if (batch == 0)
        {
            dWeight.Clear();
            dBias.Clear();
            return;
        }

        fixed (float* pIn = input, pW = weight, pDy = dOutput, pDx = dInput, pDw = dWeight, pDb = dBias)
        {
            if (winogradData) WinogradData(g, batch, pW, pDy, pDx, ctx);
            if (!dBias.IsEmpty) BiasGradient(g, batch, pDy, pDb, ctx);
            if (winogradWeight)
            {
                WinogradWeight(g, batch, pIn, pDy, pDw, ctx);
                return;
            }
            var job = new ConvJob(g, batch, ctx)
            {
                // Here the input gradient, when wanted, is im2col's: a Winograd one implies a Winograd weight gradient.
                Input = pIn, Weight = pW, Output = pDy, DInput = dInput.IsEmpty ? null : pDx, DWeight = pDw,
            };

            int items = job.Items;
            if (ctx.Threads > 1 && items >= ctx.Threads)
            {
                // Static partition: thread t takes items t, t + T, ...; its dWeight partial is dWeight itself for
                // t = 0 and a scratch buffer otherwise, summed afterwards.
                float** partials = stackalloc float*[ctx.Threads];
                job.Partials = partials;
                job.Parts = ctx.Threads;
                ReserveItemScratch(ref job, backward: true);
                if (job.DInput != null) PackWeights(ref job, transposed: true);
                ctx.For(ctx.Threads, &BackwardPart, Unsafe.AsPointer(ref job));
                ctx.For(ctx.Threads, &ReducePartials, Unsafe.AsPointer(ref job));
            }
            else
            {
                for (int item = 0; item < items; item++) BackwardItemCore(ref job, item, threadIndex: -1, pDw, firstOfGroup: item < g.Groups);
            }
        }
    }

    /// <summary>Output planes with fewer positions than this are run several samples to an item.</summary>
    internal const int SmallPlane = 128;

    /// <summary>Columns a block of samples aims at: eight of the micro-kernel's 32-column tiles.</summary>
    private const int BlockColumns = 256;

    /// <summary>
    /// Samples per work item. One sample of a 7x7 plane gives the GEMMs 49 columns (two 32-column tiles, a quarter
    /// empty) and the weight gradient a depth of 49, with a call and a packing of the weights for each; a block of
    /// samples side by side gives them about <see cref="BlockColumns"/>. Kept at one while that would leave fewer
    /// than two items per thread (batch 1 keeps its all-threads path), and for a direct 1x1 convolution, whose
    /// columns are the input itself. The forward result does not depend on it (each output is the same dot product).
    /// </summary>
    internal static int SamplesPerItem(in Conv2dGeometry g, int batch, int threads)
    {
        int positions = g.OutHeight * g.OutWidth;
        if (positions >= SmallPlane || IsDirect(g)) return 1;
        int samples = Math.Min(batch, (BlockColumns + positions - 1) / positions);
        while (samples > 1 && (batch + samples - 1) / samples * g.Groups < 2 * threads) samples--;
        return Math.Max(samples, 1);
    }

    private static bool IsDirect(in Conv2dGeometry g) =>
        g.KernelHeight == 1 && g.KernelWidth == 1 && g.StrideHeight == 1 && g.StrideWidth == 1 && g.PaddingHeight == 0 && g.PaddingWidth == 0;

    private struct ConvJob
    {
        public Conv2dGeometry G;
        public int Batch, Groups, Cg, OCg, Kc, P, Parts;
        /// <summary>Samples per item (<see cref="SamplesPerItem"/>); items run (sample block, group) pairs.</summary>
        public int Samples, Items;
        /// <summary>The forward pass in slabs of packed panels (<see cref="PanelForward"/>): output positions per slab, and slabs per plane.</summary>
        public int SlabPositions, Slabs;
        /// <summary>The forward pass with the output channels in the vector lanes (<see cref="ChannelLanesForward"/>): parts per plane, and strips of the plane.</summary>
        public int LaneParts, LaneStrips;
        /// <summary>Floats of a lanes item's scratch: a strip's sums and the part's padded input rows.</summary>
        public long LaneScratchFloats;
        public bool Direct; // 1x1, stride 1, no padding: the input is the column matrix
        public float* Input, Weight, Bias, Output, DInput, DWeight;
        /// <summary>
        /// Every group's W_g (forward) or W_g^T (the input gradient's column product), packed for the GEMM once per call
        /// when the items run one per thread (<see cref="PackWeights"/>), or for the channel lanes (<see cref="PackLaneWeights"/>);
        /// <see cref="PackedGroupLength"/> floats apart.
        /// Null otherwise: with fewer items than threads each item's GEMM spreads over the threads and packs its own.
        /// </summary>
        public float* PackedWeight;
        public long PackedGroupLength;
        public bool PackedTransposed;
        /// <summary>Where the forward pass's packed weight is kept between calls (<see cref="Conv2dWeightCache"/>), or null.</summary>
        public Conv2dWeightCache? WeightCache;
        public bool Relu;
        public CpuContext Ctx;
        public float** Partials;

        public ConvJob(in Conv2dGeometry g, int batch, CpuContext ctx)
        {
            G = g;
            Batch = batch;
            Groups = g.Groups;
            Cg = g.InChannels / g.Groups;
            OCg = g.OutChannels / g.Groups;
            Kc = Cg * g.KernelHeight * g.KernelWidth;
            P = g.OutHeight * g.OutWidth;
            Direct = IsDirect(g);
            Samples = SamplesPerItem(g, batch, ctx.Threads);
            Items = (batch + Samples - 1) / Samples * g.Groups;
            Ctx = ctx;
        }

        /// <summary>The first sample, the sample count and the group of an item.</summary>
        public readonly int Block(int item, out int count, out int group)
        {
            group = item % Groups;
            int first = item / Groups * Samples;
            count = Math.Min(Samples, Batch - first);
            return first;
        }

        /// <summary>C[M, N] (+)= op(A) B for one item on its thread: op(A) from <see cref="PackedWeight"/> when packed.</summary>
        public readonly void MultiplyByWeight(int grp, bool transposed, int m, int n, int k, float* b, int ldb, bool transB, float* c, int ldc,
            bool accumulate, in GemmEpilogue epilogue, int threadIndex)
        {
            Debug.Assert(PackedWeight == null || transposed == PackedTransposed, "The weight was packed for the other product.");
            if (PackedWeight != null && threadIndex >= 0)
                Gemm.MultiplyPacked(m, n, k, PackedWeight + grp * PackedGroupLength, b, ldb, transB, c, ldc, accumulate, epilogue, Ctx, threadIndex);
            else
                Gemm.Multiply(m, n, k, Weight + (long)grp * OCg * Kc, Kc, transposed, b, ldb, transB, c, ldc, accumulate, epilogue, Ctx, threadIndex);
        }

        public readonly long InputOffset(int n, int group) => (long)n * G.InputLength + (long)group * Cg * G.InHeight * G.InWidth;

        public readonly long OutputOffset(int n, int group) => (long)n * G.OutputLength + (long)group * OCg * P;
    }

    /// <summary>Every thread's scratch for the items of a parallel loop (<see cref="CpuContext.ReserveScratch"/>).</summary>
    private static void ReserveItemScratch(ref ConvJob job, bool backward)
    {
        int width = job.Samples * job.P;
        if (!job.Direct) job.Ctx.ReserveScratch(ScratchSlot.Columns, (long)job.Kc * width);
        if (job.Samples > 1) job.Ctx.ReserveScratch(ScratchSlot.SampleBlock, (long)job.OCg * width);
        if (!backward)
        {
            Gemm.ReserveScratch(job.OCg, width, job.Kc, job.Ctx);
            return;
        }
        Gemm.ReserveScratch(job.OCg, job.Kc, width, job.Ctx);
        if (job.DInput != null) Gemm.ReserveScratch(job.Kc, width, job.OCg, job.Ctx);
    }

    private static void ForwardItem(void* state, int item, int threadIndex) =>
        ForwardItemCore(ref Unsafe.AsRef<ConvJob>(state), item, threadIndex);

    /// <param name="threadIndex">-1: called outside a parallel loop, the GEMM uses all threads.</param>
    private static void ForwardItemCore(ref ConvJob job, int item, int threadIndex)
    {
        int n = job.Block(item, out int count, out int grp);
        var epilogue = new GemmEpilogue(job.Bias == null ? null : job.Bias + grp * job.OCg, null, job.Relu);
        if (count > 1)
        {
            ForwardBlock(ref job, n, count, grp, epilogue, threadIndex);
            return;
        }
        if (threadIndex < 0 && !job.Direct && job.Ctx.Threads > 1 && !Gemm.SplitsColumns(job.OCg, job.P, job.Ctx.Threads))
        {
            // The product will spread over the threads by output channels, and each thread would pack all of the
            // columns for itself: they are packed once instead, as im2col builds them (the same bits). A product too
            // small to spread runs on this thread and reads them just the same.
            float* packed = PackedColumnsFor(ref job, job.Input + job.InputOffset(n, grp));
            Gemm.MultiplyPackedB(job.OCg, job.P, job.Kc, job.Weight + (long)grp * job.OCg * job.Kc, job.Kc, false, packed,
                job.Output + job.OutputOffset(n, grp), job.P, false, epilogue, job.Ctx);
            return;
        }
        float* col = ColumnsFor(ref job, job.Input + job.InputOffset(n, grp), threadIndex);
        // output[OCg, P] = weight_g[OCg, Kc] * col[Kc, P] + bias_g, ReLU
        job.MultiplyByWeight(grp, false, job.OCg, job.P, job.Kc, col, job.P, false, job.Output + job.OutputOffset(n, grp), job.P,
            false, epilogue, threadIndex);
    }

    /// <summary>
    /// Every group's weight packed for the items' GEMMs (W_g, or W_g^T when <paramref name="transposed"/>), once per
    /// call instead of once per item, in thread 0's <see cref="ScratchSlot.TransformedFilters"/>, or (W_g, with a
    /// <see cref="ConvJob.WeightCache"/>) once while the weights stay the same. The same bits as packing in each product.
    /// </summary>
    private static void PackWeights(ref ConvJob job, bool transposed)
    {
        int m = transposed ? job.Kc : job.OCg, k = transposed ? job.OCg : job.Kc;
        job.PackedGroupLength = Gemm.PackedLength(m, k);
        job.PackedTransposed = transposed;
        long length = job.Groups * job.PackedGroupLength;
        Conv2dWeightCache? cache = transposed ? null : job.WeightCache;
        var weight = new ReadOnlySpan<float>(job.Weight, job.G.WeightLength);
        job.PackedWeight = cache?.Find(PreparedWeightForm.GemmPacked, job.G, length, weight);
        if (job.PackedWeight != null) return;
        job.PackedWeight = cache is null ? job.Ctx.Scratch(0, ScratchSlot.TransformedFilters, length) : cache.Reserve(length);
        for (int grp = 0; grp < job.Groups; grp++)
            Gemm.PackWhole(m, k, job.Weight + (long)grp * job.OCg * job.Kc, job.Kc, transposed, job.PackedWeight + grp * job.PackedGroupLength);
        cache?.Commit(PreparedWeightForm.GemmPacked, job.G, length, weight);
    }

    /// <summary>
    /// Samples n .. n + count - 1 of one group: their columns side by side, [Kc, count * P], one GEMM into a block
    /// [OCg, count * P], then each sample's [OCg, P] copied to its place in the output.
    /// </summary>
    private static void ForwardBlock(ref ConvJob job, int n, int count, int grp, GemmEpilogue epilogue, int threadIndex)
    {
        int thread = Math.Max(threadIndex, 0), width = count * job.P;
        float* col = BlockColumnsFor(ref job, n, count, grp, thread);
        float* block = job.Ctx.Scratch(thread, ScratchSlot.SampleBlock, (long)job.OCg * width);
        job.MultiplyByWeight(grp, false, job.OCg, width, job.Kc, col, width, false, block, width, false, epilogue, threadIndex);
        for (int s = 0; s < count; s++)
        {
            float* output = job.Output + job.OutputOffset(n + s, grp);
            for (int oc = 0; oc < job.OCg; oc++)
                new ReadOnlySpan<float>(block + (long)oc * width + s * job.P, job.P).CopyTo(new Span<float>(output + (long)oc * job.P, job.P));
        }
    }

    /// <summary>The column matrices of samples n .. n + count - 1 of one group, side by side: [Kc, count * P].</summary>
    private static float* BlockColumnsFor(ref ConvJob job, int n, int count, int grp, int thread)
    {
        int width = count * job.P;
        float* col = job.Ctx.Scratch(thread, ScratchSlot.Columns, (long)job.Kc * width);
        for (int s = 0; s < count; s++) Im2Col(job.G, job.Cg, job.Input + job.InputOffset(n + s, grp), col + s * job.P, width);
        return col;
    }

    /// <summary>The column matrix [Kc, P] of one sample and group: the input itself for a direct 1x1 conv.</summary>
    private static float* ColumnsFor(ref ConvJob job, float* inputGroup, int threadIndex)
    {
        if (job.Direct) return inputGroup;
        float* col = job.Ctx.Scratch(Math.Max(threadIndex, 0), ScratchSlot.Columns, (long)job.Kc * job.P);
        if (threadIndex < 0 && job.Ctx.Threads > 1) ChannelsInParallel(ref job, inputGroup, col, &Im2ColChannels);
        else Im2Col(job.G, job.Cg, inputGroup, col, job.P);
        return col;
    }

    /// <summary>
    /// The column matrix [Kc, P] of one sample and group, packed for <see cref="Gemm.MultiplyPackedB"/> in thread 0's
    /// <see cref="ScratchSlot.Columns"/>: every thread takes a range of input channels, builds a channel's KH * KW rows
    /// in its <see cref="ScratchSlot.Temporary"/> (small enough to stay in L1 for a 3x3 kernel) and packs them. A
    /// channel's rows are its own, so the threads never write the same floats.
    /// </summary>
    private static float* PackedColumnsFor(ref ConvJob job, float* inputGroup)
    {
        float* packed = job.Ctx.Scratch(0, ScratchSlot.Columns, Gemm.PackedBLength(job.P, job.Kc));
        job.Ctx.ReserveScratch(ScratchSlot.Temporary, (long)job.G.KernelHeight * job.G.KernelWidth * job.P);
        ChannelsInParallel(ref job, inputGroup, packed, &Im2ColPackedChannels);
        return packed;
    }

    private static void Im2ColPackedChannels(void* state, int chunk, int threadIndex)
    {
        ref ChannelWork work = ref Unsafe.AsRef<ChannelWork>(state);
        var g = work.G;
        int taps = g.KernelHeight * g.KernelWidth, positions = g.OutHeight * g.OutWidth, depth = work.Channels * taps;
        int first = work.FirstChannel(chunk), end = work.FirstChannel(chunk + 1);
        float* rows = work.Ctx.Scratch(threadIndex, ScratchSlot.Temporary, (long)taps * positions);
        for (int c = first; c < end; c++)
        {
            Im2Col(g, 1, work.Image + (long)c * g.InHeight * g.InWidth, rows, positions);
            Gemm.PackBRows(positions, depth, c * taps, taps, rows, positions, work.Col);
        }
    }

    /// <summary>
    /// Im2col or col2im of one (sample, group) spread over the threads by input channel, for when that item runs
    /// alone with every thread (batch 1): the rows of a channel are its own and its input plane is its own, so the
    /// chunks never touch the same memory, and the result is the same as one thread's.
    /// </summary>
    private static void ChannelsInParallel(ref ConvJob job, float* image, float* col, delegate*<void*, int, int, void> body)
    {
        var work = new ChannelWork { G = job.G, Channels = job.Cg, Image = image, Col = col, Chunks = Math.Min(job.Cg, job.Ctx.Threads), Ctx = job.Ctx };
        job.Ctx.For(work.Chunks, body, Unsafe.AsPointer(ref work));
    }

    private struct ChannelWork
    {
        public Conv2dGeometry G;
        public int Channels, Chunks;
        public float* Image, Col;
        public CpuContext Ctx;

        /// <summary>The first channel of a chunk (of none past the last: the channel count).</summary>
        public readonly int FirstChannel(int chunk) => (int)((long)Channels * chunk / Chunks);

        /// <summary>Channel count of one chunk, and where its input plane and column rows start.</summary>
        public readonly int Chunk(int chunk, out float* image, out float* col)
        {
            int first = FirstChannel(chunk), end = FirstChannel(chunk + 1);
            long plane = (long)G.InHeight * G.InWidth;
            long rows = (long)G.KernelHeight * G.KernelWidth * G.OutHeight * G.OutWidth;
            image = Image + first * plane;
            col = Col + first * rows;
            return end - first;
        }
    }

    private static void Im2ColChannels(void* state, int chunk, int threadIndex)
    {
        ref ChannelWork work = ref Unsafe.AsRef<ChannelWork>(state);
        int count = work.Chunk(chunk, out float* image, out float* col);
        Im2Col(work.G, count, image, col, work.G.OutHeight * work.G.OutWidth);
    }

    private static void Col2ImChannels(void* state, int chunk, int threadIndex)
    {
        ref ChannelWork work = ref Unsafe.AsRef<ChannelWork>(state);
        int count = work.Chunk(chunk, out float* image, out float* col);
        Col2Im(work.G, count, col, work.G.OutHeight * work.G.OutWidth, image);
    }

    private static void BackwardPart(void* state, int part, int threadIndex)
    {
        ref ConvJob job = ref Unsafe.AsRef<ConvJob>(state);
        int weightLength = job.G.WeightLength;
        // Partials are keyed by part, not thread: one thread may run several parts when a helper wakes late.
        float* dWeight = part == 0 ? job.DWeight : job.Ctx.Scratch(part, ScratchSlot.PartialGradient, weightLength);
        job.Partials[part] = dWeight;
        int items = job.Items;
        int groupWeight = job.OCg * job.Kc;
        for (int grp = 0; grp < job.Groups; grp++)
        {
            // Groups this part never visits must still read as zero in its partial.
            bool visited = false;
            for (int item = part; item < items; item += job.Parts) if (item % job.Groups == grp) { visited = true; break; }
            if (!visited) new Span<float>(dWeight + (long)grp * groupWeight, groupWeight).Clear();
        }
        var firstSeen = stackalloc bool[job.Groups];
        for (int item = part; item < items; item += job.Parts)
        {
            int grp = item % job.Groups;
            BackwardItemCore(ref job, item, threadIndex, dWeight, firstOfGroup: !firstSeen[grp]);
            firstSeen[grp] = true;
        }
    }

    private static void ReducePartials(void* state, int part, int threadIndex)
    {
        ref ConvJob job = ref Unsafe.AsRef<ConvJob>(state);
        long length = job.G.WeightLength;
        long chunk = (length + job.Parts - 1) / job.Parts;
        long start = part * chunk, end = Math.Min(length, start + chunk);
        if (start >= end) return;
        for (int t = 1; t < job.Parts; t++)
        {
            SimdSpan.AddInPlace(job.DWeight + start, job.Partials[t] + start, end - start);
        }
    }

    /// <summary>dWeight_g (+)= dY_ng * col^T and, when wanted, dInput_ng = col2im(W_g^T * dY_ng).</summary>
    private static void BackwardItemCore(ref ConvJob job, int item, int threadIndex, float* dWeight, bool firstOfGroup)
    {
        int n = job.Block(item, out int count, out int grp);
        if (count > 1)
        {
            BackwardBlock(ref job, n, count, grp, threadIndex, dWeight, firstOfGroup);
            return;
        }
        ref readonly Conv2dGeometry g = ref job.G;
        long groupInputOffset = job.InputOffset(n, grp);
        float* dOutputGroup = job.Output + job.OutputOffset(n, grp);
        float* col = ColumnsFor(ref job, job.Input + groupInputOffset, threadIndex);

        // dWeight_g[OCg, Kc] (+)= dY_ng[OCg, P] * col[Kc, P]^T
        Gemm.Multiply(job.OCg, job.Kc, job.P, dOutputGroup, job.P, false, col, job.P, true,
            dWeight + (long)grp * job.OCg * job.Kc, job.Kc, !firstOfGroup, GemmEpilogue.None, job.Ctx, threadIndex);

        if (job.DInput == null) return;
        float* dInputGroup = job.DInput + groupInputOffset;
        if (job.Direct)
        {
            // dInput_ng[Cg, P] = W_g[OCg, Cg]^T * dY_ng[OCg, P], written straight into place.
            job.MultiplyByWeight(grp, true, job.Kc, job.P, job.OCg, dOutputGroup, job.P, false, dInputGroup, job.P, false, GemmEpilogue.None, threadIndex);
            return;
        }
        // dCol[Kc, P] = W_g[OCg, Kc]^T * dY_ng[OCg, P]; the columns are no longer needed, so reuse their buffer.
        job.MultiplyByWeight(grp, true, job.Kc, job.P, job.OCg, dOutputGroup, job.P, false, col, job.P, false, GemmEpilogue.None, threadIndex);
        if (threadIndex < 0 && job.Ctx.Threads > 1) ChannelsInParallel(ref job, dInputGroup, col, &Col2ImChannels);
        else Col2Im(g, job.Cg, col, job.P, dInputGroup);
    }

    /// <summary>
    /// <see cref="BackwardItemCore"/> for samples n .. n + count - 1 of one group: their output gradients gathered
    /// side by side, [OCg, count * P], against their columns, [Kc, count * P], so the weight gradient is one product
    /// of depth count * P and the column gradient one product of width count * P, scattered back sample by sample.
    /// </summary>
    private static void BackwardBlock(ref ConvJob job, int n, int count, int grp, int threadIndex, float* dWeight, bool firstOfGroup)
    {
        int thread = Math.Max(threadIndex, 0), width = count * job.P;
        float* dOutputBlock = job.Ctx.Scratch(thread, ScratchSlot.SampleBlock, (long)job.OCg * width);
        for (int s = 0; s < count; s++)
        {
            float* dOutput = job.Output + job.OutputOffset(n + s, grp);
            for (int oc = 0; oc < job.OCg; oc++)
                new ReadOnlySpan<float>(dOutput + (long)oc * job.P, job.P).CopyTo(new Span<float>(dOutputBlock + (long)oc * width + s * job.P, job.P));
        }
        float* col = BlockColumnsFor(ref job, n, count, grp, thread);

        Gemm.Multiply(job.OCg, job.Kc, width, dOutputBlock, width, false, col, width, true,
            dWeight + (long)grp * job.OCg * job.Kc, job.Kc, !firstOfGroup, GemmEpilogue.None, job.Ctx, threadIndex);

        if (job.DInput == null) return;
        job.MultiplyByWeight(grp, true, job.Kc, width, job.OCg, dOutputBlock, width, false, col, width, false, GemmEpilogue.None, threadIndex);
        for (int s = 0; s < count; s++) Col2Im(job.G, job.Cg, col + s * job.P, width, job.DInput + job.InputOffset(n + s, grp));
    }

    /// <summary>dBias[oc] = sum over samples and positions of dY[n, oc, p].</summary>
    private static void BiasGradient(in Conv2dGeometry g, int batch, float* dOutput, float* dBias, CpuContext ctx)
    {
        int p = g.OutHeight * g.OutWidth;
        for (int oc = 0; oc < g.OutChannels; oc++)
        {
            double sum = 0;
            for (int n = 0; n < batch; n++)
                sum += SimdSpan.Sum(dOutput + (long)n * g.OutputLength + (long)oc * p, p);
            dBias[oc] = (float)sum;
        }
    }

    /// <summary>
    /// col[(c * KH + kh) * KW + kw, oh * OW + ow] = input[c, oh * SH - PH + kh, ow * SW - PW + kw], zero outside;
    /// the rows of col lie <paramref name="rowStride"/> floats apart (OH * OW for one sample alone).
    /// </summary>
    internal static void Im2Col(in Conv2dGeometry g, int channels, float* input, float* colStart, long rowStride)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, sw = g.StrideWidth, ph = g.PaddingHeight, pw = g.PaddingWidth;
        if (sw == 1 && Avx512F.IsSupported)
        {
            Im2ColStride1(g, channels, input, colStart, rowStride);
            return;
        }
        if (sw > 1 && PhasesFit(g))
        {
            Im2ColPhased(g, channels, input, colStart, rowStride);
            return;
        }
        Im2ColScalar(g, channels, input, colStart, rowStride);
    }

    /// <summary>Most floats of phases <see cref="Im2ColPhased"/> splits a row into on the stack (64 KiB).</summary>
    private const int MaxPhasedRow = 16384;

    /// <summary>Whether a padded input row's stride phases fit <see cref="MaxPhasedRow"/>.</summary>
    private static bool PhasesFit(in Conv2dGeometry g) =>
        (long)Math.Min(g.StrideWidth, g.KernelWidth) * ((g.InWidth + 2 * g.PaddingWidth + g.StrideWidth - 1) / g.StrideWidth) <= MaxPhasedRow;

    /// <summary>
    /// <see cref="Im2Col"/> at a column stride above 1 (conv1's 4): each padded input row is split once into its
    /// stride's phases, phase r holding the elements r, r + SW, r + 2 SW, ...; the columns that kernel column kx reads
    /// along an output row are then phase kx mod SW from element kx / SW on, one contiguous copy, instead of a strided
    /// gather for every (kx, output row). Each input row serves every kernel row that reads it.
    /// </summary>
    private static void Im2ColPhased(in Conv2dGeometry g, int channels, float* input, float* colStart, long rowStride)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, sw = g.StrideWidth, ph = g.PaddingHeight, pw = g.PaddingWidth;
        int padded = w + 2 * pw, phaseLength = (padded + sw - 1) / sw;
        // Kernel column kx reads phase kx mod SW: a kernel narrower than the stride reads only its first KW phases.
        int phaseCount = Math.Min(sw, kw);
        float* phases = stackalloc float[phaseCount * phaseLength];
        for (int c = 0; c < channels; c++)
        {
            float* plane = input + (long)c * h * w;
            float* channelCol = colStart + (long)c * kh * kw * rowStride;
            // Output rows whose kernel row ky falls in the vertical padding read zeros.
            for (int ky = 0; ky < kh; ky++)
            {
                for (int y = 0; y < oh; y++)
                {
                    int iy = y * sh - ph + ky;
                    if ((uint)iy < (uint)h) continue;
                    for (int kx = 0; kx < kw; kx++) new Span<float>(channelCol + (long)(ky * kw + kx) * rowStride + (long)y * ow, ow).Clear();
                }
            }
            for (int iy = 0; iy < h; iy++)
            {
                SplitIntoPhases(g, plane + (long)iy * w, phases, phaseCount, phaseLength);
                // Kernel row ky reads input row iy for output row y = (iy + ph - ky) / sh, when that divides.
                for (int ky = 0; ky < kh; ky++)
                {
                    int offset = iy + ph - ky;
                    if (offset < 0 || offset % sh != 0 || offset / sh >= oh) continue;
                    int y = offset / sh;
                    for (int kx = 0; kx < kw; kx++)
                        CopyRun(phases + (kx % sw) * phaseLength + kx / sw, channelCol + (long)(ky * kw + kx) * rowStride + (long)y * ow, ow);
                }
            }
        }
    }

    /// <summary>
    /// Splits one input row, padded by PW zeros on each side, into its first <paramref name="phaseCount"/> stride
    /// phases of <paramref name="phaseLength"/> floats each: phase r holds padded columns r, r + SW, r + 2 SW, ...
    /// At a stride of 2 or 4 with AVX-512, sixteen floats of a phase are picked out of 16 SW floats of the row by
    /// permutes while those lie inside the row.
    /// </summary>
    private static void SplitIntoPhases(in Conv2dGeometry g, float* row, float* phases, int phaseCount, int phaseLength)
    {
        int w = g.InWidth, sw = g.StrideWidth, pw = g.PaddingWidth;
        bool permutes = Avx512F.IsSupported && (sw == 2 || sw == 4);
        // Every SW-th float of two vectors: all sixteen lanes at a stride of 2, the first eight at 4.
        Vector512<int> picks = permutes
            ? (Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) & Vector512.Create(sw == 4 ? 7 : 15)) * Vector512.Create(sw)
            : default;
        for (int r = 0; r < phaseCount; r++)
        {
            // Padded column u = t * SW + r is input column u - PW: zero before the row and after it.
            float* phase = phases + r * phaseLength;
            int first = FirstValid(pw - r, sw), end = Math.Min(phaseLength, LastValidExclusive(pw + w - r, sw));
            int t = 0;
            for (; t < first; t++) phase[t] = 0f;
            float* from = row + (first * sw + r - pw);
            if (permutes)
            {
                for (; t + 16 <= end && from + 16 * sw <= row + w; t += 16, from += 16 * sw)
                {
                    Vector512<float> picked = Avx512F.PermuteVar16x32x2(Vector512.Load(from), picks, Vector512.Load(from + 16));
                    if (sw == 4)
                    {
                        Vector512<float> high = Avx512F.PermuteVar16x32x2(Vector512.Load(from + 32), picks, Vector512.Load(from + 48));
                        picked = Avx512F.InsertVector256(picked, high.GetLower(), 1);
                    }
                    picked.Store(phase + t);
                }
            }
            for (; t < end; t++, from += sw) phase[t] = *from;
            for (; t < phaseLength; t++) phase[t] = 0f;
        }
    }

    /// <summary>
    /// Copies count floats between buffers that do not overlap: whole vectors, the last one ending at the last float
    /// (it may rewrite a few the previous one wrote, with the same values), instead of a general copy call per run
    /// (conv1's runs are 55 floats).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRun(float* from, float* to, int count)
    {
        if (count < Vector512<float>.Count || !Vector512.IsHardwareAccelerated)
        {
            new ReadOnlySpan<float>(from, count).CopyTo(new Span<float>(to, count));
            return;
        }
        int last = count - Vector512<float>.Count;
        for (int i = 0; i < last; i += Vector512<float>.Count) Vector512.Store(Vector512.Load(from + i), to + i);
        Vector512.Store(Vector512.Load(from + last), to + last);
    }

    /// <summary>
    /// <see cref="Im2Col"/> at a column stride of 1 without AVX-512, and at larger strides on rows too wide for
    /// <see cref="Im2ColPhased"/>; the tests' reference for both fast paths.
    /// </summary>
    internal static void Im2ColScalar(in Conv2dGeometry g, int channels, float* input, float* colStart, long rowStride)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, sw = g.StrideWidth, ph = g.PaddingHeight, pw = g.PaddingWidth;
        // Strided reads (rows too wide to split into phases): eight per gather.
        Vector256<int> offsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * sw;
        long row = 0;
        for (int c = 0; c < channels; c++)
        {
            float* plane = input + (long)c * h * w;
            for (int ky = 0; ky < kh; ky++)
            {
                for (int kx = 0; kx < kw; kx++, row++)
                {
                    float* col = colStart + row * rowStride;
                    // Output columns ow with 0 <= ow * sw - pw + kx < w form one contiguous range.
                    int owStart = FirstValid(pw - kx, sw), owEnd = Math.Min(ow, LastValidExclusive(w + pw - kx, sw));
                    for (int y = 0; y < oh; y++)
                    {
                        int iy = y * sh - ph + ky;
                        if ((uint)iy >= (uint)h || owStart >= owEnd)
                        {
                            new Span<float>(col, ow).Clear();
                            col += ow;
                            continue;
                        }
                        float* src = plane + (long)iy * w - pw + kx;
                        int x = 0;
                        for (; x < owStart; x++) col[x] = 0f;
                        if (sw == 1)
                        {
                            new ReadOnlySpan<float>(src + owStart, owEnd - owStart).CopyTo(new Span<float>(col + owStart, owEnd - owStart));
                            x = owEnd;
                        }
                        else
                        {
                            x = owStart;
                            if (Avx2.IsSupported)
                            {
                                for (; x + 8 <= owEnd; x += 8) Avx2.GatherVector256(src + x * sw, offsets, 4).Store(col + x);
                            }
                            for (; x < owEnd; x++) col[x] = src[x * sw];
                        }
                        for (x = owEnd; x < ow; x++) col[x] = 0f;
                        col += ow;
                    }
                }
            }
        }
    }

    /// <summary>The inverse scatter of <see cref="Im2Col"/>: input[c, iy, ix] = sum of the column entries that read it.</summary>
    internal static void Col2Im(in Conv2dGeometry g, int channels, float* colStart, long rowStride, float* dInput)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, sw = g.StrideWidth, ph = g.PaddingHeight, pw = g.PaddingWidth;
        new Span<float>(dInput, channels * h * w).Clear();
        if (sw == 1 && Avx512F.IsSupported)
        {
            Col2ImStride1(g, channels, colStart, rowStride, dInput);
            return;
        }
        Col2ImScalar(g, channels, colStart, rowStride, dInput);
    }

    /// <summary><see cref="Col2Im"/> without AVX-512 (and for column strides above 1 with it); dInput already zero.</summary>
    internal static void Col2ImScalar(in Conv2dGeometry g, int channels, float* colStart, long rowStride, float* dInput)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, sw = g.StrideWidth, ph = g.PaddingHeight, pw = g.PaddingWidth;
        long row = 0;
        for (int c = 0; c < channels; c++)
        {
            float* plane = dInput + (long)c * h * w;
            for (int ky = 0; ky < kh; ky++)
            {
                for (int kx = 0; kx < kw; kx++, row++)
                {
                    float* col = colStart + row * rowStride;
                    int owStart = FirstValid(pw - kx, sw), owEnd = Math.Min(ow, LastValidExclusive(w + pw - kx, sw));
                    for (int y = 0; y < oh; y++, col += ow)
                    {
                        int iy = y * sh - ph + ky;
                        if ((uint)iy >= (uint)h || owStart >= owEnd) continue;
                        float* dst = plane + (long)iy * w - pw + kx;
                        if (sw == 1)
                        {
                            SimdSpan.AddInPlace(dst + owStart, col + owStart, owEnd - owStart);
                        }
                        else
                        {
                            for (int x = owStart; x < owEnd; x++) dst[x * sw] += col[x];
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// <see cref="Im2Col"/> at a column stride of 1 (any row stride): each output row of a column row moves as masked Vector512 loads (the lanes
    /// inside the input row; the others, padding, read as zero without touching memory) and masked stores, instead of
    /// a copy call and two zeroing loops per row (a handful of floats at 13x13 or 7x7).
    /// </summary>
    private static void Im2ColStride1(in Conv2dGeometry g, int channels, float* input, float* colStart, long rowStride)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, ph = g.PaddingHeight, pw = g.PaddingWidth;
        long row = 0;
        for (int c = 0; c < channels; c++)
        {
            float* plane = input + (long)c * h * w;
            for (int ky = 0; ky < kh; ky++)
            {
                for (int kx = 0; kx < kw; kx++, row++)
                {
                    float* col = colStart + row * rowStride;
                    int owStart = FirstValid(pw - kx, 1), owEnd = Math.Min(ow, LastValidExclusive(w + pw - kx, 1));
                    for (int x0 = 0; x0 < ow; x0 += 16)
                    {
                        Vector512<float> inside = LanesWithin(x0, owStart, owEnd), inRow = LanesWithin(x0, 0, ow);
                        float* to = col + x0;
                        for (int y = 0; y < oh; y++, to += ow)
                        {
                            int iy = y * sh - ph + ky;
                            Vector512<float> values = (uint)iy < (uint)h
                                ? Avx512F.MaskLoad(plane + (long)iy * w - pw + kx + x0, inside, Vector512<float>.Zero)
                                : Vector512<float>.Zero;
                            Avx512F.MaskStore(to, inRow, values);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// <see cref="Col2Im"/> at a column stride of 1 (any row stride; dInput already zero): each output row adds its column entries inside the
    /// input row with masked loads and stores; every input element receives the same additions in the same order as
    /// the scalar scatter.
    /// </summary>
    private static void Col2ImStride1(in Conv2dGeometry g, int channels, float* colStart, long rowStride, float* dInput)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, ph = g.PaddingHeight, pw = g.PaddingWidth;
        long row = 0;
        for (int c = 0; c < channels; c++)
        {
            float* plane = dInput + (long)c * h * w;
            for (int ky = 0; ky < kh; ky++)
            {
                for (int kx = 0; kx < kw; kx++, row++)
                {
                    float* col = colStart + row * rowStride;
                    int owStart = FirstValid(pw - kx, 1), owEnd = Math.Min(ow, LastValidExclusive(w + pw - kx, 1));
                    for (int x0 = 0; x0 < ow; x0 += 16)
                    {
                        Vector512<float> inside = LanesWithin(x0, owStart, owEnd);
                        float* from = col + x0;
                        for (int y = 0; y < oh; y++, from += ow)
                        {
                            int iy = y * sh - ph + ky;
                            if ((uint)iy >= (uint)h) continue;
                            float* dst = plane + (long)iy * w - pw + kx + x0;
                            Vector512<float> sum = Avx512F.MaskLoad(dst, inside, Vector512<float>.Zero) + Avx512F.MaskLoad(from, inside, Vector512<float>.Zero);
                            Avx512F.MaskStore(dst, inside, sum);
                        }
                    }
                }
            }
        }
    }

    /// <summary>The mask of the 16 lanes x0 + i (i = 0..15) that lie in [start, end): an output row's chunk.</summary>
    private static Vector512<float> LanesWithin(int x0, int start, int end)
    {
        Vector512<int> x = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) + Vector512.Create(x0);
        return (Vector512.GreaterThanOrEqual(x, Vector512.Create(start)) & Vector512.LessThan(x, Vector512.Create(end))).AsSingle();
    }

    /// <summary>Smallest x >= 0 with x * stride >= offset.</summary>
    private static int FirstValid(int offset, int stride) => offset <= 0 ? 0 : (offset + stride - 1) / stride;

    /// <summary>Smallest x with x * stride >= limit (so x * stride &lt; limit for all smaller x >= 0).</summary>
    private static int LastValidExclusive(int limit, int stride) => limit <= 0 ? 0 : (limit + stride - 1) / stride;

    private static void CheckConvShapes(in Conv2dGeometry g, int batch, int inputLength, int weightLength, int biasLength, int outputLength, string outputName)
    {
        if (batch < 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "Conv2d: batch must not be negative.");
        if (g.Groups < 1 || g.InChannels % g.Groups != 0 || g.OutChannels % g.Groups != 0)
            throw new ArgumentException($"Conv2d: groups {g.Groups} must divide input channels {g.InChannels} and output channels {g.OutChannels}.", nameof(g));
        if (g.StrideHeight < 1 || g.StrideWidth < 1 || g.KernelHeight < 1 || g.KernelWidth < 1 || g.PaddingHeight < 0 || g.PaddingWidth < 0)
            throw new ArgumentException($"Conv2d: kernel {g.KernelHeight}x{g.KernelWidth}, stride {g.StrideHeight}x{g.StrideWidth}, padding {g.PaddingHeight}x{g.PaddingWidth} out of range.", nameof(g));
        if (g.InHeight + 2 * g.PaddingHeight < g.KernelHeight || g.InWidth + 2 * g.PaddingWidth < g.KernelWidth)
            throw new ArgumentException($"Conv2d: kernel {g.KernelHeight}x{g.KernelWidth} is larger than the padded input {g.InHeight + 2 * g.PaddingHeight}x{g.InWidth + 2 * g.PaddingWidth} (input {g.InHeight}x{g.InWidth}, padding {g.PaddingHeight}x{g.PaddingWidth}).", nameof(g));
        int oh = (g.InHeight + 2 * g.PaddingHeight - g.KernelHeight) / g.StrideHeight + 1;
        int ow = (g.InWidth + 2 * g.PaddingWidth - g.KernelWidth) / g.StrideWidth + 1;
        if (oh != g.OutHeight || ow != g.OutWidth || oh < 1 || ow < 1)
            throw new ArgumentException($"Conv2d: output {g.OutHeight}x{g.OutWidth} does not match input {g.InHeight}x{g.InWidth} with kernel {g.KernelHeight}x{g.KernelWidth}, stride {g.StrideHeight}x{g.StrideWidth}, padding {g.PaddingHeight}x{g.PaddingWidth} (expected {oh}x{ow}).", nameof(g));
        if (inputLength != (long)batch * g.InputLength)
            throw new ArgumentException($"Conv2d: input has {inputLength} floats, expected {(long)batch * g.InputLength} (batch {batch} x [{g.InChannels}, {g.InHeight}, {g.InWidth}]).", "input");
        if (weightLength != g.WeightLength)
            throw new ArgumentException($"Conv2d: weight has {weightLength} floats, expected {g.WeightLength} ([{g.OutChannels}, {g.InChannels / g.Groups}, {g.KernelHeight}, {g.KernelWidth}]).", "weight");
        if (biasLength != 0 && biasLength != g.OutChannels)
            throw new ArgumentException($"Conv2d: bias has {biasLength} floats, expected {g.OutChannels} or none.", "bias");
        if (outputLength != (long)batch * g.OutputLength)
            throw new ArgumentException($"Conv2d: {outputName} has {outputLength} floats, expected {(long)batch * g.OutputLength} (batch {batch} x [{g.OutChannels}, {g.OutHeight}, {g.OutWidth}]).", outputName);
    }
}
