using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// One convolution's weights in the form its forward pass multiplies by (packed for the GEMM's micro-kernel, or
/// Winograd-transformed and packed), kept from one inference pass to the next instead of being prepared again on every
/// call. It is used only while the weights hold the same bits as those it was made from: every pass compares them,
/// byte for byte, with a copy kept here (one vectorised read of the weights and of the copy, a fraction of what
/// preparing them costs) and prepares them again where any byte differs. Writing <see cref="INetwork.Parameters"/>
/// directly, loading a checkpoint or a training step therefore need no notice, and a pass with the cache gives the same
/// bits as one without that runs the same algorithm (under <see cref="Conv2dAlgorithm.Auto"/> a cache also lets small
/// batches run the forward pass by Winograd, whose transformed filters it keeps: <see cref="Conv2dKernels.WinogradMinInferenceBatch"/>).
/// <para>
/// Generated networks keep one per convolution and pass it from their inference pass (Forward) only: in training the
/// weights change on every step. Memory, once an inference pass has used it: the copy (the layer's weights) and the
/// prepared form (about the weights' size when packed, about four times when transformed for Winograd F(4x4, 3x3),
/// 1.44 times for F(2x2, 5x5)), held until <see cref="Clear"/> or until the cache is collected with its network. A cache
/// holds one form: a layer whose calls alternate between two forms (Winograd from 16 output tiles a group, im2col
/// below; or a strided layer of a small plane, channel lanes at batch 1 and blocks of samples above) prepares its
/// weights on every call, as without a cache, plus the comparison and the copy.
/// </para>
/// Not safe for concurrent passes: a generated network holds its context's <see cref="CpuContext.PassLock"/> for a pass.
/// </summary>
public sealed unsafe class Conv2dWeightCache
{
    /// <summary>Floats of slack in the prepared buffer, so that its start can be moved to a 64-byte boundary.</summary>
    private const int AlignmentSlack = 16;

    private float[]? _source;   // the weights the prepared form was made from
    private float[]? _prepared; // pinned: the kernels read it through a pointer
    private Key _key;
    private bool _valid;

    /// <summary>How many times a pass prepared the weights (a pass that found them unchanged does not count).</summary>
    public int Preparations { get; private set; }

    /// <summary>Bytes held: the copy of the weights and their prepared form.</summary>
    public long Bytes => ((long)(_source?.Length ?? 0) + (_prepared?.Length ?? 0)) * sizeof(float);

    /// <summary>Releases what is held; the next pass that is given the cache prepares the weights again.</summary>
    public void Clear()
    {
        _source = null;
        _prepared = null;
        _valid = false;
    }

    /// <summary>
    /// The prepared form of <paramref name="weight"/> as <paramref name="form"/> lays it out for <paramref name="geometry"/>
    /// (<paramref name="length"/> floats), or null when the cache holds another form or other weights.
    /// </summary>
    internal float* Find(PreparedWeightForm form, in Conv2dGeometry geometry, long length, ReadOnlySpan<float> weight)
    {
        if (!_valid || _key != new Key(form, geometry, length)) return null;
        // Bytes, not floats: float equality calls -0 and +0 equal, and the packed form of one is not that of the other.
        if (!MemoryMarshal.AsBytes(weight).SequenceEqual(MemoryMarshal.AsBytes(_source.AsSpan()))) return null;
        return AlignedStart(_prepared!);
    }

    /// <summary>
    /// Room for <paramref name="length"/> floats of a prepared form, 64-byte aligned; what the cache held is no longer
    /// valid until <see cref="Commit"/>.
    /// </summary>
    internal float* Reserve(long length)
    {
        _valid = false;
        long floats = length + AlignmentSlack;
        if (_prepared is null || _prepared.LongLength < floats)
        {
            if (floats > Array.MaxLength)
                throw new InvalidOperationException($"A convolution's prepared weights would take {length} floats, more than an array holds.");
            _prepared = null; // let the old buffer go before the new one is taken
            _prepared = GC.AllocateUninitializedArray<float>((int)floats, pinned: true);
        }
        return AlignedStart(_prepared);
    }

    /// <summary>Marks the reserved buffer as the prepared form of <paramref name="weight"/>, which it keeps a copy of.</summary>
    internal void Commit(PreparedWeightForm form, in Conv2dGeometry geometry, long length, ReadOnlySpan<float> weight)
    {
        if (_source is null || _source.Length != weight.Length) _source = GC.AllocateUninitializedArray<float>(weight.Length);
        weight.CopyTo(_source);
        _key = new Key(form, geometry, length);
        _valid = true;
        Preparations++;
    }

    private static float* AlignedStart(float[] pinned)
    {
        nuint start = (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
        return (float*)((start + 63) & ~(nuint)63);
    }

    private readonly record struct Key(PreparedWeightForm Form, Conv2dGeometry Geometry, long Length);
}

/// <summary>Which layout a <see cref="Conv2dWeightCache"/> holds.</summary>
internal enum PreparedWeightForm
{
    /// <summary>Every group's weight packed whole for the GEMM (<see cref="Gemm.PackWhole"/>).</summary>
    GemmPacked,
    /// <summary>The Winograd forward pass's transformed filters, per block packed for its 36 GEMMs.</summary>
    Winograd,
    /// <summary>Every group's weight K-major in blocks of 48 or 64 output channels, for the forward pass with the channels in the vector lanes.</summary>
    ChannelLanes,
}
