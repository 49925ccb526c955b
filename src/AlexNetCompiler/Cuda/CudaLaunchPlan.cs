namespace AlexNetCompiler.Cuda;

// The launch plan a generated network carries next to its CUDA source: which device buffers to allocate,
// and which kernels to launch, in order, for the forward pass, the loss and the backward pass. The
// generator computes it from the network's shapes; CudaNetworkRunner executes it. Only the batch size
// (and the dropout seed and first sample) vary at run time.

/// <summary>A grid dimension: ceil((PerSample * batch + Fixed) / Divisor).</summary>
public readonly record struct CudaGridDim(long PerSample, long Fixed, long Divisor)
{
    public static CudaGridDim One => new(0, 1, 1);
    public static CudaGridDim Constant(long blocks) => new(0, blocks, 1);

    public uint Evaluate(int batch)
    {
        long work = PerSample * batch + Fixed;
        long blocks = (work + Divisor - 1) / Divisor;
        if (blocks <= 0 || blocks > uint.MaxValue) throw new ArgumentOutOfRangeException(nameof(batch), $"Grid dimension {blocks} out of range at batch {batch}.");
        return (uint)blocks;
    }
}

/// <summary>What a kernel parameter receives.</summary>
public enum CudaArgKind
{
    /// <summary>Device pointer to Buffer, advanced by Offset elements.</summary>
    Buffer,
    /// <summary>A null pointer (an optional tensor that this layer does not have).</summary>
    Null,
    /// <summary>The batch size (int).</summary>
    Batch,
    /// <summary>The dropout seed (unsigned 64-bit).</summary>
    DropoutSeed,
    /// <summary>1 when dropout is on for this pass, else 0 (int).</summary>
    DropoutEnabled,
    /// <summary>
    /// Where the launch's dropout mask starts in the whole batch's (unsigned 64-bit): the pass's first sample (a
    /// data-parallel shard's offset in its batch, 0 for a whole batch) x SampleLength.
    /// </summary>
    DropoutOffset,
}

/// <param name="SampleLength">For <see cref="CudaArgKind.DropoutOffset"/>: the per-sample length of the tensor the mask covers.</param>
public readonly record struct CudaArg(CudaArgKind Kind, string Buffer, long Offset, long SampleLength = 0)
{
    public static CudaArg Of(string buffer, long offset = 0) => new(CudaArgKind.Buffer, buffer, offset);
    public static CudaArg Null => new(CudaArgKind.Null, "", 0);
    public static CudaArg Batch => new(CudaArgKind.Batch, "", 0);
    public static CudaArg DropoutSeed => new(CudaArgKind.DropoutSeed, "", 0);
    public static CudaArg DropoutEnabled => new(CudaArgKind.DropoutEnabled, "", 0);
    public static CudaArg DropoutOffset(long sampleLength) => new(CudaArgKind.DropoutOffset, "", 0, sampleLength);
}

/// <summary>One step of a pass: a kernel launch or zeroing a buffer range.</summary>
public abstract record CudaStep(string Comment);

/// <summary>
/// Launch Kernel on a (X, Y, Z) grid of BlockSize-thread blocks. FlopsPerSample counts the GEMM work (2 per
/// multiply-add). GEMM kernels carry their GEMM's extents, because their grid depends on the block tile the module
/// was compiled with; GridX and GridY are then the grid for the default 64 x 64 tile.
/// </summary>
public sealed record CudaLaunch(string Kernel, CudaGridDim GridX, CudaGridDim GridY, CudaGridDim GridZ, int BlockSize, CudaArg[] Args, string Comment, long FlopsPerSample = 0, CudaGemm? Gemm = null)
    : CudaStep(Comment)
{
    /// <summary>The grid at this batch for a module compiled with the given GEMM tile.</summary>
    public (uint X, uint Y, uint Z) Grid(int batch, CudaGemmTile tile)
    {
        uint z = GridZ.Evaluate(batch);
        if (Gemm is null) return (GridX.Evaluate(batch), GridY.Evaluate(batch), z);
        long m = Gemm.M.Evaluate(batch), n = Gemm.N.Evaluate(batch);
        long tilesM = (m + tile.M - 1) / tile.M, tilesN = (n + tile.N - 1) / tile.N;
        return Gemm.SplitReduction
            ? (GridX.Evaluate(batch), checked((uint)(tilesM * tilesN)), z)
            : (checked((uint)tilesN), checked((uint)tilesM), z);
    }
}

/// <summary>A GEMM extent: PerSample * batch + Fixed rows or columns.</summary>
public readonly record struct CudaExtent(long PerSample, long Fixed)
{
    public long Evaluate(int batch) => PerSample * batch + Fixed;
}

/// <summary>
/// The GEMM a launch computes, C = M x N (per grid z slice), so the runner can size the grid for any tile:
/// (ceil(N / BN), ceil(M / BM)), or with SplitReduction (the convolution weight gradient, whose reduction is cut
/// into chunks along x) (GridX, ceil(M / BM) * ceil(N / BN)).
/// </summary>
public sealed record CudaGemm(CudaExtent M, CudaExtent N, bool SplitReduction = false);

/// <summary>
/// A GEMM block tile (rows x columns of C per 256-thread block) that the prelude can be compiled for
/// (-DALEXNET_GEMM_BM / -DALEXNET_GEMM_BN). Small tiles give more blocks on small GEMMs; large ones reuse each
/// loaded element more (8 x 8 outputs per thread at 128 x 128).
/// </summary>
public readonly record struct CudaGemmTile(int M, int N)
{
    public static CudaGemmTile Default => new(64, 64);

    /// <summary>Every tile the prelude supports, the default first.</summary>
    public static IReadOnlyList<CudaGemmTile> All { get; } = [new(64, 64), new(128, 64), new(64, 128), new(128, 128)];

    /// <summary>The NVRTC defines that select this tile.</summary>
    public IEnumerable<string> Defines => [$"-DALEXNET_GEMM_BM={M}", $"-DALEXNET_GEMM_BN={N}"];

    public override string ToString() => $"{M}x{N}";

    /// <summary>Parses "128x64"; throws for a tile the prelude does not support, naming those it does.</summary>
    public static CudaGemmTile Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Trim().Split('x', 'X');
        if (parts.Length == 2 && int.TryParse(parts[0], out int m) && int.TryParse(parts[1], out int n) && All.Contains(new CudaGemmTile(m, n)))
            return new CudaGemmTile(m, n);
        throw new FormatException($"'{text}' is not a supported GEMM tile; use one of {string.Join(", ", All)}.");
    }

    /// <summary>Parses a comma-separated list, or "all".</summary>
    public static IReadOnlyList<CudaGemmTile> ParseList(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return All;
        var tiles = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Parse).Distinct().ToArray();
        if (tiles.Length == 0) throw new FormatException("No GEMM tile given; use one or more of " + string.Join(", ", All) + ", or all.");
        return tiles;
    }
}

/// <summary>Zero Length elements of Buffer from Offset (gradients that kernels accumulate atomically).</summary>
public sealed record CudaZero(string Buffer, long Offset, long Length, string Comment) : CudaStep(Comment);

/// <summary>A device buffer: PerSampleLength * maxBatch + FixedLength elements of 4 bytes (float, or int when IsInt32).</summary>
public sealed record CudaBufferSpec(string Name, long PerSampleLength, long FixedLength, bool IsInt32)
{
    public long Length(int maxBatch) => PerSampleLength * maxBatch + FixedLength;
}

/// <summary>
/// Everything the runtime needs to run a network on the GPU. Well-known buffers: "input" (float, per sample),
/// "labels" (int, 1 per sample), "losses" (float, 1 per sample), "params", "grads", "velocity" (fixed,
/// ParameterCount floats), and LogitsBuffer.
/// </summary>
public sealed record CudaLaunchPlan(
    string NetworkName,
    int InputLength,
    int ClassCount,
    long ParameterCount,
    string LogitsBuffer,
    CudaBufferSpec[] Buffers,
    CudaStep[] Forward,
    CudaStep[] Loss,
    CudaStep[] Backward,
    string SgdKernel,
    long ForwardFlopsPerSample,
    long TrainingFlopsPerSample)
{
    public const string Input = CudaContract.InputBuffer;
    public const string Labels = CudaContract.LabelsBuffer;
    public const string Losses = CudaContract.LossesBuffer;
    public const string Parameters = CudaContract.ParametersBuffer;
    public const string Gradients = CudaContract.GradientsBuffer;
    public const string Velocity = CudaContract.VelocityBuffer;

    /// <summary>Every kernel the plan launches, once each (for compilation checks and loading).</summary>
    public IEnumerable<string> KernelNames =>
        Forward.Concat(Loss).Concat(Backward).OfType<CudaLaunch>().Select(l => l.Kernel).Append(SgdKernel).Distinct();
}
