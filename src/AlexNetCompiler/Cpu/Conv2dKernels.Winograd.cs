using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>Which algorithm a fast 2-D convolution runs.</summary>
public enum Conv2dAlgorithm
{
    /// <summary>
    /// Chosen by shape and batch: Winograd F(4x4, 3x3) for 3x3 stride-1 layers with the channel counts where it measured
    /// faster than im2col + GEMM in every benchmark run (<see cref="Conv2dKernels.WinogradMinInChannels"/>,
    /// <see cref="Conv2dKernels.WinogradMinOutChannels"/>; other layers with those counts follow the rule unmeasured):
    /// the forward pass and both gradients at <see cref="Conv2dKernels.WinogradMinBatch"/> samples or more (the input
    /// gradient also needs padding at most 2, or 4 for 5x5; the weight gradient runs Winograd when the input gradient
    /// does or is not wanted), and an inference pass's forward pass (the transformed filters kept between calls) on
    /// 16 output tiles a group or more from <see cref="Conv2dKernels.WinogradMinInferenceBatch"/>, or from batch 1 with
    /// AVX-512. 5x5 stride-1 layers at the same batches with <see cref="Conv2dKernels.Winograd5x5MinInChannels"/> input and <see cref="Conv2dKernels.WinogradMinOutChannels"/> output channels per group run Winograd F(2x2, 5x5)
    /// in the forward pass, and in both gradients from <see cref="Conv2dKernels.WinogradMinInChannels"/> input channels.
    /// im2col + GEMM otherwise.
    /// </summary>
    Auto,
    /// <summary>im2col + GEMM, every shape.</summary>
    Im2Col,
    /// <summary>
    /// Winograd F(4x4, 3x3) or F(2x2, 5x5): 3x3 and 5x5 kernels at stride 1 only (and padding at most 2 or 4 for the
    /// input gradient).
    /// </summary>
    Winograd,
}

/// <summary>
/// Winograd F(4x4, 3x3) convolution (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", arXiv:1509.09308,
/// 2015; CVPR 2016), with the paper's matrices for interpolation points 0, 1, -1, 2, -2 and infinity:
/// <code>
///         [ 4   0  -5   0   1   0 ]         [  1/4     0     0  ]
///         [ 0  -4  -4   1   1   0 ]         [ -1/6  -1/6  -1/6  ]         [ 1   1   1   1   1   0 ]
///   B^T = [ 0   4  -4  -1   1   0 ]     G = [ -1/6   1/6  -1/6  ]   A^T = [ 0   1  -1   2  -2   0 ]
///         [ 0  -2  -1   2   1   0 ]         [ 1/24  1/12   1/6  ]         [ 0   1   1   4   4   0 ]
///         [ 0   2  -1  -2   1   0 ]         [ 1/24 -1/12   1/6  ]         [ 0   1  -1   8  -8   1 ]
///         [ 0   4   0  -5   0   1 ]         [   0     0     1   ]
/// </code>
/// A 4x4 output tile Y of one output channel is A^T [ sum over input channels c of (G g_c G^T) .* (B^T d_c B) ] A, where
/// d_c is the 6x6 input tile of channel c and g_c the 3x3 filter. 36 multiplies per 16 outputs instead of 144.
/// <para>
/// 5x5 filters run F(2x2, 5x5) on the same 6x6 input tiles. Its six interpolation points are the same, so B^T is the
/// same matrix (the data transform depends only on the points); G and A^T are the Vandermonde rows of the points with
/// five and two columns, G's rows scaled as above (1/4, -1/6, -1/6, 1/24, 1/24, and 1 for infinity):
/// <code>
///       [  1/4     0     0     0     0  ]
///       [ -1/6  -1/6  -1/6  -1/6  -1/6  ]
///   G = [ -1/6   1/6  -1/6   1/6  -1/6  ]     A^T = [ 1   1   1   1   1   0 ]
///       [ 1/24  1/12   1/6   1/3   2/3  ]           [ 0   1  -1   2  -2   1 ]
///       [ 1/24 -1/12   1/6  -1/3   2/3  ]
///       [   0     0     0     0     1   ]
/// </code>
/// (checked exact in rational arithmetic on random integer tiles). 36 multiplies per 4 outputs instead of 100. Everything
/// below is the same for both, with R x R filters and M x M output tiles (R = 3, M = 4 or R = 5, M = 2).
/// </para>
/// <para>
/// Work: a parallel loop over (group, block of <see cref="WinogradBlockRows"/> output channels) transforms the filters
/// (in float) into U[36][block][in], once per call, and packs each U[xi] for the GEMM's micro-kernel
/// (<see cref="Gemm.PackWhole"/>), in thread 0's <see cref="ScratchSlot.TransformedFilters"/> (about 4x the layer's
/// weights: 14 MiB for the canonical AlexNet's conv3); a forward pass given a <see cref="Conv2dWeightCache"/> keeps
/// them there instead, and transforms them again only when the weights have changed. Then one parallel loop over
/// independent items (group,
/// chunk of tiles spanning samples, and at small batches part of the output channels), like the im2col path's (sample,
/// group) items: an item transforms its chunk's input tiles into V[36][in][tiles]; then per block of output channels
/// it runs the 36 GEMMs M[xi] = U[xi] * V[xi] on the project's blocked GEMM single-threaded (a chunk of at most 16 tiles:
/// on 16-wide micro-kernels without packing, <see cref="NarrowProduct"/>), and the inverse transform
/// with bias and ReLU writes the output. Scratch: V and M of one item per thread, in the im2col path's
/// <see cref="ScratchSlot.Columns"/>; the chunks are as large as fits in the column matrix im2col would use for the
/// layer (at least <see cref="WinogradMinChunkTiles"/> tiles).
/// </para>
/// <para>
/// The input gradient of an R x R stride-1 convolution with padding p is itself one: dX = conv(dY, W') with
/// W'[c, oc] = W[oc, c] rotated by 180 degrees and padding R - 1 - p, which the same code computes with the filters
/// transformed transposed and flipped. The weight gradient uses the same matrices the other way round
/// (Conv2dKernels.WinogradWeight.cs).
/// </para>
/// </summary>
public static unsafe partial class Conv2dKernels
{
    /// <summary>
    /// Fewest samples for which <see cref="Conv2dAlgorithm.Auto"/> picks Winograd in a training step: at batch 1 it was
    /// slower than im2col + GEMM on every 3x3 layer of both AlexNets, forward and input gradient (a 13x13 image has 16
    /// tiles, half a GEMM panel, and the filters are transformed for one sample); batch 16 is the next size measured
    /// (docs/architecture.md). The weight gradient follows the same threshold. An inference pass starts lower
    /// (<see cref="WinogradMinInferenceBatch"/>).
    /// </summary>
    public const int WinogradMinBatch = 16;

    /// <summary>
    /// Fewest samples for which <see cref="Conv2dAlgorithm.Auto"/> runs an inference pass's forward convolution by
    /// Winograd (its transformed filters kept between calls in the weight cache) below <see cref="WinogradMinBatch"/>,
    /// where the batch has at least 16 output tiles a group (<see cref="NarrowTiles"/>); batch 1 too where AVX-512
    /// multiplies those tiles with 16-wide kernels (<see cref="NarrowProduct"/>). Measured (the bench's kernels
    /// command, two alternating runs each): at batches 1, 2, 4 and 8 it took less time than im2col + GEMM on
    /// torchvision's conv2-conv5, and at batch 2 on the canonical conv3-conv5, drawing level on the canonical conv2;
    /// FashionNet's 7x7 layers at batches 4 and 8 (16 and 32 tiles), but not at batch 1 (4 tiles).
    /// A training step keeps <see cref="WinogradMinBatch"/>: its forward pass also decides which ReLU outputs and pool
    /// windows pass the gradient, and Winograd's rounding moves enough of those decisions at batch 2 to put the
    /// canonical AlexNet's conv gradients 2e-3 (relative L2) from the CUDA backend's, over the tests' 1e-4. docs/architecture.md.
    /// </summary>
    public const int WinogradMinInferenceBatch = 2;

    /// <summary>
    /// Fewest input channels per group for which <see cref="Conv2dAlgorithm.Auto"/> picks Winograd. Measured: the 3x3
    /// layers of both AlexNets (128 to 384 per group at 13x13; in each of four runs of the bench's conv3x3 command at
    /// batch 16, summed over those six layers, 11-20% less time than im2col + GEMM forward and 2-12% less backward,
    /// single layers going either way between runs), and FashionNet's at batch 64 (`kernels --net fashion`, three
    /// alternating runs): its 7x7 layers of 64 input channels per group (to 128, 64 and 32 outputs) took 5-43% less
    /// time forward and backward in every run, its 14x14 layer of 32 inputs (to 64) was no faster. The same count sets
    /// where the gradients of 5x5 layers run Winograd (see <see cref="Winograd5x5MinInChannels"/>). docs/architecture.md.
    /// </summary>
    public const int WinogradMinInChannels = 64;

    /// <summary>Fewest output channels per group for which <see cref="Conv2dAlgorithm.Auto"/> picks Winograd (see <see cref="WinogradMinInChannels"/>).</summary>
    public const int WinogradMinOutChannels = 32;

    /// <summary>
    /// Fewest input channels per group for which <see cref="Conv2dAlgorithm.Auto"/> runs the forward pass of a 5x5 layer
    /// by Winograd F(2x2, 5x5) (with <see cref="WinogradMinOutChannels"/> and <see cref="WinogradMinBatch"/>). Measured
    /// at batch 16 (the bench's conv-pairs command, two runs of 100 alternating pairs): the canonical AlexNet's conv2
    /// (48 per group, to 128) took a median 0.66 and 0.67 of im2col + GEMM's time, torchvision's (64 to 192) 0.64 and
    /// 0.64. Narrower 5x5 layers were not measured. The gradients (both by Winograd) took 0.96 and 0.98 of im2col's
    /// time on the canonical conv2, within the noise, and 0.82 and 0.83 on torchvision's: they follow
    /// <see cref="WinogradMinInChannels"/>, which keeps the canonical conv2's on im2col.
    /// </summary>
    public const int Winograd5x5MinInChannels = 48;

    /// <summary>Output channels per block of the GEMM and output-transform phase (a multiple of <see cref="Gemm.MR"/>).</summary>
    internal const int WinogradBlockRows = 12;

    /// <summary>Most tiles in one chunk (a multiple of the 8 lanes of the transforms and of <see cref="Gemm.NR"/>).</summary>
    internal const int WinogradChunkTiles = 128;

    /// <summary>Fewest tiles in one chunk, unless the layer has fewer: one panel of the GEMM's micro-kernel (<see cref="Gemm.NR"/>).</summary>
    internal const int WinogradMinChunkTiles = Gemm.NR;

    private const int Lanes = 8; // tiles per Vector256 in the transforms

    /// <summary>The side of the output tile computed from a 6x6 input tile with R x R filters: 6 - R + 1 (4 for 3x3, 2 for 5x5).</summary>
    private static int WinogradTile(int r) => 6 - r + 1;

    /// <summary>
    /// Whether the forward pass of <paramref name="g"/> at <paramref name="batch"/> runs Winograd for <paramref name="algorithm"/>;
    /// <paramref name="cached"/>: its transformed filters are kept between calls (an inference pass's weight cache).
    /// </summary>
    internal static bool UsesWinogradForward(in Conv2dGeometry g, int batch, Conv2dAlgorithm algorithm, bool cached = false) =>
        UsesWinograd(g, batch, algorithm, WinogradPass.Forward, cached);

    /// <summary>Whether the input gradient of <paramref name="g"/> at <paramref name="batch"/> runs Winograd for <paramref name="algorithm"/>.</summary>
    internal static bool UsesWinogradData(in Conv2dGeometry g, int batch, Conv2dAlgorithm algorithm) =>
        UsesWinograd(g, batch, algorithm, WinogradPass.InputGradient);

    /// <summary>Whether the weight gradient of <paramref name="g"/> at <paramref name="batch"/> runs Winograd for <paramref name="algorithm"/> (Conv2dKernels.WinogradWeight.cs).</summary>
    internal static bool UsesWinogradWeight(in Conv2dGeometry g, int batch, Conv2dAlgorithm algorithm) =>
        UsesWinograd(g, batch, algorithm, WinogradPass.WeightGradient);

    private enum WinogradPass { Forward, InputGradient, WeightGradient }

    /// <summary>
    /// Whether <paramref name="batch"/> is enough for <see cref="Conv2dAlgorithm.Auto"/> to run <paramref name="pass"/> of
    /// <paramref name="g"/> by Winograd: <see cref="WinogradMinBatch"/>, or for an inference pass's forward convolution
    /// (<paramref name="cached"/>: the transformed filters kept between calls) 16 output tiles a group, from
    /// <see cref="WinogradMinInferenceBatch"/> samples or with the Vector512 micro-kernels.
    /// </summary>
    private static bool EnoughBatch(in Conv2dGeometry g, int batch, WinogradPass pass, bool cached)
    {
        if (batch >= WinogradMinBatch) return true;
        if (pass != WinogradPass.Forward || !cached) return false;
        long tiles = (long)batch * TilesPerSample(g.OutHeight, g.OutWidth, WinogradTile(g.KernelHeight));
        return tiles >= NarrowTiles && (batch >= WinogradMinInferenceBatch || Gemm.BestKernel == GemmKernel.Vector512);
    }

    private static bool UsesWinograd(in Conv2dGeometry g, int batch, Conv2dAlgorithm algorithm, WinogradPass pass, bool cached = false)
    {
        if (algorithm == Conv2dAlgorithm.Im2Col) return false;
        int r = g.KernelHeight;
        bool inputGradient = pass == WinogradPass.InputGradient;
        bool possible = (r == 3 || r == 5) && g.KernelWidth == r && g.StrideHeight == 1 && g.StrideWidth == 1
            && (!inputGradient || (g.PaddingHeight <= r - 1 && g.PaddingWidth <= r - 1));
        if (algorithm == Conv2dAlgorithm.Winograd)
        {
            if (!possible)
                throw new ArgumentException($"Conv2d: Winograd F(4x4, 3x3) and F(2x2, 5x5) need a 3x3 or 5x5 kernel at stride 1{(inputGradient ? " and padding at most 2 (3x3) or 4 (5x5) for the input gradient" : "")}; this is {g.KernelHeight}x{g.KernelWidth} at stride {g.StrideHeight}x{g.StrideWidth}, padding {g.PaddingHeight}x{g.PaddingWidth}.", nameof(algorithm));
            return true;
        }
        // 5x5 layers' forward pass from fewer input channels than their gradients (docs/architecture.md).
        int minInChannels = r == 5 && pass == WinogradPass.Forward ? Winograd5x5MinInChannels : WinogradMinInChannels;
        return possible && EnoughBatch(g, batch, pass, cached) && g.InChannels / g.Groups >= minInChannels
            && g.OutChannels / g.Groups >= WinogradMinOutChannels;
    }

    /// <summary>One Winograd convolution: the forward pass, or the input gradient (<see cref="Transposed"/>).</summary>
    private struct WinogradJob
    {
        // The convolution computed: per group Cin -> Cout channels, input [H, W], output [OH, OW], padding PH, PW;
        // F(M x M, R x R): R x R filters (3 or 5), M x M output tiles (4 or 2), 6 x 6 input tiles either way.
        public int R, M;
        public int Groups, Cin, Cout, H, W, OH, OW, PH, PW, TilesX, TilesPerSample;
        public long InputSample, OutputSample; // floats per sample, all groups
        public float* Input, Weight, Bias, Output;
        public bool Relu, Transposed;
        public CpuContext Ctx;
        public long TotalTiles; // per group: every sample's tiles
        // Work items: (group, chunk of ChunkTiles tiles, part of the output-channel blocks).
        public int ChunkTiles, Chunks, Blocks, Parts;
        // One chunk of at most NarrowTiles tiles, multiplied by NarrowProduct (Ld = NarrowTiles).
        public bool Narrow;
        // A work item's scratch: V[36][Cin][Ld], then M[36][WinogradBlockRows][Ld]; each of the 36 planes PlaneStride
        // apart (TileStride, ProductStride). Before the items, the same slot holds a block's U[36][WinogradBlockRows][Cin]
        // (planes FilterStride apart) between its transform and its packing.
        public int Ld;
        public long TileStride, FilterStride, ProductStride, ScratchFloats;
        // Every block's transformed filters, [group][block][36], each U[xi] (WinogradBlockRows x Cin) packed for the GEMM
        // (Gemm.PackWhole) PackedFilterFloats apart: transformed and packed once per call before the items, which share them
        // (or found in the forward pass's weight cache).
        public float* Filters;
        public long PackedFilterFloats;
    }

    /// <summary>
    /// The distance between two of the 36 planes of U, V or M: whole cache lines, and one more, so that the planes do
    /// not start at the same offset modulo 4 KiB (the 36 loads or stores of one tile would otherwise fall into the same
    /// L1 set and evict each other).
    /// </summary>
    private static long PlaneStride(long floats) => (floats + 15) / 16 * 16 + 16;

    /// <summary>Floats of one work item's scratch (V and M) for chunks of <paramref name="tiles"/> tiles, as the GEMM multiplies them (<see cref="ProductColumns"/>).</summary>
    private static long WinogradScratchFloats(int cin, int tiles)
    {
        int ld = ProductColumns(tiles);
        return 36 * (PlaneStride((long)cin * ld) + PlaneStride((long)WinogradBlockRows * ld));
    }

    /// <summary>
    /// Columns of the 36 products for a chunk of <paramref name="tiles"/> tiles: whole panels of the GEMM's micro-kernel.
    /// The columns past the chunk's tiles are zero in V, and their products are discarded; a ragged last panel would
    /// instead be packed again by every product (36 per block of output channels) and written through an edge tile,
    /// which took a tenth of conv2's time at batch 1 (196 tiles: chunks of 128 and 68).
    /// </summary>
    private static int ProductColumns(int tiles) => (tiles + Gemm.NR - 1) / Gemm.NR * Gemm.NR;

    private static void WinogradForward(in Conv2dGeometry g, int batch, float* input, float* weight, float* bias, float* output, bool relu, CpuContext ctx,
        Conv2dWeightCache? weightCache)
    {
        var job = new WinogradJob
        {
            R = g.KernelHeight, M = WinogradTile(g.KernelHeight),
            Groups = g.Groups, Cin = g.InChannels / g.Groups, Cout = g.OutChannels / g.Groups,
            H = g.InHeight, W = g.InWidth, OH = g.OutHeight, OW = g.OutWidth, PH = g.PaddingHeight, PW = g.PaddingWidth,
            InputSample = g.InputLength, OutputSample = g.OutputLength,
            Input = input, Weight = weight, Bias = bias, Output = output, Relu = relu, Ctx = ctx,
        };
        WinogradRun(ref job, batch, Im2ColFloats(g), g, weightCache);
    }

    /// <summary>dInput = conv(dOutput, W rotated and transposed), padding R - 1 - p; overwrites dInput.</summary>
    private static void WinogradData(in Conv2dGeometry g, int batch, float* weight, float* dOutput, float* dInput, CpuContext ctx)
    {
        var job = new WinogradJob
        {
            R = g.KernelHeight, M = WinogradTile(g.KernelHeight),
            Groups = g.Groups, Cin = g.OutChannels / g.Groups, Cout = g.InChannels / g.Groups,
            H = g.OutHeight, W = g.OutWidth, OH = g.InHeight, OW = g.InWidth,
            PH = g.KernelHeight - 1 - g.PaddingHeight, PW = g.KernelWidth - 1 - g.PaddingWidth,
            InputSample = g.OutputLength, OutputSample = g.InputLength,
            Input = dOutput, Weight = weight, Output = dInput, Transposed = true, Ctx = ctx,
        };
        WinogradRun(ref job, batch, Im2ColFloats(g), g, weightCache: null);
    }

    /// <summary>Floats of the im2col path's column matrix for one sample and group of <paramref name="g"/>.</summary>
    private static long Im2ColFloats(in Conv2dGeometry g) =>
        (long)(g.InChannels / g.Groups) * g.KernelHeight * g.KernelWidth * g.OutHeight * g.OutWidth;

    /// <summary>
    /// One parallel loop that transforms and packs the filters, then one over independent work items (group, chunk of
    /// tiles, part of the output channels): each transforms its chunk's input tiles into its thread's scratch, then per
    /// block of output channels runs the 36 GEMMs on the shared packed filters single-threaded and writes the output
    /// tiles. No item reads another's results,
    /// and every output element is computed by the same operations whatever the thread count (the chunks, blocks and
    /// GEMM shapes depend on the layer only), so the result is bit for bit the same on any number of threads.
    /// </summary>
    /// <param name="im2colFloats">The im2col path's column matrix of this layer: the chunks are as large as fits
    /// in that much scratch (the Winograd path uses the same slot), within 32 and <see cref="WinogradChunkTiles"/> tiles.</param>
    /// <param name="g">The convolution (its weights are <see cref="WinogradJob.Weight"/>).</param>
    /// <param name="weightCache">Where the forward pass's transformed filters are kept between calls, or null.</param>
    private static void WinogradRun(ref WinogradJob job, int batch, long im2colFloats, in Conv2dGeometry g, Conv2dWeightCache? weightCache)
    {
        CpuContext ctx = job.Ctx;
        CountTiles(ref job, batch);
        int chunk = WinogradMinChunkTiles;
        while (chunk < WinogradChunkTiles && WinogradScratchFloats(job.Cin, chunk + Gemm.NR) <= im2colFloats) chunk += Gemm.NR;
        chunk = (int)Math.Min(chunk, (job.TotalTiles + Lanes - 1) / Lanes * Lanes);
        job.ChunkTiles = chunk;
        job.Chunks = (int)((job.TotalTiles + chunk - 1) / chunk);
        job.Blocks = (job.Cout + WinogradBlockRows - 1) / WinogradBlockRows;
        // Fewer (group, chunk) items than threads (a small batch): split the output channels too.
        int items = job.Groups * job.Chunks;
        job.Parts = items >= ctx.Threads ? 1 : Math.Min(job.Blocks, (ctx.Threads + items - 1) / items);
        // One chunk of at most 16 tiles: rows of V and M 16 floats long, read and written by the 16-wide kernels.
        job.Narrow = job.Chunks == 1 && chunk <= NarrowTiles && Gemm.BestKernel == GemmKernel.Vector512;
        job.Ld = job.Narrow ? NarrowTiles : ProductColumns(chunk);
        job.TileStride = PlaneStride((long)job.Cin * job.Ld);
        job.FilterStride = PlaneStride((long)WinogradBlockRows * job.Cin);
        job.ProductStride = PlaneStride((long)WinogradBlockRows * job.Ld);
        job.ScratchFloats = 36 * (job.TileStride + job.ProductStride);
        job.PackedFilterFloats = (Gemm.PackedLength(WinogradBlockRows, job.Cin) + 15) / 16 * 16;
        // The filters first, once for the call, shared by every chunk; a block is transformed in its thread's column
        // scratch, then packed.
        long filterFloats = (long)job.Groups * job.Blocks * 36 * job.PackedFilterFloats;
        var weight = new ReadOnlySpan<float>(job.Weight, g.WeightLength);
        job.Filters = weightCache?.Find(PreparedWeightForm.Winograd, g, filterFloats, weight);
        if (job.Filters == null)
        {
            job.Filters = weightCache is null ? ctx.Scratch(0, ScratchSlot.TransformedFilters, filterFloats) : weightCache.Reserve(filterFloats);
            ctx.ReserveScratch(ScratchSlot.Columns, Math.Max(job.ScratchFloats, 36 * job.FilterStride));
            ctx.For(job.Groups * job.Blocks, &WinogradFilterBlock, Unsafe.AsPointer(ref job));
            weightCache?.Commit(PreparedWeightForm.Winograd, g, filterFloats, weight);
        }
        else
        {
            ctx.ReserveScratch(ScratchSlot.Columns, job.ScratchFloats);
        }
        Gemm.ReserveScratch(WinogradBlockRows, job.Ld, job.Cin, ctx);
        ctx.For(items * job.Parts, &WinogradItem, Unsafe.AsPointer(ref job));
        // The items read the cache's pinned buffer through a pointer: keep the cache reachable until they are done.
        GC.KeepAlive(weightCache);
    }

    /// <summary>The transformed filters of one (group, block of output channels), packed for the 36 GEMMs.</summary>
    private static void WinogradFilterBlock(void* state, int item, int threadIndex)
    {
        ref WinogradJob job = ref Unsafe.AsRef<WinogradJob>(state);
        int grp = item / job.Blocks, block = item % job.Blocks;
        int o0 = block * WinogradBlockRows, rows = Math.Min(WinogradBlockRows, job.Cout - o0);
        float* u = job.Ctx.Scratch(threadIndex, ScratchSlot.Columns, Math.Max(job.ScratchFloats, 36 * job.FilterStride));
        TransformFilters(ref job, grp, o0, rows, u);
        float* packed = job.Filters + (long)item * 36 * job.PackedFilterFloats;
        for (int xi = 0; xi < 36; xi++)
            Gemm.PackWhole(rows, job.Cin, u + xi * job.FilterStride, job.Cin, false, packed + xi * job.PackedFilterFloats);
    }

    private static void WinogradItem(void* state, int item, int threadIndex)
    {
        ref WinogradJob job = ref Unsafe.AsRef<WinogradJob>(state);
        int part = item % job.Parts, chunk = item / job.Parts % job.Chunks, grp = item / job.Parts / job.Chunks;
        float* v = job.Ctx.Scratch(threadIndex, ScratchSlot.Columns, job.ScratchFloats);
        float* m = v + 36 * job.TileStride;

        int* tileSample = stackalloc int[WinogradChunkTiles];
        int* tileY = stackalloc int[WinogradChunkTiles];
        int* tileX = stackalloc int[WinogradChunkTiles];
        ChunkTiles chunkTiles = TilesFrom(job, (long)chunk * job.ChunkTiles, job.ChunkTiles, tileSample, tileY, tileX);

        for (int i = 0; i < job.Cin; i++)
        {
            if (i + 2 < job.Cin) PrefetchChannel(ref job, chunkTiles, grp, i + 2);
            TransformInputChannel(ref job, chunkTiles, grp, i, v + (long)i * job.Ld);
        }
        // The products read whole rows of V (16 floats for NarrowProduct, whole panels otherwise) and the transform wrote
        // the chunk's tiles rounded up to 8: zeros in the rest, whose products are discarded (stale scratch could hold
        // denormals or NaNs, which the FMAs would be slowed by or carry for nothing).
        int written = (chunkTiles.Count + Lanes - 1) / Lanes * Lanes, columns = job.Narrow ? NarrowTiles : ProductColumns(chunkTiles.Count);
        if (written < columns)
        {
            for (int xi = 0; xi < 36; xi++)
                for (int i = 0; i < job.Cin; i++) new Span<float>(v + xi * job.TileStride + (long)i * job.Ld + written, columns - written).Clear();
        }

        int firstBlock = (int)((long)job.Blocks * part / job.Parts), endBlock = (int)((long)job.Blocks * (part + 1) / job.Parts);
        long packed = job.PackedFilterFloats;
        for (int block = firstBlock; block < endBlock; block++)
        {
            int o0 = block * WinogradBlockRows, rows = Math.Min(WinogradBlockRows, job.Cout - o0);
            float* u = job.Filters + ((long)grp * job.Blocks + block) * 36 * packed;
            // Each product asks for the next one's filters (the next block's follow this one's 36): in an inference pass
            // they come from memory, the dense layers' weights having evicted them since the last pass.
            bool lastBlock = block + 1 == endBlock;
            for (int xi = 0; xi < 36; xi++)
            {
                if (xi < 35 || !lastBlock) Gemm.PrefetchRun(u + (xi + 1) * packed, (int)packed);
                if (job.Narrow)
                    NarrowProduct(rows, job.Cin, u + xi * packed, v + xi * job.TileStride, m + xi * job.ProductStride);
                else
                    Gemm.MultiplyPacked(rows, columns, job.Cin, u + xi * packed, v + xi * job.TileStride, job.Ld, false,
                        m + xi * job.ProductStride, job.Ld, false, GemmEpilogue.None, job.Ctx, threadIndex);
            }
            TransformOutput(ref job, chunkTiles, grp, o0, rows, m);
        }
    }

    /// <summary>Asks for channel i's input planes of the chunk's samples ahead of their transform.</summary>
    private static void PrefetchChannel(ref WinogradJob job, in ChunkTiles tiles, int grp, int i)
    {
        if (tiles.Count == 0) return;
        int plane = job.H * job.W;
        for (int n = tiles.Sample[0], last = tiles.Sample[tiles.Count - 1]; n <= last; n++)
            Gemm.PrefetchRun(job.Input + n * job.InputSample + (long)(grp * job.Cin + i) * plane, plane);
    }

    /// <summary>Most tiles of a chunk that <see cref="NarrowProduct"/> multiplies: its rows of V and M are this long.</summary>
    private const int NarrowTiles = 16;

    /// <summary>
    /// M[rows x 16] = U[rows x k] V[k x 16] for a chunk of at most 16 tiles, V's rows contiguous and 16 floats long (as the
    /// GEMM would pack them): no packing, and 16-wide micro-kernels instead of the 32-wide one's half-empty panels. U is
    /// packed by <see cref="Gemm.PackWhole"/> (blocks of <see cref="Gemm.KC"/> along k, slivers of <see cref="Gemm.MR"/>
    /// rows, the last zero-padded). Every output is the same FMAs in the same order as in <see cref="Gemm.MultiplyPacked"/>,
    /// so the same bits as a wider chunk's. Writes whole slivers: up to <see cref="WinogradBlockRows"/> rows of M.
    /// </summary>
    private static void NarrowProduct(int rows, int k, float* packedU, float* v, float* m)
    {
        int paddedRows = (rows + Gemm.MR - 1) / Gemm.MR * Gemm.MR;
        for (int pc = 0; pc < k; pc += Gemm.KC)
        {
            int kc = Math.Min(Gemm.KC, k - pc);
            float* block = packedU + (long)paddedRows * pc;
            float* vRows = v + (long)pc * NarrowTiles;
            if (rows > Gemm.MR) MicroKernels.Kernel12x16Vector512(kc, block, block + Gemm.MR * kc, vRows, m, NarrowTiles, pc > 0);
            else MicroKernels.Kernel6x16Vector512(kc, block, vRows, m, NarrowTiles, pc > 0);
        }
    }

    /// <summary>The tiles of one chunk: count, and per tile its sample and the top-left corner of its output tile.</summary>
    private struct ChunkTiles
    {
        public int Count;
        public int* Sample, Y, X;
    }

    /// <summary>M x M output tiles covering an <paramref name="outHeight"/> x <paramref name="outWidth"/> plane, the last row and column of them possibly partial.</summary>
    private static int TilesPerSample(int outHeight, int outWidth, int m) => (outHeight + m - 1) / m * ((outWidth + m - 1) / m);

    /// <summary>Tiles across and per sample of the output plane, and in the whole batch.</summary>
    private static void CountTiles(ref WinogradJob job, int batch)
    {
        job.TilesX = (job.OW + job.M - 1) / job.M;
        job.TilesPerSample = TilesPerSample(job.OH, job.OW, job.M);
        job.TotalTiles = (long)batch * job.TilesPerSample;
    }

    /// <summary>
    /// The chunk of at most <paramref name="maxTiles"/> tiles from tile <paramref name="first"/> of the batch: per tile its
    /// sample and the top-left corner of its output tile, written to the given arrays (no divisions in the inner loops).
    /// </summary>
    private static ChunkTiles TilesFrom(in WinogradJob job, long first, int maxTiles, int* sample, int* y, int* x)
    {
        int count = (int)Math.Min(maxTiles, job.TotalTiles - first);
        for (int t = 0; t < count; t++)
        {
            long tile = first + t;
            int r = (int)(tile % job.TilesPerSample);
            sample[t] = (int)(tile / job.TilesPerSample);
            y[t] = r / job.TilesX * job.M;
            x[t] = r % job.TilesX * job.M;
        }
        return new ChunkTiles { Count = count, Sample = sample, Y = y, X = x };
    }

    /// <summary>
    /// U[xi][r][i] = (G g G^T)[xi] for output channels o0 + r, r &lt; <paramref name="rows"/>, of group
    /// <paramref name="grp"/> and every input channel i, in float, eight input channels at a time (one per lane). g is
    /// W[o, i] (forward) or W[i, o] rotated by 180 degrees (input gradient). The taps are gathered straight into vectors
    /// where AVX2 allows.
    /// </summary>
    private static void TransformFilters(ref WinogradJob job, int grp, int o0, int rows, float* uBlock)
    {
        long plane = job.FilterStride;
        int side = job.R, area = side * side;
        float* taps = stackalloc float[25 * Lanes]; // taps[k * 8 + lane]: tap k of the lane's filter
        Vector256<float>* f = stackalloc Vector256<float>[25];
        Vector256<float>* gf = stackalloc Vector256<float>[30]; // G f: 6 x R
        Vector256<float>* t = stackalloc Vector256<float>[36];  // G f G^T: 6 x 6
        // Floats from one input channel's filter to the next's, and from tap k's offset to tap 0's.
        long channelStride = job.Transposed ? (long)job.Cout * area : area;
        Vector256<int> laneOffsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * Vector256.Create((int)channelStride);
        bool gather = Avx2.IsSupported && (long)Lanes * channelStride < int.MaxValue;
        for (int r = 0; r < rows; r++)
        {
            int o = o0 + r;
            float* u = uBlock + (long)r * job.Cin;
            // Tap 0 of input channel 0's filter.
            float* first = job.Transposed
                ? job.Weight + ((long)grp * job.Cin * job.Cout + o) * area
                : job.Weight + ((long)grp * job.Cout + o) * job.Cin * area;
            for (int i0 = 0; i0 < job.Cin; i0 += Lanes)
            {
                int count = Math.Min(Lanes, job.Cin - i0);
                float* src = first + i0 * channelStride;
                if (count == Lanes && gather)
                {
                    for (int k = 0; k < area; k++)
                        f[k] = Avx2.GatherVector256(src + (job.Transposed ? area - 1 - k : k), laneOffsets, 4);
                }
                else
                {
                    if (count < Lanes) new Span<float>(taps, area * Lanes).Clear();
                    for (int lane = 0; lane < count; lane++)
                    {
                        float* filter = src + lane * channelStride;
                        for (int k = 0; k < area; k++) taps[k * Lanes + lane] = filter[job.Transposed ? area - 1 - k : k];
                    }
                    for (int k = 0; k < area; k++) f[k] = Vector256.Load(taps + k * Lanes);
                }
                // G f: on each column (stride R) into 6 rows; then (G f) G^T: on each of the 6 rows.
                for (int col = 0; col < side; col++) FilterTransform(f + col, side, gf + col, side, side);
                for (int row = 0; row < 6; row++) FilterTransform(gf + row * side, 1, t + row * 6, 1, side);
                if (count == Lanes)
                {
                    for (int k = 0; k < 36; k++) t[k].Store(u + k * plane + i0);
                }
                else
                {
                    for (int k = 0; k < 36; k++)
                    {
                        t[k].Store(taps);
                        for (int lane = 0; lane < count; lane++) u[k * plane + i0 + lane] = taps[lane];
                    }
                }
            }
        }
    }

    /// <summary>G times the R-vector x[0], x[s], ..., x[(R - 1) s], written to dst[0], dst[stride], ... dst[5 * stride].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FilterTransform(Vector256<float>* x, int s, Vector256<float>* dst, int stride, int r)
    {
        if (r == 3) FilterColumn3(x[0], x[s], x[2 * s], dst, stride);
        else FilterColumn5(x[0], x[s], x[2 * s], x[3 * s], x[4 * s], dst, stride);
    }

    /// <summary>F(4x4, 3x3)'s G times the 3-vector (a, b, c), written to dst[0], dst[stride], ... dst[5 * stride].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FilterColumn3(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float>* dst, int stride)
    {
        Vector256<float> sixth = Vector256.Create(1f / 6), twelfth = Vector256.Create(1f / 12), twentyFourth = Vector256.Create(1f / 24);
        Vector256<float> ac = a + c;
        dst[0] = Vector256.Create(0.25f) * a;
        dst[stride] = -sixth * (ac + b);
        dst[2 * stride] = -sixth * (ac - b);
        dst[3 * stride] = twentyFourth * a + twelfth * b + sixth * c;
        dst[4 * stride] = twentyFourth * a - twelfth * b + sixth * c;
        dst[5 * stride] = c;
    }

    /// <summary>F(2x2, 5x5)'s G times the 5-vector (a, b, c, d, e), written to dst[0], dst[stride], ... dst[5 * stride].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FilterColumn5(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d, Vector256<float> e,
        Vector256<float>* dst, int stride)
    {
        Vector256<float> sixth = Vector256.Create(1f / 6);
        Vector256<float> even = a + c + e, odd = b + d;
        Vector256<float> even2 = Vector256.Create(1f / 24) * a + sixth * c + Vector256.Create(2f / 3) * e;
        Vector256<float> odd2 = Vector256.Create(1f / 12) * b + Vector256.Create(1f / 3) * d;
        dst[0] = Vector256.Create(0.25f) * a;
        dst[stride] = -sixth * (even + odd);
        dst[2 * stride] = -sixth * (even - odd);
        dst[3 * stride] = even2 + odd2;
        dst[4 * stride] = even2 - odd2;
        dst[5 * stride] = e;
    }

    /// <summary>
    /// V[xi][t] = (B^T d B)[xi] for input channel <paramref name="i"/> of group <paramref name="grp"/> and every tile t
    /// of the chunk, 8 tiles at a time, into <paramref name="v"/> (planes <see cref="WinogradJob.TileStride"/> apart);
    /// the lanes past the last tile are zero.
    /// </summary>
    private static void TransformInputChannel(ref WinogradJob job, in ChunkTiles tiles, int grp, int i, float* v)
    {
        int h = job.H, w = job.W;
        long channelOffset = (long)(grp * job.Cin + i) * h * w;
        long xiStride = job.TileStride;
        float* stage = stackalloc float[36 * Lanes];
        Vector256<float>* d = stackalloc Vector256<float>[36];
        bool gather = CanGatherTiles();
        for (int t0 = 0; t0 < tiles.Count; t0 += Lanes)
        {
            int lanes = Math.Min(Lanes, tiles.Count - t0);
            if (gather && lanes == Lanes)
                GatherTiles(job.Input + tiles.Sample[t0] * job.InputSample + channelOffset, tiles, t0, job.InputSample,
                    -job.PH, -job.PW, h, w, 6, d);
            else ReadInputTiles(ref job, tiles, t0, lanes, channelOffset, stage, d);
            TransformInputTile(d, v + t0, xiStride);
        }
    }

    /// <summary>
    /// <see cref="GatherTiles"/>'s 6x6 input windows read element by element through <paramref name="stage"/>, for a
    /// last group of fewer than 8 tiles (the lanes past it zero) and for machines without AVX2.
    /// </summary>
    private static void ReadInputTiles(ref WinogradJob job, in ChunkTiles tiles, int t0, int lanes, long channelOffset, float* stage,
        Vector256<float>* d)
    {
        int h = job.H, w = job.W;
        if (lanes < Lanes) new Span<float>(stage, 36 * Lanes).Clear();
        for (int lane = 0; lane < lanes; lane++)
        {
            int tile = t0 + lane;
            int y0 = tiles.Y[tile] - job.PH, x0 = tiles.X[tile] - job.PW;
            float* plane = job.Input + tiles.Sample[tile] * job.InputSample + channelOffset;
            for (int row = 0; row < 6; row++)
            {
                int y = y0 + row;
                float* dst = stage + row * 6 * Lanes + lane;
                if ((uint)y >= (uint)h)
                {
                    for (int col = 0; col < 6; col++) dst[col * Lanes] = 0f;
                    continue;
                }
                float* src = plane + (long)y * w;
                if (x0 >= 0 && x0 + 6 <= w)
                {
                    for (int col = 0; col < 6; col++) dst[col * Lanes] = src[x0 + col];
                }
                else
                {
                    for (int col = 0; col < 6; col++)
                    {
                        int x = x0 + col;
                        dst[col * Lanes] = (uint)x < (uint)w ? src[x] : 0f;
                    }
                }
            }
        }
        for (int k = 0; k < 36; k++) d[k] = Vector256.Load(stage + k * Lanes);
    }

    /// <summary>Whether <see cref="GatherTiles"/> can run: AVX2 (its masked loads and integer compares).</summary>
    private static bool CanGatherTiles() => Avx2.IsSupported;

    /// <summary>
    /// d[row * 6 + col] for row, col &lt; <paramref name="size"/> = element (row, col) of the size x size windows of tiles
    /// t0 .. t0 + 7 (one per lane), each window's top-left corner at its tile's corner plus (<paramref name="dy"/>,
    /// <paramref name="dx"/>) in an h x w plane, zero outside the plane; <paramref name="first"/> is the plane of tile t0's
    /// sample, <paramref name="sampleFloats"/> apart per sample. Row by row of the windows: each tile's row is one masked
    /// load (the columns outside the plane, and past the window, not read; see <see cref="WindowRow"/>), and an 8x8 transpose turns
    /// the eight tiles' rows into one vector per column, where an AVX2 gather per element used to read them. The
    /// same values as reading the elements one by one: the transforms that follow give the same bits either way.
    /// </summary>
    private static void GatherTiles(float* first, in ChunkTiles tiles, int t0, long sampleFloats, int dy, int dx, int h, int w,
        int size, Vector256<float>* d)
    {
        // Per tile: its window's top-left element (perhaps outside the plane), its first row, and the columns inside.
        float** corner = stackalloc float*[Lanes];
        int* top = stackalloc int[Lanes], left = stackalloc int[Lanes];
        Vector256<float>* columns = stackalloc Vector256<float>[Lanes];
        Vector256<int> lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        Vector256<int> window = Vector256.LessThan(lane, Vector256.Create(size)), width = Vector256.Create(w);
        for (int t = 0; t < Lanes; t++)
        {
            int tile = t0 + t, y0 = tiles.Y[tile] + dy, x0 = tiles.X[tile] + dx;
            top[t] = y0;
            left[t] = x0;
            corner[t] = first + (tiles.Sample[tile] - tiles.Sample[t0]) * sampleFloats + (long)y0 * w + x0;
            Vector256<int> x = lane + Vector256.Create(x0);
            columns[t] = (window & Vector256.GreaterThanOrEqual(x, Vector256<int>.Zero) & Vector256.LessThan(x, width)).AsSingle();
        }
        for (int row = 0; row < size; row++)
        {
            Vector256<float> r0 = WindowRow(corner[0], top[0], left[0], columns[0], row, h, w), r1 = WindowRow(corner[1], top[1], left[1], columns[1], row, h, w);
            Vector256<float> r2 = WindowRow(corner[2], top[2], left[2], columns[2], row, h, w), r3 = WindowRow(corner[3], top[3], left[3], columns[3], row, h, w);
            Vector256<float> r4 = WindowRow(corner[4], top[4], left[4], columns[4], row, h, w), r5 = WindowRow(corner[5], top[5], left[5], columns[5], row, h, w);
            Vector256<float> r6 = WindowRow(corner[6], top[6], left[6], columns[6], row, h, w), r7 = WindowRow(corner[7], top[7], left[7], columns[7], row, h, w);
            Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
            Vector256<float>* to = d + row * 6;
            to[0] = r0;
            if (size > 1) to[1] = r1;
            if (size > 2) to[2] = r2;
            if (size > 3) to[3] = r3;
            if (size > 4) to[4] = r4;
            if (size > 5) to[5] = r5;
        }
    }

    /// <summary>
    /// Row <paramref name="row"/> of a window whose first row is plane row <paramref name="top"/>: its columns inside
    /// the plane, zero elsewhere. The masked-off lanes may lie outside the tensor (the padding before the first column,
    /// past the last): AVX-512's masked load never touches them; AVX's may, on AMD ("implementation dependent" in its
    /// manual), so without AVX-512 a row that reaches past the plane's row is read element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WindowRow(float* corner, int top, int left, Vector256<float> columns, int row, int h, int w)
    {
        if ((uint)(top + row) >= (uint)h) return Vector256<float>.Zero;
        float* from = corner + (long)row * w;
        if (Avx512F.VL.IsSupported) return Avx512F.VL.MaskLoad(from, columns, Vector256<float>.Zero);
        if (left >= 0 && left + Lanes <= w) return Avx.MaskLoad(from, columns);
        return Vector256.Create(Masked(from, columns, 0), Masked(from, columns, 1), Masked(from, columns, 2), Masked(from, columns, 3),
            Masked(from, columns, 4), Masked(from, columns, 5), Masked(from, columns, 6), Masked(from, columns, 7));
    }

    /// <summary>from[lane] where the mask's lane is set, else 0 (and from[lane] not read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Masked(float* from, Vector256<float> mask, int lane) => mask.AsInt32().GetElement(lane) != 0 ? from[lane] : 0f;

    /// <summary>Transposes the 8x8 block whose rows are r0 .. r7 in place (afterwards rK's lane i is the old ri's lane K).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
        ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1), t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5), t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE), u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE), u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(u0, u4, 0x20); r1 = Avx.Permute2x128(u1, u5, 0x20); r2 = Avx.Permute2x128(u2, u6, 0x20); r3 = Avx.Permute2x128(u3, u7, 0x20);
        r4 = Avx.Permute2x128(u0, u4, 0x31); r5 = Avx.Permute2x128(u1, u5, 0x31); r6 = Avx.Permute2x128(u2, u6, 0x31); r7 = Avx.Permute2x128(u3, u7, 0x31);
    }

    /// <summary>
    /// V = B^T d B for eight tiles (one per lane) from their 6x6 windows d[6 row + column], written to
    /// v[k <paramref name="stride"/>], k = 6 row + column: <see cref="Transform6"/> on each of d's columns, then on each
    /// row of the result, in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransformInputTile(Vector256<float>* d, float* v, long stride)
    {
        Transform6(d[0], d[6], d[12], d[18], d[24], d[30], out var r0c0, out var r1c0, out var r2c0, out var r3c0, out var r4c0, out var r5c0);
        Transform6(d[1], d[7], d[13], d[19], d[25], d[31], out var r0c1, out var r1c1, out var r2c1, out var r3c1, out var r4c1, out var r5c1);
        Transform6(d[2], d[8], d[14], d[20], d[26], d[32], out var r0c2, out var r1c2, out var r2c2, out var r3c2, out var r4c2, out var r5c2);
        Transform6(d[3], d[9], d[15], d[21], d[27], d[33], out var r0c3, out var r1c3, out var r2c3, out var r3c3, out var r4c3, out var r5c3);
        Transform6(d[4], d[10], d[16], d[22], d[28], d[34], out var r0c4, out var r1c4, out var r2c4, out var r3c4, out var r4c4, out var r5c4);
        Transform6(d[5], d[11], d[17], d[23], d[29], d[35], out var r0c5, out var r1c5, out var r2c5, out var r3c5, out var r4c5, out var r5c5);
        TransformRowInto(r0c0, r0c1, r0c2, r0c3, r0c4, r0c5, v, stride);
        TransformRowInto(r1c0, r1c1, r1c2, r1c3, r1c4, r1c5, v + 6 * stride, stride);
        TransformRowInto(r2c0, r2c1, r2c2, r2c3, r2c4, r2c5, v + 12 * stride, stride);
        TransformRowInto(r3c0, r3c1, r3c2, r3c3, r3c4, r3c5, v + 18 * stride, stride);
        TransformRowInto(r4c0, r4c1, r4c2, r4c3, r4c4, r4c5, v + 24 * stride, stride);
        TransformRowInto(r5c0, r5c1, r5c2, r5c3, r5c4, r5c5, v + 30 * stride, stride);
    }

    /// <summary>A row of B^T d times B, its six values written <paramref name="stride"/> apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransformRowInto(Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3, Vector256<float> d4, Vector256<float> d5,
        float* v, long stride)
    {
        Transform6(d0, d1, d2, d3, d4, d5, out var x0, out var x1, out var x2, out var x3, out var x4, out var x5);
        x0.Store(v);
        x1.Store(v + stride);
        x2.Store(v + 2 * stride);
        x3.Store(v + 3 * stride);
        x4.Store(v + 4 * stride);
        x5.Store(v + 5 * stride);
    }

    /// <summary>F(4x4, 3x3)'s and F(2x2, 5x5)'s B^T times the 6 vectors d0 to d5 (the same interpolation points).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transform6(Vector256<float> d0, Vector256<float> d1, Vector256<float> d2, Vector256<float> d3, Vector256<float> d4, Vector256<float> d5,
        out Vector256<float> x0, out Vector256<float> x1, out Vector256<float> x2, out Vector256<float> x3, out Vector256<float> x4, out Vector256<float> x5)
    {
        Vector256<float> four = Vector256.Create(4f), five = Vector256.Create(5f), two = Vector256.Create(2f);
        Vector256<float> a = d4 - d2, b = d3 - d1; // shared terms of rows 1-4
        x0 = four * d0 - five * d2 + d4;
        x1 = d4 + d3 - four * (d1 + d2);
        x2 = d4 - d3 + four * (d1 - d2);
        x3 = a + two * b;
        x4 = a - two * b;
        x5 = four * d1 - five * d3 + d5;
    }

    /// <summary>
    /// Y = A^T M A + bias (ReLU) for output channels o0 + r, r &lt; <paramref name="rows"/>, of group
    /// <paramref name="grp"/>, from the chunk's products <paramref name="m"/>, scattered to the output tiles.
    /// </summary>
    private static void TransformOutput(ref WinogradJob job, in ChunkTiles tiles, int grp, int o0, int rows, float* m)
    {
        long rowsStride = job.ProductStride;
        int side = job.M;
        Vector256<float>* t = stackalloc Vector256<float>[36];
        // Per 4x4 tile of the group, its outputs in row-major order: values 0-7 in tileValues[lane], 8-15 in
        // tileValues[8 + lane].
        Vector256<float>* tileValues = stackalloc Vector256<float>[2 * Lanes];
        Vector256<float>* outputs = stackalloc Vector256<float>[16];
        // Where each tile's outputs start in a channel of the batch, and whether the tile lies whole in the plane: found
        // once for the block, not once per channel.
        long* start = stackalloc long[WinogradChunkTiles];
        bool* whole = stackalloc bool[WinogradChunkTiles];
        for (int tile = 0; tile < tiles.Count; tile++)
        {
            int y0 = tiles.Y[tile], x0 = tiles.X[tile];
            start[tile] = tiles.Sample[tile] * job.OutputSample + (long)y0 * job.OW + x0;
            whole[tile] = y0 + side <= job.OH && x0 + side <= job.OW;
        }
        // Per group of eight tiles: whether they are whole 2x2 tiles side by side along one row of the plane. Their
        // outputs are then two runs of 16 floats, interleaved from two vectors each (F(2x2, 5x5): conv2's 27x27 plane
        // has 14 tiles across, so 3 groups in 7).
        bool* sideBySide = stackalloc bool[WinogradChunkTiles / Lanes];
        // Otherwise the two rows of their outputs are put side by side here first (16 floats a row).
        float* pairRows = stackalloc float[4 * Lanes];
        for (int t0 = 0; t0 < tiles.Count; t0 += Lanes)
        {
            bool run = side == 2 && t0 + Lanes <= tiles.Count;
            for (int lane = 0; run && lane < Lanes; lane++)
            {
                int tile = t0 + lane;
                run = whole[tile] && tiles.Sample[tile] == tiles.Sample[t0] && tiles.Y[tile] == tiles.Y[t0] && tiles.X[tile] == tiles.X[t0] + side * lane;
            }
            sideBySide[t0 / Lanes] = run;
        }
        for (int o = 0; o < rows; o++)
        {
            int channel = grp * job.Cout + o0 + o;
            var bias = Vector256.Create(job.Bias == null ? 0f : job.Bias[channel]);
            float* channelOutput = job.Output + (long)channel * job.OH * job.OW;
            float* mo = m + (long)o * job.Ld;
            for (int t0 = 0; t0 < tiles.Count; t0 += Lanes)
            {
                // A^T M A, one tile per lane, in registers.
                if (side == 2)
                {
                    OutputTile2(mo + t0, rowsStride, out Vector256<float> y00, out Vector256<float> y01, out Vector256<float> y10, out Vector256<float> y11);
                    // Lane l: tile l's two outputs of a row, side by side at 2l and 2l + 1 of 16 floats.
                    if (sideBySide[t0 / Lanes])
                    {
                        float* dst = channelOutput + start[t0];
                        StoreInterleaved(OutputValue(y00, bias, job.Relu), OutputValue(y01, bias, job.Relu), dst);
                        StoreInterleaved(OutputValue(y10, bias, job.Relu), OutputValue(y11, bias, job.Relu), dst + job.OW);
                        continue;
                    }
                    StoreInterleaved(OutputValue(y00, bias, job.Relu), OutputValue(y01, bias, job.Relu), pairRows);
                    StoreInterleaved(OutputValue(y10, bias, job.Relu), OutputValue(y11, bias, job.Relu), pairRows + 2 * Lanes);
                    for (int lane = 0, lanes = Math.Min(Lanes, tiles.Count - t0); lane < lanes; lane++)
                    {
                        int tile = t0 + lane;
                        float* dst = channelOutput + start[tile], values = pairRows + 2 * lane;
                        if (whole[tile])
                        {
                            Unsafe.WriteUnaligned(dst, Unsafe.ReadUnaligned<long>(values));
                            Unsafe.WriteUnaligned(dst + job.OW, Unsafe.ReadUnaligned<long>(values + 2 * Lanes));
                            continue;
                        }
                        int height = Math.Min(2, job.OH - tiles.Y[tile]), width = Math.Min(2, job.OW - tiles.X[tile]);
                        for (int row = 0; row < height; row++)
                            for (int col = 0; col < width; col++) dst[row * job.OW + col] = values[row * 2 * Lanes + col];
                    }
                    continue;
                }
                // 4x4 tiles. Lane l of each vector is tile l's output; transposed, a tile's outputs lie side by side, so
                // that each of its rows is one store instead of a scalar store per output.
                OutputTile4(mo + t0, rowsStride, t);
                TileOutputs(t, bias, job.Relu, outputs, tileValues);
                for (int lane = 0, lanes = Math.Min(Lanes, tiles.Count - t0); lane < lanes; lane++)
                {
                    int tile = t0 + lane;
                    float* dst = channelOutput + start[tile];
                    // Rows 0 and 1 of the tile in tileValues[lane], rows 2 and 3 eight vectors on.
                    float* values = (float*)(tileValues + lane);
                    if (whole[tile])
                    {
                        Vector128.Load(values).Store(dst);
                        Vector128.Load(values + 4).Store(dst + job.OW);
                        Vector128.Load(values + 8 * Lanes).Store(dst + 2 * job.OW);
                        Vector128.Load(values + 8 * Lanes + 4).Store(dst + 3 * job.OW);
                        continue;
                    }
                    int height = Math.Min(4, job.OH - tiles.Y[tile]), width = Math.Min(4, job.OW - tiles.X[tile]);
                    for (int row = 0; row < height; row++, dst += job.OW)
                    {
                        float* src = values + (row >> 1) * 8 * Lanes + (row & 1) * 4;
                        for (int col = 0; col < width; col++) dst[col] = src[col];
                    }
                }
            }
        }
    }

    /// <summary>dst[2l] = left[l], dst[2l + 1] = right[l] for the eight lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreInterleaved(Vector256<float> left, Vector256<float> right, float* dst)
    {
        if (!Avx.IsSupported)
        {
            for (int lane = 0; lane < Lanes; lane++)
            {
                dst[2 * lane] = left.GetElement(lane);
                dst[2 * lane + 1] = right.GetElement(lane);
            }
            return;
        }
        Vector256<float> low = Avx.UnpackLow(left, right), high = Avx.UnpackHigh(left, right);
        Avx.Permute2x128(low, high, 0x20).Store(dst);
        Avx.Permute2x128(low, high, 0x31).Store(dst + Lanes);
    }

    /// <summary>One output of each lane's tile: the transformed product plus the bias, ReLU where the layer has it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> OutputValue(Vector256<float> product, Vector256<float> bias, bool relu)
    {
        Vector256<float> value = product + bias;
        return relu ? Vector256.Max(value, Vector256<float>.Zero) : value;
    }

    /// <summary>
    /// The 4x4 outputs of eight tiles (t[row * 6 + col], one tile per lane) plus the bias (and ReLU), transposed by tile:
    /// tileValues[lane] holds tile lane's outputs 0-7 in row-major order, tileValues[8 + lane] its outputs 8-15.
    /// <paramref name="y"/>: room for 16 vectors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TileOutputs(Vector256<float>* t, Vector256<float> bias, bool relu, Vector256<float>* y, Vector256<float>* tileValues)
    {
        for (int row = 0; row < 4; row++)
            for (int col = 0; col < 4; col++)
                y[row * 4 + col] = OutputValue(t[row * 6 + col], bias, relu);
        for (int half = 0; half < 16; half += 8)
        {
            Vector256<float>* yh = y + half;
            Vector256<float> r0 = yh[0], r1 = yh[1], r2 = yh[2], r3 = yh[3], r4 = yh[4], r5 = yh[5], r6 = yh[6], r7 = yh[7];
            Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
            Vector256<float>* to = tileValues + half;
            to[0] = r0; to[1] = r1; to[2] = r2; to[3] = r3; to[4] = r4; to[5] = r5; to[6] = r6; to[7] = r7;
        }
    }

    /// <summary>F(2x2, 5x5)'s A^T times the 6 vectors m0 to m5.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transform2(Vector256<float> m0, Vector256<float> m1, Vector256<float> m2, Vector256<float> m3, Vector256<float> m4, Vector256<float> m5,
        out Vector256<float> y0, out Vector256<float> y1)
    {
        y0 = m0 + (m1 + m2) + (m3 + m4);
        y1 = (m1 - m2) + Vector256.Create(2f) * (m3 - m4) + m5;
    }

    /// <summary>F(4x4, 3x3)'s A^T times the 6 vectors m0 to m5.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transform4(Vector256<float> m0, Vector256<float> m1, Vector256<float> m2, Vector256<float> m3, Vector256<float> m4, Vector256<float> m5,
        out Vector256<float> y0, out Vector256<float> y1, out Vector256<float> y2, out Vector256<float> y3)
    {
        Vector256<float> sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4;
        y0 = m0 + sum12 + sum34;
        y1 = diff12 + Vector256.Create(2f) * diff34;
        y2 = sum12 + Vector256.Create(4f) * sum34;
        y3 = diff12 + Vector256.Create(8f) * diff34 + m5;
    }

    /// <summary>
    /// Y = A^T M A of F(2x2, 5x5) for eight tiles (one per lane) from their products, plane k = 6 row + column of M at
    /// <paramref name="m"/> + k <paramref name="stride"/>, in registers: <see cref="Transform2"/> on each of M's columns,
    /// then on the two rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputTile2(float* m, long stride, out Vector256<float> y00, out Vector256<float> y01, out Vector256<float> y10, out Vector256<float> y11)
    {
        ColumnOfTile2(m, stride, out Vector256<float> a0, out Vector256<float> b0);
        ColumnOfTile2(m + stride, stride, out Vector256<float> a1, out Vector256<float> b1);
        ColumnOfTile2(m + 2 * stride, stride, out Vector256<float> a2, out Vector256<float> b2);
        ColumnOfTile2(m + 3 * stride, stride, out Vector256<float> a3, out Vector256<float> b3);
        ColumnOfTile2(m + 4 * stride, stride, out Vector256<float> a4, out Vector256<float> b4);
        ColumnOfTile2(m + 5 * stride, stride, out Vector256<float> a5, out Vector256<float> b5);
        Transform2(a0, a1, a2, a3, a4, a5, out y00, out y01);
        Transform2(b0, b1, b2, b3, b4, b5, out y10, out y11);
    }

    /// <summary>A^T times the column of M whose first plane is at <paramref name="m"/> (its rows 6 planes apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnOfTile2(float* m, long stride, out Vector256<float> top, out Vector256<float> bottom) =>
        Transform2(Vector256.Load(m), Vector256.Load(m + 6 * stride), Vector256.Load(m + 12 * stride), Vector256.Load(m + 18 * stride),
            Vector256.Load(m + 24 * stride), Vector256.Load(m + 30 * stride), out top, out bottom);

    /// <summary>
    /// Y = A^T M A of F(4x4, 3x3) for eight tiles, as <see cref="OutputTile2"/>: written to y[6 row + column], row and
    /// column below 4.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputTile4(float* m, long stride, Vector256<float>* y)
    {
        ColumnOfTile4(m, stride, out Vector256<float> a0, out Vector256<float> b0, out Vector256<float> c0, out Vector256<float> d0);
        ColumnOfTile4(m + stride, stride, out Vector256<float> a1, out Vector256<float> b1, out Vector256<float> c1, out Vector256<float> d1);
        ColumnOfTile4(m + 2 * stride, stride, out Vector256<float> a2, out Vector256<float> b2, out Vector256<float> c2, out Vector256<float> d2);
        ColumnOfTile4(m + 3 * stride, stride, out Vector256<float> a3, out Vector256<float> b3, out Vector256<float> c3, out Vector256<float> d3);
        ColumnOfTile4(m + 4 * stride, stride, out Vector256<float> a4, out Vector256<float> b4, out Vector256<float> c4, out Vector256<float> d4);
        ColumnOfTile4(m + 5 * stride, stride, out Vector256<float> a5, out Vector256<float> b5, out Vector256<float> c5, out Vector256<float> d5);
        Transform4(a0, a1, a2, a3, a4, a5, out y[0], out y[1], out y[2], out y[3]);
        Transform4(b0, b1, b2, b3, b4, b5, out y[6], out y[7], out y[8], out y[9]);
        Transform4(c0, c1, c2, c3, c4, c5, out y[12], out y[13], out y[14], out y[15]);
        Transform4(d0, d1, d2, d3, d4, d5, out y[18], out y[19], out y[20], out y[21]);
    }

    /// <summary>A^T times the column of M whose first plane is at <paramref name="m"/> (its rows 6 planes apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnOfTile4(float* m, long stride, out Vector256<float> y0, out Vector256<float> y1, out Vector256<float> y2, out Vector256<float> y3) =>
        Transform4(Vector256.Load(m), Vector256.Load(m + 6 * stride), Vector256.Load(m + 12 * stride), Vector256.Load(m + 18 * stride),
            Vector256.Load(m + 24 * stride), Vector256.Load(m + 30 * stride), out y0, out y1, out y2, out y3);
}
