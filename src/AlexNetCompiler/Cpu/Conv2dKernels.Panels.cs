using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>Where the forward pass of im2col + GEMM puts its columns (tests compare the two; the results are the same bits).</summary>
internal enum ColumnLayout
{
    /// <summary>Panels for strided convolutions (<see cref="Conv2dKernels.UsesColumnPanels"/>), the column matrix otherwise.</summary>
    Auto,
    /// <summary>The whole column matrix of a sample, then the GEMM packs it.</summary>
    Matrix,
    /// <summary>
    /// Slabs of output positions written straight into the GEMM's packed panels, for every shape that takes one sample to
    /// an item (not a direct 1x1 convolution, nor a small plane's block of samples) and whose rows fit the phases.
    /// </summary>
    Panels,
}

/// <summary>
/// The forward pass of a strided convolution (AlexNet's conv1: 11x11, stride 4) without its column matrix. The column
/// matrix of one sample of conv1 is 363 x 3025 floats (4.4 MB, more than L2), written by im2col, read and written again
/// by the GEMM's packing and read a third time by the micro-kernel. Here the output positions are taken in slabs of
/// whole NR-column panels; im2col writes a slab's columns straight into the packed layout the micro-kernel reads
/// (<see cref="Gemm.PackBRows"/>'s), about <see cref="PanelSlabBytes"/>, so it stays in L2 until the product reads it, and
/// the product writes its output columns in place. The weights are packed once per call. Work items are (sample,
/// group, slab), so batch 1 spreads over the threads as well. Each output is the same dot product in the same order
/// as through the column matrix: the same bits.
/// </summary>
public static unsafe partial class Conv2dKernels
{
    /// <summary>Bytes of one slab's packed columns: half of a 1 MiB L2, leaving room for the packed weights.</summary>
    private const int PanelSlabBytes = 512 * 1024;

    /// <summary>
    /// Whether the forward pass runs in slabs of packed panels: under <see cref="ColumnLayout.Auto"/>, for convolutions
    /// with a column stride above 1 (one sample to an item, and a row narrow enough for the stride phases); those
    /// measured faster (docs/architecture.md). <see cref="ColumnLayout.Panels"/> takes every shape the phases fit.
    /// </summary>
    internal static bool UsesColumnPanels(in Conv2dGeometry g, int batch, CpuContext ctx)
    {
        if (IsDirect(g) || !PanelsFit(g) || SamplesPerItem(g, batch, ctx.Threads) != 1) return false;
        return ctx.ForwardColumns switch
        {
            ColumnLayout.Matrix => false,
            ColumnLayout.Panels => true,
            _ => g.StrideWidth > 1,
        };
    }

    private static bool PanelsFit(in Conv2dGeometry g) => g.KernelWidth <= MaxPanelKernelWidth && PhasesFit(g);

    /// <summary>Widest kernel <see cref="Im2ColPanels"/> takes: it keeps three pointers per kernel column on the stack.</summary>
    private const int MaxPanelKernelWidth = 256;

    /// <summary>
    /// Output positions per slab: whole panels, as many as fit <see cref="PanelSlabBytes"/>, narrowed to what the fewest
    /// slabs of that size need (the last slab takes the rest): a plane of 400 positions at a depth of 363 runs as 224 + 176,
    /// not 352 + 48.
    /// </summary>
    internal static int SlabPositions(int depth, int positions)
    {
        int most = Math.Max(Gemm.NR, PanelSlabBytes / sizeof(float) / Math.Max(depth, 1) / Gemm.NR * Gemm.NR);
        int slabs = (positions + most - 1) / most;
        int even = (positions + slabs - 1) / slabs;
        return (even + Gemm.NR - 1) / Gemm.NR * Gemm.NR;
    }

    private static void PanelForward(ref ConvJob job)
    {
        job.SlabPositions = SlabPositions(job.Kc, job.P);
        job.Slabs = (job.P + job.SlabPositions - 1) / job.SlabPositions;
        job.Ctx.ReserveScratch(ScratchSlot.Columns, Gemm.PackedBLength(job.SlabPositions, job.Kc));
        PackWeights(ref job, transposed: false);
        job.Ctx.For(job.Batch * job.Groups * job.Slabs, &PanelItem, Unsafe.AsPointer(ref job));
    }

    private static void PanelItem(void* state, int item, int threadIndex)
    {
        ref ConvJob job = ref Unsafe.AsRef<ConvJob>(state);
        int slab = item % job.Slabs, pair = item / job.Slabs;
        int grp = pair % job.Groups, n = pair / job.Groups;
        int first = slab * job.SlabPositions, count = Math.Min(job.SlabPositions, job.P - first);
        float* packed = job.Ctx.Scratch(threadIndex, ScratchSlot.Columns, Gemm.PackedBLength(count, job.Kc));
        Im2ColPanels(job.G, job.Cg, job.Input + job.InputOffset(n, grp), first, count, packed);
        var epilogue = new GemmEpilogue(job.Bias == null ? null : job.Bias + grp * job.OCg, null, job.Relu);
        // output_g[OCg, first .. first + count) = weight_g[OCg, Kc] * columns[Kc, slab] + bias_g, ReLU
        Gemm.MultiplyPackedAB(job.OCg, count, job.Kc, job.PackedWeight + grp * job.PackedGroupLength, packed,
            job.Output + job.OutputOffset(n, grp) + first, job.P, epilogue, job.Ctx, threadIndex);
    }

    /// <summary>
    /// Columns [<paramref name="firstPosition"/>, + <paramref name="positions"/>) of <see cref="Im2Col"/>'s matrix for
    /// <paramref name="channels"/> input channels, written as <see cref="Gemm.PackBRows"/> lays out a K x positions
    /// op(B) (K = channels * KH * KW), lanes past the last position zero. Each input row the slab reads is split into
    /// its stride phases once (as <see cref="Im2ColPhased"/> does); a kernel column's run along an output row is then a
    /// contiguous copy, cut where it crosses from one panel into the next.
    /// </summary>
    internal static void Im2ColPanels(in Conv2dGeometry g, int channels, float* input, int firstPosition, int positions, float* packed)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, sw = g.StrideWidth, ph = g.PaddingHeight, pw = g.PaddingWidth;
        int depth = channels * kh * kw, endPosition = firstPosition + positions;
        if (positions <= 0 || firstPosition < 0 || endPosition > oh * ow)
            throw new ArgumentOutOfRangeException(nameof(positions), $"Positions {firstPosition} to {endPosition} of a {oh}x{ow} output do not exist.");
        if (!PanelsFit(g))
            throw new ArgumentException($"A {kh}x{kw} kernel at column stride {sw} over rows of {w} does not fit the phases on the stack.", nameof(g));
        var slab = new PanelSlab(packed, depth, positions);
        int lastLanes = positions % Gemm.NR;
        if (lastLanes != 0)
        {
            for (int p = 0; p < depth; p++) new Span<float>(slab.Row(p) + positions / Gemm.NR * slab.PanelStride(p) + lastLanes, Gemm.NR - lastLanes).Clear();
        }

        int firstRow = firstPosition / ow, lastRow = (endPosition - 1) / ow;
        // Where an output row's positions land: at most one piece per panel it touches, the same for every row of K.
        var pieces = stackalloc RunPiece[(ow + Gemm.NR - 2) / Gemm.NR + 1];

        int phaseLength = (w + 2 * pw + sw - 1) / sw, phaseCount = Math.Min(sw, kw);
        // + NR: a piece's whole-vector loads may read past the end of its phase (the floats past it are not stored).
        float* phases = stackalloc float[phaseCount * phaseLength + Gemm.NR];
        new Span<float>(phases + phaseCount * phaseLength, Gemm.NR).Clear();
        float** rows = stackalloc float*[kw];
        long* panelStrides = stackalloc long[kw];
        float** sources = stackalloc float*[kw];
        Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int c = 0; c < channels; c++)
        {
            float* plane = input + (long)c * h * w;
            for (int ky = 0; ky < kh; ky++)
            {
                for (int y = firstRow; y <= lastRow; y++)
                {
                    // Output rows whose kernel row ky falls in the vertical padding read zeros.
                    int iy = y * sh - ph + ky;
                    if ((uint)iy < (uint)h) continue;
                    int count = RunPiece.Split(y * ow, ow, firstPosition, endPosition, pieces);
                    for (int kx = 0; kx < kw; kx++)
                    {
                        int p = (c * kh + ky) * kw + kx;
                        for (int i = 0; i < count; i++) pieces[i].Copy(null, slab.Row(p), slab.PanelStride(p));
                    }
                }
            }
            int iyFirst = Math.Max(0, firstRow * sh - ph), iyEnd = Math.Min(h, lastRow * sh - ph + kh);
            for (int iy = iyFirst; iy < iyEnd; iy++)
            {
                SplitIntoPhases(g, plane + (long)iy * w, phases, phaseCount, phaseLength);
                // Kernel row ky reads input row iy for output row y = (iy + ph - ky) / sh, when that divides.
                for (int ky = 0; ky < kh; ky++)
                {
                    int offset = iy + ph - ky;
                    if (offset < 0 || offset % sh != 0) continue;
                    int y = offset / sh;
                    if (y < firstRow || y > lastRow) continue;
                    for (int kx = 0; kx < kw; kx++)
                    {
                        int p = (c * kh + ky) * kw + kx;
                        rows[kx] = slab.Row(p);
                        panelStrides[kx] = slab.PanelStride(p);
                        sources[kx] = phases + (kx % sw) * phaseLength + kx / sw;
                    }
                    int count = RunPiece.Split(y * ow, ow, firstPosition, endPosition, pieces);
                    for (int i = 0; i < count; i++)
                    {
                        RunPiece piece = pieces[i];
                        if (!Avx512F.IsSupported)
                        {
                            for (int kx = 0; kx < kw; kx++) piece.Copy(sources[kx], rows[kx], panelStrides[kx]);
                            continue;
                        }
                        // The piece's masks once for the whole kernel row; phases end with NR floats of slack for the loads.
                        Vector512<float> low = Vector512.LessThan(lane, Vector512.Create(piece.Count)).AsSingle();
                        Vector512<float> high = Vector512.LessThan(lane, Vector512.Create(piece.Count - 16)).AsSingle();
                        for (int kx = 0; kx < kw; kx++)
                        {
                            float* from = sources[kx] + piece.Source, to = rows[kx] + piece.Panel * panelStrides[kx] + piece.Lane;
                            Avx512F.MaskStore(to, low, Vector512.Load(from));
                            Avx512F.MaskStore(to + 16, high, Vector512.Load(from + 16));
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Part of an output row's run that falls in one panel of the slab: <see cref="Count"/> floats from float
    /// <see cref="Source"/> of the run to lane <see cref="Lane"/> of panel <see cref="Panel"/>.
    /// </summary>
    private readonly struct RunPiece(int source, int panel, int lane, int count)
    {
        public int Source { get; } = source;
        public int Panel { get; } = panel;
        public int Lane { get; } = lane;
        public int Count { get; } = count;

        /// <summary>Positions [start, start + count) clipped to the slab [first, end), cut at the panels; returns the pieces written.</summary>
        public static int Split(int start, int count, int first, int end, RunPiece* pieces)
        {
            int begin = Math.Max(start, first), stop = Math.Min(start + count, end), written = 0;
            for (int position = begin; position < stop;)
            {
                int q = position - first, lane = q % Gemm.NR, length = Math.Min(Gemm.NR - lane, stop - position);
                pieces[written++] = new RunPiece(position - start, q / Gemm.NR, lane, length);
                position += length;
            }
            return written;
        }

        /// <summary>The piece of the run at <paramref name="run"/> (zeros when null) into a row of K whose first panel starts at <paramref name="row"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Copy(float* run, float* row, long panelStride) =>
            CopyPiece(run == null ? null : run + Source, row + Panel * panelStride + Lane, Count);
    }

    /// <summary>A slab of packed columns: where row p's floats of each panel start.</summary>
    private readonly struct PanelSlab(float* packed, int depth, int positions)
    {
        private readonly long _paddedPositions = (long)(positions + Gemm.NR - 1) / Gemm.NR * Gemm.NR;

        /// <summary>Row p of the first panel (rows are packed in blocks of <see cref="Gemm.KC"/>).</summary>
        public float* Row(int p)
        {
            int block = p / Gemm.KC * Gemm.KC;
            return packed + _paddedPositions * block + (long)(p - block) * Gemm.NR;
        }

        /// <summary>Floats from one panel to the next in row p's block.</summary>
        public long PanelStride(int p)
        {
            int block = p / Gemm.KC * Gemm.KC;
            return (long)Math.Min(Gemm.KC, depth - block) * Gemm.NR;
        }
    }

    /// <summary>
    /// Up to <see cref="Gemm.NR"/> floats from <paramref name="from"/>, or zeros when it is null: the vertical padding's
    /// pieces, and every piece on machines without AVX-512 (with it, the copies run inline in <see cref="Im2ColPanels"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyPiece(float* from, float* to, int count)
    {
        if (from != null)
        {
            new ReadOnlySpan<float>(from, count).CopyTo(new Span<float>(to, count));
            return;
        }
        if (Avx512F.IsSupported)
        {
            Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            Avx512F.MaskStore(to, Vector512.LessThan(lane, Vector512.Create(count)).AsSingle(), Vector512<float>.Zero);
            Avx512F.MaskStore(to + 16, Vector512.LessThan(lane, Vector512.Create(count - 16)).AsSingle(), Vector512<float>.Zero);
            return;
        }
        new Span<float>(to, count).Clear();
    }
}
