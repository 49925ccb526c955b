using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Cpu;

/// <summary>Where the forward pass of im2col + GEMM puts its columns, or whether it builds none (tests compare the layouts; the results are the same bits).</summary>
internal enum ColumnLayout
{
    /// <summary>
    /// Strided convolutions: the channel lanes where they fit (<see cref="Conv2dKernels.UsesChannelLanes"/>), panels otherwise
    /// (<see cref="Conv2dKernels.UsesColumnPanels"/>); the column matrix for the others.
    /// </summary>
    Auto,
    /// <summary>The whole column matrix of a sample, then the GEMM packs it.</summary>
    Matrix,
    /// <summary>
    /// Slabs of output positions written straight into the GEMM's packed panels, for every shape that takes one sample to
    /// an item (not a direct 1x1 convolution, nor a small plane's block of samples) and whose rows fit the phases.
    /// </summary>
    Panels,
    /// <summary>
    /// No columns: the output channels in the vector lanes and the inputs broadcast (Conv2dKernels.ChannelLanes.cs), for
    /// every shape it takes (<see cref="Conv2dKernels.UsesChannelLanes"/>); <see cref="Auto"/> takes it where it would take
    /// panels. Other shapes as under <see cref="Auto"/>.
    /// </summary>
    ChannelLanes,
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
    /// Whether the forward pass runs in slabs of packed panels, unless it runs the channel lanes (<see cref="UsesChannelLanes"/>,
    /// checked first): under <see cref="ColumnLayout.Auto"/>, for convolutions with a column stride above 1 (one sample to
    /// an item, and a row narrow enough for the stride phases); those measured faster (docs/architecture.md).
    /// <see cref="ColumnLayout.Panels"/> takes every shape the phases fit.
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

    /// <summary>Widest kernel <see cref="Im2ColPanels"/> takes: it keeps an offset per kernel column on the stack.</summary>
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
        long phaseRows = 0;
        for (int first = 0; first < job.P; first += job.SlabPositions)
            phaseRows = Math.Max(phaseRows, PanelPhaseRowsLength(job.G, first, Math.Min(job.SlabPositions, job.P - first)));
        job.Ctx.ReserveScratch(ScratchSlot.Temporary, phaseRows);
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
        float* phaseRows = job.Ctx.Scratch(threadIndex, ScratchSlot.Temporary, PanelPhaseRowsLength(job.G, first, count));
        Im2ColPanels(job.G, job.Cg, job.Input + job.InputOffset(n, grp), first, count, packed, phaseRows);
        var epilogue = new GemmEpilogue(job.Bias == null ? null : job.Bias + grp * job.OCg, null, job.Relu);
        // output_g[OCg, first .. first + count) = weight_g[OCg, Kc] * columns[Kc, slab] + bias_g, ReLU
        Gemm.MultiplyPackedAB(job.OCg, count, job.Kc, job.PackedWeight + grp * job.PackedGroupLength, packed,
            job.Output + job.OutputOffset(n, grp) + first, job.P, epilogue, job.Ctx, threadIndex);
    }

    /// <summary>
    /// Floats of the buffer <see cref="Im2ColPanels"/> splits a slab's input rows into: the stride phases of every
    /// input row one channel of the slab reads (conv1: about 40 rows of 4 phases of 57 floats).
    /// </summary>
    internal static long PanelPhaseRowsLength(in Conv2dGeometry g, int firstPosition, int positions)
    {
        if (positions <= 0) return 0;
        int firstRow = firstPosition / g.OutWidth, lastRow = (firstPosition + positions - 1) / g.OutWidth;
        long rows = (long)(lastRow - firstRow) * g.StrideHeight + g.KernelHeight;
        return rows * PhaseCount(g) * PhaseLength(g);
    }

    private static int PhaseLength(in Conv2dGeometry g) => (g.InWidth + 2 * g.PaddingWidth + g.StrideWidth - 1) / g.StrideWidth;

    private static int PhaseCount(in Conv2dGeometry g) => Math.Min(g.StrideWidth, g.KernelWidth);

    /// <summary>
    /// Columns [<paramref name="firstPosition"/>, + <paramref name="positions"/>) of <see cref="Im2Col"/>'s matrix for
    /// <paramref name="channels"/> input channels, written as <see cref="Gemm.PackBRows"/> lays out a K x positions
    /// op(B) (K = channels * KH * KW), lanes past the last position zero. Channel by channel, the input rows the slab
    /// reads are split into their stride phases once (as <see cref="Im2ColPhased"/> does), into
    /// <paramref name="phaseRows"/> (<see cref="PanelPhaseRowsLength"/> floats). Then each panel's row of K is built
    /// whole in two registers: the panel's 32 positions fall in a few runs along output rows, and kernel column kx's
    /// values for a run are contiguous in one phase, so each run is one or two masked loads. Whole, aligned panel rows
    /// are stored; writing the runs piece by piece at their lanes split most stores across cache lines.
    /// </summary>
    internal static void Im2ColPanels(in Conv2dGeometry g, int channels, float* input, int firstPosition, int positions, float* packed,
        float* phaseRows)
    {
        int h = g.InHeight, w = g.InWidth, oh = g.OutHeight, ow = g.OutWidth;
        int kh = g.KernelHeight, kw = g.KernelWidth, sh = g.StrideHeight, sw = g.StrideWidth, ph = g.PaddingHeight;
        int depth = channels * kh * kw, endPosition = firstPosition + positions;
        if (positions <= 0 || firstPosition < 0 || endPosition > oh * ow)
            throw new ArgumentOutOfRangeException(nameof(positions), $"Positions {firstPosition} to {endPosition} of a {oh}x{ow} output do not exist.");
        if (!PanelsFit(g))
            throw new ArgumentException($"A {kh}x{kw} kernel at column stride {sw} over rows of {w} is too wide for the panels (kernels up to {MaxPanelKernelWidth} wide, rows whose stride phases fit {MaxPhasedRow} floats).", nameof(g));
        var slab = new PanelSlab(packed, depth, positions);
        int panels = (positions + Gemm.NR - 1) / Gemm.NR;
        int firstRow = firstPosition / ow, lastRow = (endPosition - 1) / ow;
        int phaseLength = PhaseLength(g), phaseCount = PhaseCount(g), rowLength = phaseCount * phaseLength;
        // The slab's input rows: [iyFirst, iyEnd), within the image (rows in the padding read zeros).
        int iyFirst = Math.Max(0, firstRow * sh - ph), iyEnd = Math.Min(h, lastRow * sh - ph + kh);
        // Where kernel column kx's values start in a split row: its phase, then kx / SW floats on.
        int* phaseOffset = stackalloc int[kw];
        for (int kx = 0; kx < kw; kx++) phaseOffset[kx] = (kx % sw) * phaseLength + kx / sw;
        // A panel's runs along output rows: output row and column, the lane it starts at, its length.
        int* runRow = stackalloc int[Gemm.NR];
        int* runColumn = stackalloc int[Gemm.NR];
        int* runLane = stackalloc int[Gemm.NR];
        int* runCount = stackalloc int[Gemm.NR];
        // Per run, which lanes of the panel's two vectors it fills.
        var runLow = stackalloc Vector512<float>[Gemm.NR];
        var runHigh = stackalloc Vector512<float>[Gemm.NR];
        // The runs one kernel row reads from the image (not from the vertical padding), packed to the front, each with the
        // split row it reads shifted back by its first lane, so that lane l reads float l.
        float** runSource = stackalloc float*[Gemm.NR];
        int* activeLane = stackalloc int[Gemm.NR];
        int* activeCount = stackalloc int[Gemm.NR];
        var activeLow = stackalloc Vector512<float>[Gemm.NR];
        var activeHigh = stackalloc Vector512<float>[Gemm.NR];
        Vector512<int> lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int c = 0; c < channels; c++)
        {
            float* plane = input + (long)c * h * w;
            for (int iy = iyFirst; iy < iyEnd; iy++)
                SplitIntoPhases(g, plane + (long)iy * w, phaseRows + (long)(iy - iyFirst) * rowLength, phaseCount, phaseLength);
            for (int j = 0; j < panels; j++)
            {
                int runs = 0;
                for (int position = firstPosition + j * Gemm.NR, stop = Math.Min(endPosition, position + Gemm.NR); position < stop; runs++)
                {
                    int y = position / ow, x = position % ow;
                    runRow[runs] = y;
                    runColumn[runs] = x;
                    runLane[runs] = position - firstPosition - j * Gemm.NR;
                    runCount[runs] = Math.Min(ow - x, stop - position);
                    if (Avx512F.IsSupported)
                    {
                        Vector512<int> first = Vector512.Create(runLane[runs]), end = Vector512.Create(runLane[runs] + runCount[runs]);
                        Vector512<int> upper = lane + Vector512.Create(16);
                        runLow[runs] = (Vector512.GreaterThanOrEqual(lane, first) & Vector512.LessThan(lane, end)).AsSingle();
                        runHigh[runs] = (Vector512.GreaterThanOrEqual(upper, first) & Vector512.LessThan(upper, end)).AsSingle();
                    }
                    position += runCount[runs];
                }
                for (int ky = 0; ky < kh; ky++)
                {
                    // The runs this kernel row reads from the image; those in the vertical padding leave their lanes zero.
                    int active = 0;
                    for (int r = 0; r < runs; r++)
                    {
                        int iy = runRow[r] * sh - ph + ky;
                        if ((uint)iy >= (uint)h) continue;
                        runSource[active] = phaseRows + (long)(iy - iyFirst) * rowLength + runColumn[r] - runLane[r];
                        activeLow[active] = runLow[r];
                        activeHigh[active] = runHigh[r];
                        activeLane[active] = runLane[r];
                        activeCount[active] = runCount[r];
                        active++;
                    }
                    int p0 = (c * kh + ky) * kw;
                    // A kernel row's KW rows of K are consecutive NR-float rows of the panel unless a block of KC ends among them.
                    bool oneBlock = p0 / Gemm.KC == (p0 + kw - 1) / Gemm.KC;
                    float* rowStart = slab.Row(p0) + j * slab.PanelStride(p0);
                    for (int kx = 0; kx < kw; kx++)
                    {
                        float* to = oneBlock ? rowStart + kx * Gemm.NR : slab.Row(p0 + kx) + j * slab.PanelStride(p0 + kx);
                        int offset = phaseOffset[kx];
                        if (Avx512F.IsSupported)
                        {
                            // Masked-off lanes are neither read nor faulted on (a run's source is shifted back by its first lane).
                            Vector512<float> low = Vector512<float>.Zero, high = Vector512<float>.Zero;
                            for (int r = 0; r < active; r++)
                            {
                                float* from = runSource[r] + offset;
                                low = Avx512F.MaskLoad(from, activeLow[r], low);
                                high = Avx512F.MaskLoad(from + 16, activeHigh[r], high);
                            }
                            low.Store(to);
                            high.Store(to + 16);
                            continue;
                        }
                        new Span<float>(to, Gemm.NR).Clear();
                        for (int r = 0; r < active; r++)
                            new ReadOnlySpan<float>(runSource[r] + offset + activeLane[r], activeCount[r]).CopyTo(new Span<float>(to + activeLane[r], activeCount[r]));
                    }
                }
            }
        }
    }

    /// <summary>A slab of packed columns: where row p's floats of each panel start.</summary>
    private readonly struct PanelSlab(float* packed, int depth, int positions)
    {
        private readonly long _paddedPositions = (long)(positions + Gemm.NR - 1) / Gemm.NR * Gemm.NR;

        /// <summary>Row p of the first panel (rows are packed in blocks of <see cref="Gemm.KC"/>).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float* Row(int p)
        {
            int block = p / Gemm.KC * Gemm.KC;
            return packed + _paddedPositions * block + (long)(p - block) * Gemm.NR;
        }

        /// <summary>Floats from one panel to the next in row p's block.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public long PanelStride(int p)
        {
            int block = p / Gemm.KC * Gemm.KC;
            return (long)Math.Min(Gemm.KC, depth - block) * Gemm.NR;
        }
    }
}
