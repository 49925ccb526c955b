using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// The weight gradient of a 3x3 (5x5) stride-1 convolution by Winograd F(4x4, 3x3) (F(2x2, 5x5)), with the forward
/// pass's matrices (Conv2dKernels.Winograd.cs). The forward output tile is Y = A^T [ (G g G^T) .* (B^T d B) ] A, so for
/// an output gradient tile E (4x4, or 2x2) the sum over the tile of E .* Y is the sum over the 36 points of (A E A^T) .* (G g G^T) .*
/// (B^T d B), and its derivative with respect to the filter g is
/// <code>
///   dW = G^T [ sum over tiles of (A E A^T) .* (B^T d B) ] G
/// </code>
/// (Y is bilinear in g and d, so the sum is the bilinear form above). Summed over every
/// tile of every sample, the bracket is, per point xi, one product P[xi] = E[xi] V[xi]^T of the output-gradient tiles
/// [out, tiles] and the input tiles [in, tiles]: 36 GEMMs as deep as a chunk's tiles, added chunk after chunk, against
/// im2col's products as deep as a sample's positions with R^2 (9 or 25) times the columns.
/// <para>
/// Work, per chunk of tiles (<see cref="WinogradWeightChunkTiles"/>, spanning samples): one parallel loop transforms
/// every input channel's tiles (the forward pass's input transform) and every output channel's gradient tiles into
/// shared buffers, V[36][C][tiles] and E[36][OC][tiles]; a second runs the 36 products of each group single-threaded,
/// P[group][xi] (+)= E[xi] V[xi]^T, each adding the chunks in order. A last loop over output channels turns P into dW
/// with G^T . G. Every element of dW comes from the same operations on any number of threads.
/// </para>
/// </summary>
public static unsafe partial class Conv2dKernels
{
    /// <summary>
    /// Most tiles per chunk: batch 16 of a 13x13 plane (16 tiles a sample) in one chunk; V and E of a chunk are then
    /// 36 x (C + OC) x 256 floats (27 MiB for the canonical AlexNet's conv4).
    /// </summary>
    internal const int WinogradWeightChunkTiles = 256;

    private struct WinogradWeightJob
    {
        /// <summary>The forward convolution's job: its input transform fills V.</summary>
        public WinogradJob Forward;
        public float* DOutput, DWeight, V, E, P;
        public long EStride, PStride; // floats between two of the 36 planes of E, and of a group's P
        public ChunkTiles Tiles;
        public bool Accumulate; // P += this chunk's products (every chunk after the first)
    }

    /// <summary>dWeight = the weight gradient of a 3x3 or 5x5 stride-1 convolution, by Winograd; overwrites dWeight.</summary>
    private static void WinogradWeight(in Conv2dGeometry g, int batch, float* input, float* dOutput, float* dWeight, CpuContext ctx)
    {
        int cin = g.InChannels / g.Groups, cout = g.OutChannels / g.Groups;
        var job = new WinogradWeightJob
        {
            Forward = new WinogradJob
            {
                R = g.KernelHeight, M = WinogradTile(g.KernelHeight),
                Groups = g.Groups, Cin = cin, Cout = cout,
                H = g.InHeight, W = g.InWidth, OH = g.OutHeight, OW = g.OutWidth, PH = g.PaddingHeight, PW = g.PaddingWidth,
                InputSample = g.InputLength, OutputSample = g.OutputLength, Input = input, Ctx = ctx,
            },
            DOutput = dOutput, DWeight = dWeight,
        };
        ref WinogradJob forward = ref job.Forward;
        CountTiles(ref forward, batch);
        int chunkTiles = (int)Math.Min(WinogradWeightChunkTiles, (forward.TotalTiles + Lanes - 1) / Lanes * Lanes);
        forward.Ld = chunkTiles;
        forward.TileStride = PlaneStride((long)g.InChannels * chunkTiles);
        job.EStride = PlaneStride((long)g.OutChannels * chunkTiles);
        job.PStride = PlaneStride((long)cout * cin);
        float* tiles = ctx.Scratch(0, ScratchSlot.Columns, 36 * (forward.TileStride + job.EStride));
        job.V = tiles;
        job.E = tiles + 36 * forward.TileStride;
        job.P = ctx.Scratch(0, ScratchSlot.TransformedFilters, (long)g.Groups * 36 * job.PStride);
        Gemm.ReserveScratch(cout, cin, chunkTiles, ctx);

        int* tileSample = stackalloc int[chunkTiles];
        int* tileY = stackalloc int[chunkTiles];
        int* tileX = stackalloc int[chunkTiles];
        for (long first = 0; first < forward.TotalTiles; first += chunkTiles)
        {
            job.Tiles = TilesFrom(forward, first, chunkTiles, tileSample, tileY, tileX);
            job.Accumulate = first > 0;
            ctx.For(g.InChannels + g.OutChannels, &WinogradWeightTransformChannel, Unsafe.AsPointer(ref job));
            ctx.For(g.Groups * 36, &WinogradWeightProduct, Unsafe.AsPointer(ref job));
        }
        ctx.For(g.OutChannels, &WinogradWeightOutputChannel, Unsafe.AsPointer(ref job));
    }

    /// <summary>Item c &lt; C: input channel c's tiles into V; item C + o: output channel o's gradient tiles into E.</summary>
    private static void WinogradWeightTransformChannel(void* state, int item, int threadIndex)
    {
        ref WinogradWeightJob job = ref Unsafe.AsRef<WinogradWeightJob>(state);
        ref WinogradJob forward = ref job.Forward;
        int channels = forward.Groups * forward.Cin;
        if (item < channels)
        {
            TransformInputChannel(ref forward, job.Tiles, item / forward.Cin, item % forward.Cin, job.V + (long)item * forward.Ld);
            return;
        }
        TransformGradientChannel(ref job, item - channels);
    }

    /// <summary>
    /// E[xi][o][t] = (A e A^T)[xi] for output channel <paramref name="o"/> and every tile t of the chunk, where e is the
    /// tile's M x M output gradient (zero past the plane's edge), 8 tiles at a time; the lanes past the last tile are zero.
    /// </summary>
    private static void TransformGradientChannel(ref WinogradWeightJob job, int o)
    {
        ref WinogradJob forward = ref job.Forward;
        int oh = forward.OH, ow = forward.OW, side = forward.M;
        long channelOffset = (long)o * oh * ow;
        float* e = job.E + (long)o * forward.Ld;
        float* stage = stackalloc float[16 * Lanes];
        Vector256<float>* x = stackalloc Vector256<float>[36];
        ChunkTiles tiles = job.Tiles;
        bool gather = CanGatherTiles();
        for (int t0 = 0; t0 < tiles.Count; t0 += Lanes)
        {
            int lanes = Math.Min(Lanes, tiles.Count - t0);
            if (gather && lanes == Lanes)
                GatherTiles(job.DOutput + tiles.Sample[t0] * forward.OutputSample + channelOffset, tiles, t0, forward.OutputSample,
                    0, 0, oh, ow, side, x);
            else ReadGradientTiles(ref job, t0, lanes, channelOffset, stage, x);
            // A e: on each of the M columns (stride 6) into rows 0-5; then (A e) A^T: on each of the 6 rows.
            for (int col = 0; col < side; col++) GradientTransform(x + col, 6, side);
            for (int row = 0; row < 6; row++) GradientTransform(x + row * 6, 1, side);
            for (int k = 0; k < 36; k++) x[k].Store(e + k * job.EStride + t0);
        }
    }

    /// <summary>
    /// <see cref="GatherTiles"/>'s M x M output-gradient windows (zero past the plane's edge) read element by element
    /// through <paramref name="stage"/>, for a last group of fewer than 8 tiles (the lanes past it zero) and for
    /// machines without AVX2.
    /// </summary>
    private static void ReadGradientTiles(ref WinogradWeightJob job, int t0, int lanes, long channelOffset, float* stage, Vector256<float>* x)
    {
        ref WinogradJob forward = ref job.Forward;
        int oh = forward.OH, ow = forward.OW, side = forward.M;
        ChunkTiles tiles = job.Tiles;
        new Span<float>(stage, 16 * Lanes).Clear();
        for (int lane = 0; lane < lanes; lane++)
        {
            int tile = t0 + lane;
            int y0 = tiles.Y[tile], x0 = tiles.X[tile];
            int height = Math.Min(side, oh - y0), width = Math.Min(side, ow - x0);
            float* src = job.DOutput + tiles.Sample[tile] * forward.OutputSample + channelOffset + (long)y0 * ow + x0;
            for (int row = 0; row < height; row++, src += ow)
                for (int col = 0; col < width; col++) stage[(row * side + col) * Lanes + lane] = src[col];
        }
        for (int row = 0; row < side; row++)
            for (int col = 0; col < side; col++) x[row * 6 + col] = Vector256.Load(stage + (row * side + col) * Lanes);
    }

    /// <summary>A (6 x M) times the M vectors x[0], ..., x[(M - 1) s], written to x[0], x[s], ..., x[5s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientTransform(Vector256<float>* x, int s, int m)
    {
        if (m == 4) GradientTransform4(x, s);
        else GradientTransform2(x, s);
    }

    /// <summary>F(2x2, 5x5)'s A times the 2 vectors x[0], x[s], written to x[0], x[s], ..., x[5s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientTransform2(Vector256<float>* x, int s)
    {
        Vector256<float> e0 = x[0], e1 = x[s], twice = Vector256.Create(2f) * e1;
        x[s] = e0 + e1;
        x[2 * s] = e0 - e1;
        x[3 * s] = e0 + twice;
        x[4 * s] = e0 - twice;
        x[5 * s] = e1;
    }

    /// <summary>F(4x4, 3x3)'s A times the 4 vectors x[0], x[s], x[2s], x[3s], written to x[0], x[s], ..., x[5s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GradientTransform4(Vector256<float>* x, int s)
    {
        Vector256<float> e0 = x[0], e1 = x[s], e2 = x[2 * s], e3 = x[3 * s];
        Vector256<float> even = e0 + e2, odd = e1 + e3, even4 = e0 + Vector256.Create(4f) * e2;
        Vector256<float> odd8 = Vector256.Create(2f) * e1 + Vector256.Create(8f) * e3;
        x[s] = even + odd;
        x[2 * s] = even - odd;
        x[3 * s] = even4 + odd8;
        x[4 * s] = even4 - odd8;
        x[5 * s] = e3;
    }

    /// <summary>Item (group, xi): P[group][xi] (+)= E[xi] V[xi]^T, [OC/G, C/G], as deep as the chunk's tiles.</summary>
    private static void WinogradWeightProduct(void* state, int item, int threadIndex)
    {
        ref WinogradWeightJob job = ref Unsafe.AsRef<WinogradWeightJob>(state);
        ref WinogradJob forward = ref job.Forward;
        int grp = item / 36, xi = item % 36;
        float* e = job.E + xi * job.EStride + (long)grp * forward.Cout * forward.Ld;
        float* v = job.V + xi * forward.TileStride + (long)grp * forward.Cin * forward.Ld;
        float* p = job.P + ((long)grp * 36 + xi) * job.PStride;
        Gemm.Multiply(forward.Cout, forward.Cin, job.Tiles.Count, e, forward.Ld, false, v, forward.Ld, true,
            p, forward.Cin, job.Accumulate, GemmEpilogue.None, forward.Ctx, threadIndex);
    }

    /// <summary>dW[o, i] = G^T P[xi][o][i] G (R x R) for output channel o (item) and every input channel i, 8 at a time.</summary>
    private static void WinogradWeightOutputChannel(void* state, int item, int threadIndex)
    {
        ref WinogradWeightJob job = ref Unsafe.AsRef<WinogradWeightJob>(state);
        ref WinogradJob forward = ref job.Forward;
        int cin = forward.Cin, grp = item / forward.Cout, o = item % forward.Cout, side = forward.R, area = side * side;
        float* p = job.P + (long)grp * 36 * job.PStride + (long)o * cin;
        float* dw = job.DWeight + (long)item * cin * area;
        Vector256<float>* x = stackalloc Vector256<float>[36];
        float* stage = stackalloc float[25 * Lanes];
        for (int i0 = 0; i0 < cin; i0 += Lanes)
        {
            int lanes = Math.Min(Lanes, cin - i0);
            if (lanes == Lanes)
            {
                for (int k = 0; k < 36; k++) x[k] = Vector256.Load(p + k * job.PStride + i0);
            }
            else
            {
                for (int k = 0; k < 36; k++)
                {
                    new Span<float>(stage, Lanes).Clear();
                    for (int lane = 0; lane < lanes; lane++) stage[lane] = p[k * job.PStride + i0 + lane];
                    x[k] = Vector256.Load(stage);
                }
            }
            // G^T P: on each of the 6 columns (stride 6) into rows 0 to R - 1; then (G^T P) G: on each of those rows.
            for (int col = 0; col < 6; col++) WeightTransform(x + col, 6, side);
            for (int row = 0; row < side; row++)
            {
                WeightTransform(x + row * 6, 1, side);
                for (int col = 0; col < side; col++) x[row * 6 + col].Store(stage + (row * side + col) * Lanes);
            }
            for (int lane = 0; lane < lanes; lane++)
            {
                float* filter = dw + (long)(i0 + lane) * area;
                for (int k = 0; k < area; k++) filter[k] = stage[k * Lanes + lane];
            }
        }
    }

    /// <summary>G^T (R x 6) times the 6 vectors x[0], x[s], ..., x[5s], written to x[0], ..., x[(R - 1) s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WeightTransform(Vector256<float>* x, int s, int r)
    {
        if (r == 3) WeightTransform3(x, s);
        else WeightTransform5(x, s);
    }

    /// <summary>F(2x2, 5x5)'s G^T times the 6 vectors x[0], x[s], ..., x[5s], written to x[0], ..., x[4s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WeightTransform5(Vector256<float>* x, int s)
    {
        Vector256<float> p0 = x[0], p1 = x[s], p2 = x[2 * s], p3 = x[3 * s], p4 = x[4 * s], p5 = x[5 * s];
        Vector256<float> sixth = Vector256.Create(1f / 6);
        Vector256<float> sum12 = p1 + p2, diff12 = p2 - p1, sum34 = p3 + p4, diff34 = p3 - p4;
        x[0] = Vector256.Create(0.25f) * p0 - sixth * sum12 + Vector256.Create(1f / 24) * sum34;
        x[s] = sixth * diff12 + Vector256.Create(1f / 12) * diff34;
        x[2 * s] = sixth * (sum34 - sum12);
        x[3 * s] = sixth * diff12 + Vector256.Create(1f / 3) * diff34;
        x[4 * s] = Vector256.Create(2f / 3) * sum34 - sixth * sum12 + p5;
    }

    /// <summary>F(4x4, 3x3)'s G^T times the 6 vectors x[0], x[s], ..., x[5s], written to x[0], x[s], x[2s].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WeightTransform3(Vector256<float>* x, int s)
    {
        Vector256<float> p0 = x[0], p1 = x[s], p2 = x[2 * s], p3 = x[3 * s], p4 = x[4 * s], p5 = x[5 * s];
        Vector256<float> sixth = Vector256.Create(1f / 6), twelfth = Vector256.Create(1f / 12), twentyFourth = Vector256.Create(1f / 24);
        Vector256<float> sum12 = p1 + p2, diff12 = p2 - p1, sum34 = p3 + p4, diff34 = p3 - p4;
        x[0] = Vector256.Create(0.25f) * p0 - sixth * sum12 + twentyFourth * sum34;
        x[s] = sixth * diff12 + twelfth * diff34;
        x[2 * s] = sixth * (sum34 - sum12) + p5;
    }
}
