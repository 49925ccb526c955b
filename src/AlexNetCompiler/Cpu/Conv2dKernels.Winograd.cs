using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Cpu;

/// <summary>Which algorithm a fast 2-D convolution runs.</summary>
public enum Conv2dAlgorithm
{
    /// <summary>
    /// Chosen by shape: Winograd F(4x4, 3x3) for 3x3, stride-1 convolutions with at least
    /// <see cref="Conv2dKernels.WinogradMinChannels"/> input and output channels per group (the input gradient too, when
    /// the padding is at most 2), im2col + GEMM otherwise.
    /// </summary>
    Auto,
    /// <summary>im2col + GEMM, every shape.</summary>
    Im2Col,
    /// <summary>Winograd F(4x4, 3x3): 3x3 kernels at stride 1 only (and padding at most 2 for the input gradient).</summary>
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
/// d_c is the 6x6 input tile of channel c and g_c the 3x3 filter. The filters of every group are transformed once per
/// call (in double, rounded once) into U[36][out][in]; then per group, a chunk of input tiles (spanning samples) into
/// V[36][in][tiles], and for each of the 36 positions xi one GEMM M[xi] = U[xi] * V[xi] (out x in by in x tiles) on the project's blocked
/// GEMM, and the inverse transform with bias and ReLU writes the output. 36 multiplies per 16 outputs instead of 144.
/// <para>
/// Threads: the input transform is split by input channel, the GEMMs and the output transform by blocks of
/// <see cref="WinogradBlockRows"/> output channels (each block runs its 36 GEMMs single-threaded into its own scratch,
/// then transforms them while they are still in cache). Scratch: U in <see cref="ScratchSlot.WinogradFilters"/>
/// (4x the weights), V of one chunk in <see cref="ScratchSlot.WinogradTiles"/>, M of one block per thread in
/// <see cref="ScratchSlot.WinogradProducts"/>.
/// </para>
/// <para>
/// The input gradient of a 3x3 stride-1 convolution with padding p is itself one: dX = conv(dY, W') with
/// W'[c, oc] = W[oc, c] rotated by 180 degrees and padding 2 - p, which the same code computes with the filters
/// transformed transposed and flipped.
/// </para>
/// </summary>
public static unsafe partial class Conv2dKernels
{
    /// <summary>
    /// Fewest input and output channels per group for which <see cref="Conv2dAlgorithm.Auto"/> picks Winograd: with
    /// fewer, the transforms outweigh the multiplies saved. Not tuned; AlexNet's 3x3 layers have 96 to 384.
    /// </summary>
    public const int WinogradMinChannels = 16;

    /// <summary>Output channels per block of the GEMM and output-transform phase (a multiple of <see cref="Gemm.MR"/>).</summary>
    internal const int WinogradBlockRows = 24;

    /// <summary>Most tiles in one chunk (a multiple of the 8 lanes of the transforms and of <see cref="Gemm.NR"/>).</summary>
    internal const int WinogradChunkTiles = 128;

    private const int Lanes = 8; // tiles per Vector256 in the transforms

    /// <summary>Whether the forward pass of <paramref name="g"/> runs Winograd for <paramref name="algorithm"/>.</summary>
    internal static bool UsesWinogradForward(in Conv2dGeometry g, Conv2dAlgorithm algorithm) =>
        UsesWinograd(g, algorithm, g.InChannels / g.Groups, g.OutChannels / g.Groups, dataGradient: false);

    /// <summary>Whether the input gradient of <paramref name="g"/> runs Winograd for <paramref name="algorithm"/>.</summary>
    internal static bool UsesWinogradData(in Conv2dGeometry g, Conv2dAlgorithm algorithm) =>
        UsesWinograd(g, algorithm, g.OutChannels / g.Groups, g.InChannels / g.Groups, dataGradient: true);

    private static bool UsesWinograd(in Conv2dGeometry g, Conv2dAlgorithm algorithm, int cin, int cout, bool dataGradient)
    {
        if (algorithm == Conv2dAlgorithm.Im2Col) return false;
        bool possible = g.KernelHeight == 3 && g.KernelWidth == 3 && g.StrideHeight == 1 && g.StrideWidth == 1
            && (!dataGradient || (g.PaddingHeight <= 2 && g.PaddingWidth <= 2));
        if (algorithm == Conv2dAlgorithm.Winograd)
        {
            if (!possible)
                throw new ArgumentException($"Conv2d: Winograd F(4x4, 3x3) needs a 3x3 kernel at stride 1{(dataGradient ? " and padding at most 2 for the input gradient" : "")}; this is {g.KernelHeight}x{g.KernelWidth} at stride {g.StrideHeight}x{g.StrideWidth}, padding {g.PaddingHeight}x{g.PaddingWidth}.", nameof(algorithm));
            return true;
        }
        return possible && cin >= WinogradMinChannels && cout >= WinogradMinChannels;
    }

    /// <summary>One Winograd convolution: the forward pass, or the input gradient (<see cref="Transposed"/>).</summary>
    private struct WinogradJob
    {
        // The convolution computed: per group Cin -> Cout channels, input [H, W], output [OH, OW], padding PH, PW.
        public int Groups, Cin, Cout, H, W, OH, OW, PH, PW, TilesX, TilesPerSample;
        public long InputSample, OutputSample; // floats per sample, all groups
        public float* Input, Weight, Filters, Bias, Output, Tiles;
        public bool Relu, Transposed;
        public CpuContext Ctx;
        // The chunk being computed: group, tile count, row stride of V and M; blocks of output channels.
        public int Group, TileCount, Ld, Blocks;
        // Floats from one of the 36 planes of U and V to the next (PlaneStride).
        public long FilterStride, TileStride;
        // Per tile of the chunk: its sample and the top-left corner of its output tile (no divisions in the inner loops).
        public int* TileSample, TileY, TileX;
    }

    /// <summary>
    /// The distance between two of the 36 planes of U, V or M: whole cache lines, and one more, so that the planes do
    /// not start at the same offset modulo 4 KiB (the 36 loads or stores of one tile would otherwise fall into the same
    /// L1 set and evict each other).
    /// </summary>
    private static long PlaneStride(long floats) => (floats + 15) / 16 * 16 + 16;

    private static void WinogradForward(in Conv2dGeometry g, int batch, float* input, float* weight, float* bias, float* output, bool relu, CpuContext ctx)
    {
        var job = new WinogradJob
        {
            Groups = g.Groups, Cin = g.InChannels / g.Groups, Cout = g.OutChannels / g.Groups,
            H = g.InHeight, W = g.InWidth, OH = g.OutHeight, OW = g.OutWidth, PH = g.PaddingHeight, PW = g.PaddingWidth,
            InputSample = g.InputLength, OutputSample = g.OutputLength,
            Input = input, Weight = weight, Bias = bias, Output = output, Relu = relu, Ctx = ctx,
        };
        WinogradRun(ref job, batch);
    }

    /// <summary>dInput = conv(dOutput, W rotated and transposed), padding 2 - p; overwrites dInput.</summary>
    private static void WinogradData(in Conv2dGeometry g, int batch, float* weight, float* dOutput, float* dInput, CpuContext ctx)
    {
        var job = new WinogradJob
        {
            Groups = g.Groups, Cin = g.OutChannels / g.Groups, Cout = g.InChannels / g.Groups,
            H = g.OutHeight, W = g.OutWidth, OH = g.InHeight, OW = g.InWidth,
            PH = 2 - g.PaddingHeight, PW = 2 - g.PaddingWidth,
            InputSample = g.OutputLength, OutputSample = g.InputLength,
            Input = dOutput, Weight = weight, Output = dInput, Transposed = true, Ctx = ctx,
        };
        WinogradRun(ref job, batch);
    }

    private static void WinogradRun(ref WinogradJob job, int batch)
    {
        CpuContext ctx = job.Ctx;
        job.TilesX = (job.OW + 3) / 4;
        job.TilesPerSample = (job.OH + 3) / 4 * job.TilesX;
        job.FilterStride = PlaneStride((long)job.Cout * job.Cin);
        long filters = 36L * job.Groups * job.FilterStride;
        job.Filters = ctx.Scratch(0, ScratchSlot.WinogradFilters, filters);
        ctx.For(job.Groups * job.Cout, &TransformFilters, Unsafe.AsPointer(ref job));

        long totalTiles = (long)batch * job.TilesPerSample;
        int chunk = (int)Math.Min(totalTiles, WinogradChunkTiles);
        job.Ld = (chunk + Lanes - 1) / Lanes * Lanes;
        job.TileStride = PlaneStride((long)job.Cin * job.Ld);
        job.Tiles = ctx.Scratch(0, ScratchSlot.WinogradTiles, 36L * job.TileStride);
        int* tileTable = stackalloc int[3 * WinogradChunkTiles];
        job.TileSample = tileTable;
        job.TileY = tileTable + WinogradChunkTiles;
        job.TileX = tileTable + 2 * WinogradChunkTiles;
        job.Blocks = (job.Cout + WinogradBlockRows - 1) / WinogradBlockRows;
        for (int grp = 0; grp < job.Groups; grp++)
        {
            job.Group = grp;
            for (long first = 0; first < totalTiles; first += chunk)
            {
                job.TileCount = (int)Math.Min(chunk, totalTiles - first);
                for (int t = 0; t < job.TileCount; t++)
                {
                    long tile = first + t;
                    int r = (int)(tile % job.TilesPerSample);
                    job.TileSample[t] = (int)(tile / job.TilesPerSample);
                    job.TileY[t] = r / job.TilesX * 4;
                    job.TileX[t] = r % job.TilesX * 4;
                }
                ctx.For(job.Cin, &TransformInputChannel, Unsafe.AsPointer(ref job));
                ctx.For(job.Blocks, &MultiplyAndTransformOutput, Unsafe.AsPointer(ref job));
            }
        }
    }

    /// <summary>
    /// U[grp][xi][o][i] = (G g G^T)[xi] for every input channel i of output row <paramref name="item"/> = grp * Cout + o,
    /// in double and rounded once. g is W[o, i] (forward) or W[i, o] rotated by 180 degrees (input gradient).
    /// </summary>
    private static void TransformFilters(void* state, int item, int threadIndex)
    {
        ref WinogradJob job = ref Unsafe.AsRef<WinogradJob>(state);
        int grp = item / job.Cout, o = item % job.Cout;
        long plane = job.FilterStride;
        float* u = job.Filters + grp * 36 * plane + (long)o * job.Cin;
        // Four input channels at a time, one per double lane: taps[k] holds tap k of the four filters.
        double* taps = stackalloc double[9 * 4];
        Vector256<double>* f = stackalloc Vector256<double>[9];
        Vector256<double>* gf = stackalloc Vector256<double>[18]; // G f: 6 x 3
        Vector256<double>* t = stackalloc Vector256<double>[36];  // G f G^T: 6 x 6
        float* lanes = stackalloc float[4];
        for (int i0 = 0; i0 < job.Cin; i0 += 4)
        {
            int count = Math.Min(4, job.Cin - i0);
            if (count < 4) new Span<double>(taps, 9 * 4).Clear();
            for (int lane = 0; lane < count; lane++)
            {
                int i = i0 + lane;
                if (job.Transposed)
                {
                    float* src = job.Weight + (((long)grp * job.Cin + i) * job.Cout + o) * 9;
                    for (int k = 0; k < 9; k++) taps[k * 4 + lane] = src[8 - k];
                }
                else
                {
                    float* src = job.Weight + (((long)grp * job.Cout + o) * job.Cin + i) * 9;
                    for (int k = 0; k < 9; k++) taps[k * 4 + lane] = src[k];
                }
            }
            for (int k = 0; k < 9; k++) f[k] = Vector256.Load(taps + k * 4);
            for (int col = 0; col < 3; col++) FilterColumn(f[col], f[3 + col], f[6 + col], gf + col, 3);
            for (int row = 0; row < 6; row++) FilterColumn(gf[row * 3], gf[row * 3 + 1], gf[row * 3 + 2], t + row * 6, 1);
            for (int k = 0; k < 36; k++)
            {
                Vector128<float> narrow = Vector256.Narrow(t[k], Vector256<double>.Zero).GetLower();
                if (count == 4)
                {
                    narrow.Store(u + k * plane + i0);
                }
                else
                {
                    narrow.Store(lanes);
                    for (int lane = 0; lane < count; lane++) u[k * plane + i0 + lane] = lanes[lane];
                }
            }
        }
    }

    /// <summary>
    /// G times the 3-vector (a, b, c), written to dst[0], dst[stride], ... dst[5 * stride]. In double, four filters at
    /// a time, by multiplications (the filter transform runs on every weight at each call); the double rounding of 1/6,
    /// 1/12 and 1/24 is far below the float rounding of the result.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FilterColumn(Vector256<double> a, Vector256<double> b, Vector256<double> c, Vector256<double>* dst, int stride)
    {
        Vector256<double> sixth = Vector256.Create(1.0 / 6), twelfth = Vector256.Create(1.0 / 12), twentyFourth = Vector256.Create(1.0 / 24);
        Vector256<double> ac = a + c;
        dst[0] = Vector256.Create(0.25) * a;
        dst[stride] = -sixth * (ac + b);
        dst[2 * stride] = -sixth * (ac - b);
        dst[3 * stride] = twentyFourth * a + twelfth * b + sixth * c;
        dst[4 * stride] = twentyFourth * a - twelfth * b + sixth * c;
        dst[5 * stride] = c;
    }

    /// <summary>V[xi][i][t] = (B^T d B)[xi] for input channel <paramref name="i"/> and every tile t of the chunk, 8 tiles at a time.</summary>
    private static void TransformInputChannel(void* state, int i, int threadIndex)
    {
        ref WinogradJob job = ref Unsafe.AsRef<WinogradJob>(state);
        int h = job.H, w = job.W;
        long channelOffset = (long)(job.Group * job.Cin + i) * h * w;
        long xiStride = job.TileStride;
        float* v = job.Tiles + (long)i * job.Ld;
        float* stage = stackalloc float[36 * Lanes];
        Vector256<float>* d = stackalloc Vector256<float>[36];
        for (int t0 = 0; t0 < job.TileCount; t0 += Lanes)
        {
            int lanes = Math.Min(Lanes, job.TileCount - t0);
            if (lanes < Lanes) new Span<float>(stage, 36 * Lanes).Clear();
            for (int lane = 0; lane < lanes; lane++)
            {
                int tile = t0 + lane;
                int y0 = job.TileY[tile] - job.PH, x0 = job.TileX[tile] - job.PW;
                float* plane = job.Input + job.TileSample[tile] * job.InputSample + channelOffset;
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
            // B^T d: on each column (stride 6), in place; then (B^T d) B: on each row (stride 1).
            for (int col = 0; col < 6; col++) InputTransform(d + col, 6);
            for (int row = 0; row < 6; row++) InputTransform(d + row * 6, 1);
            for (int k = 0; k < 36; k++) d[k].Store(v + k * xiStride + t0);
        }
    }

    /// <summary>B^T times the 6 vectors x[0], x[s], ..., x[5s], in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputTransform(Vector256<float>* x, int s)
    {
        Vector256<float> d0 = x[0], d1 = x[s], d2 = x[2 * s], d3 = x[3 * s], d4 = x[4 * s], d5 = x[5 * s];
        Vector256<float> four = Vector256.Create(4f), five = Vector256.Create(5f), two = Vector256.Create(2f);
        Vector256<float> a = d4 - d2, b = d3 - d1; // shared terms of rows 1-4
        x[0] = four * d0 - five * d2 + d4;
        x[s] = d4 + d3 - four * (d1 + d2);
        x[2 * s] = d4 - d3 + four * (d1 - d2);
        x[3 * s] = a + two * b;
        x[4 * s] = a - two * b;
        x[5 * s] = four * d1 - five * d3 + d5;
    }

    /// <summary>
    /// For output channels [b * <see cref="WinogradBlockRows"/>, ...) of the group: the 36 GEMMs
    /// M[xi] = U[xi] * V[xi] into this thread's scratch, then Y = A^T M A + bias (ReLU) scattered to the output tiles.
    /// </summary>
    private static void MultiplyAndTransformOutput(void* state, int block, int threadIndex)
    {
        ref WinogradJob job = ref Unsafe.AsRef<WinogradJob>(state);
        int o0 = block * WinogradBlockRows, rows = Math.Min(WinogradBlockRows, job.Cout - o0);
        long plane = job.FilterStride;
        long rowsStride = PlaneStride((long)rows * job.Ld);
        float* m = job.Ctx.Scratch(threadIndex, ScratchSlot.WinogradProducts, 36 * rowsStride);
        float* u = job.Filters + job.Group * 36 * plane + (long)o0 * job.Cin;
        long xiStride = job.TileStride;
        for (int xi = 0; xi < 36; xi++)
        {
            Gemm.Multiply(rows, job.TileCount, job.Cin, u + xi * plane, job.Cin, false, job.Tiles + xi * xiStride, job.Ld, false,
                m + xi * rowsStride, job.Ld, false, GemmEpilogue.None, job.Ctx, threadIndex);
        }

        float* stage = stackalloc float[16 * Lanes];
        Vector256<float>* t = stackalloc Vector256<float>[36];
        for (int o = 0; o < rows; o++)
        {
            int channel = job.Group * job.Cout + o0 + o;
            var bias = Vector256.Create(job.Bias == null ? 0f : job.Bias[channel]);
            long channelOffset = (long)channel * job.OH * job.OW;
            float* mo = m + (long)o * job.Ld;
            for (int t0 = 0; t0 < job.TileCount; t0 += Lanes)
            {
                for (int k = 0; k < 36; k++) t[k] = Vector256.Load(mo + k * rowsStride + t0);
                // A^T M: on each column (stride 6) into rows 0-3; then (A^T M) A: on each of those rows.
                for (int col = 0; col < 6; col++) OutputTransform(t + col, 6);
                for (int row = 0; row < 4; row++)
                {
                    OutputTransform(t + row * 6, 1);
                    for (int col = 0; col < 4; col++)
                    {
                        Vector256<float> y = t[row * 6 + col] + bias;
                        if (job.Relu) y = Vector256.Max(y, Vector256<float>.Zero);
                        y.Store(stage + (row * 4 + col) * Lanes);
                    }
                }
                int lanes = Math.Min(Lanes, job.TileCount - t0);
                for (int lane = 0; lane < lanes; lane++)
                {
                    int tile = t0 + lane;
                    int y0 = job.TileY[tile], x0 = job.TileX[tile];
                    int height = Math.Min(4, job.OH - y0), width = Math.Min(4, job.OW - x0);
                    float* dst = job.Output + job.TileSample[tile] * job.OutputSample + channelOffset + (long)y0 * job.OW + x0;
                    for (int row = 0; row < height; row++, dst += job.OW)
                        for (int col = 0; col < width; col++) dst[col] = stage[(row * 4 + col) * Lanes + lane];
                }
            }
        }
    }

    /// <summary>A^T times the 6 vectors x[0], x[s], ..., x[5s], written to x[0], x[s], x[2s], x[3s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputTransform(Vector256<float>* x, int s)
    {
        Vector256<float> m0 = x[0], m1 = x[s], m2 = x[2 * s], m3 = x[3 * s], m4 = x[4 * s], m5 = x[5 * s];
        Vector256<float> sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4;
        x[0] = m0 + sum12 + sum34;
        x[s] = diff12 + Vector256.Create(2f) * diff34;
        x[2 * s] = sum12 + Vector256.Create(4f) * sum34;
        x[3 * s] = diff12 + Vector256.Create(8f) * diff34 + m5;
    }
}
