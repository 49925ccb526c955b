namespace AlexNetCompiler.Cuda;

// The launch plan a generated network carries next to its CUDA source: which device buffers to allocate,
// and which kernels to launch, in order, for the forward pass, the loss and the backward pass. The
// generator computes it from the network's shapes; CudaNetworkRunner executes it. Only the batch size
// (and the dropout seed) vary at run time.

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
}

public readonly record struct CudaArg(CudaArgKind Kind, string Buffer, long Offset)
{
    public static CudaArg Of(string buffer, long offset = 0) => new(CudaArgKind.Buffer, buffer, offset);
    public static CudaArg Null => new(CudaArgKind.Null, "", 0);
    public static CudaArg Batch => new(CudaArgKind.Batch, "", 0);
    public static CudaArg DropoutSeed => new(CudaArgKind.DropoutSeed, "", 0);
    public static CudaArg DropoutEnabled => new(CudaArgKind.DropoutEnabled, "", 0);
}

/// <summary>One step of a pass: a kernel launch or zeroing a buffer range.</summary>
public abstract record CudaStep(string Comment);

/// <summary>Launch Kernel on a (X, Y, Z) grid of BlockSize-thread blocks. FlopsPerSample counts the GEMM work (2 per multiply-add).</summary>
public sealed record CudaLaunch(string Kernel, CudaGridDim GridX, CudaGridDim GridY, CudaGridDim GridZ, int BlockSize, CudaArg[] Args, string Comment, long FlopsPerSample = 0)
    : CudaStep(Comment);

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
    public const string Input = "input";
    public const string Labels = "labels";
    public const string Losses = "losses";
    public const string Parameters = "params";
    public const string Gradients = "grads";
    public const string Velocity = "velocity";

    /// <summary>Every kernel the plan launches, once each (for compilation checks and loading).</summary>
    public IEnumerable<string> KernelNames =>
        Forward.Concat(Loss).Concat(Backward).OfType<CudaLaunch>().Select(l => l.Kernel).Append(SgdKernel).Distinct();
}
