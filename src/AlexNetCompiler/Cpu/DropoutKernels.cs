using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// Inverted dropout (Srivastava et al. 2014): a kept element is scaled by 1/(1-p) in training, so inference
/// is the identity. Whether element i is kept is a pure function of (seed, i): a splitmix64 finaliser
/// (Steele, Lea, Flood 2014) of the seed and the index, compared with a 24-bit threshold. Backward
/// recomputes the mask instead of storing it, and the result does not depend on thread count or order.
/// The input and output spans may be the same buffer.
/// </summary>
public static class DropoutKernels
{
    private const int ThresholdBits = 24;

    /// <summary>
    /// The seed of the dropout layer at <paramref name="layerIndex"/> in a network's layer table, for a step's dropout
    /// seed: the formula the generated CPU code and the CUDA prelude apply inline (seed + index x golden ratio).
    /// </summary>
    public static ulong LayerSeed(ulong dropoutSeed, int layerIndex) => unchecked(dropoutSeed + (ulong)layerIndex * 0x9E3779B97F4A7C15UL);

    /// <summary>True when element <paramref name="index"/> survives dropout with drop probability p under seed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Keep(float p, ulong seed, long index) =>
        (Hash(seed, index) >> (64 - ThresholdBits)) >= DropThreshold(p);

    /// <summary>
    /// output[i] = Keep(p, seed, firstIndex + i) ? input[i] * (1 / (1 - p)) : 0; the specification, one element at a time.
    /// <paramref name="firstIndex"/> is where the spans start in a larger tensor (a data-parallel shard of a batch), so a
    /// shard draws the mask that the whole batch draws for its elements.
    /// </summary>
    public static void ForwardReference(float p, ulong seed, ReadOnlySpan<float> input, Span<float> output, long firstIndex = 0)
    {
        ThrowIfInvalid(p, input.Length, output.Length, "input", "output", firstIndex);
        float scale = p >= 1f ? 0f : 1f / (1f - p); // p = 1 drops everything; 1/(1-p) would be infinite
        for (int i = 0; i < input.Length; i++)
            output[i] = Keep(p, seed, firstIndex + i) ? input[i] * scale : 0f;
    }

    /// <summary>dInput[i] = Keep(p, seed, firstIndex + i) ? dOutput[i] * (1 / (1 - p)) : 0: the forward mask, recomputed.</summary>
    public static void BackwardReference(float p, ulong seed, ReadOnlySpan<float> dOutput, Span<float> dInput, long firstIndex = 0) =>
        ForwardReference(p, seed, dOutput, dInput, firstIndex);

    /// <summary>ForwardReference, eight or sixteen hashes at a time.</summary>
    public static void Forward(float p, ulong seed, ReadOnlySpan<float> input, Span<float> output, long firstIndex = 0)
    {
        ThrowIfInvalid(p, input.Length, output.Length, "input", "output", firstIndex);
        ApplyMask(p, seed, input, output, firstIndex);
    }

    /// <summary>BackwardReference, vectorised (the same mask as Forward).</summary>
    public static void Backward(float p, ulong seed, ReadOnlySpan<float> dOutput, Span<float> dInput, long firstIndex = 0)
    {
        ThrowIfInvalid(p, dOutput.Length, dInput.Length, "dOutput", "dInput", firstIndex);
        ApplyMask(p, seed, dOutput, dInput, firstIndex);
    }

    /// <summary>The number of the 2^24 hash buckets that are dropped: round(p * 2^24).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong DropThreshold(float p) => (ulong)Math.Round((double)p * (1 << ThresholdBits));

    /// <summary>splitmix64's finaliser applied twice: once to the seed, once to the seed-mixed index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Hash(ulong seed, long index)
    {
        ulong z = Mix(seed + 0x9E3779B97F4A7C15UL) + (ulong)index * 0x9E3779B97F4A7C15UL;
        return Mix(z);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static void ApplyMask(float p, ulong seed, ReadOnlySpan<float> source, Span<float> destination, long firstIndex)
    {
        if (p >= 1f)
        {
            destination.Clear(); // everything dropped
            return;
        }
        float scale = 1f / (1f - p);
        ulong threshold = DropThreshold(p);
        ulong seedMix = Mix(seed + 0x9E3779B97F4A7C15UL);
        ulong offset = (ulong)firstIndex;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            ref float from = ref MemoryMarshal.GetReference(source);
            ref float to = ref MemoryMarshal.GetReference(destination);
            var golden = Vector512.Create(0x9E3779B97F4A7C15UL);
            var seedVector = Vector512.Create(seedMix);
            var thresholdVector = Vector512.Create(threshold);
            var scaleVector = Vector512.Create(scale);
            var lanes = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
            for (; i <= source.Length - 16; i += 16)
            {
                var low = Vector512.Create(offset + (ulong)i) + lanes;
                var high = low + Vector512.Create(8UL);
                var keepLow = Vector512.GreaterThanOrEqual(Vector512.ShiftRightLogical(Mix(seedVector + low * golden), 64 - ThresholdBits), thresholdVector);
                var keepHigh = Vector512.GreaterThanOrEqual(Vector512.ShiftRightLogical(Mix(seedVector + high * golden), 64 - ThresholdBits), thresholdVector);
                // All-ones or zero per 64-bit lane; narrowing keeps the low 32 bits, so still all-ones or zero.
                Vector512<float> keep = Vector512.Narrow(keepLow, keepHigh).AsSingle();
                var values = Vector512.LoadUnsafe(ref from, (nuint)i) * scaleVector;
                Vector512.ConditionalSelect(keep, values, Vector512<float>.Zero).StoreUnsafe(ref to, (nuint)i);
            }
        }
        for (; i < source.Length; i++)
        {
            // Same as Keep(p, seed, firstIndex + i), with the seed's mix hoisted out of the loop.
            ulong hash = Mix(seedMix + (offset + (ulong)i) * 0x9E3779B97F4A7C15UL);
            destination[i] = (hash >> (64 - ThresholdBits)) >= threshold ? source[i] * scale : 0f;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Mix(Vector512<ulong> z)
    {
        z = (z ^ Vector512.ShiftRightLogical(z, 30)) * Vector512.Create(0xBF58476D1CE4E5B9UL);
        z = (z ^ Vector512.ShiftRightLogical(z, 27)) * Vector512.Create(0x94D049BB133111EBUL);
        return z ^ Vector512.ShiftRightLogical(z, 31);
    }

    private static void ThrowIfInvalid(float p, int sourceLength, int destinationLength, string sourceName, string destinationName, long firstIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstIndex);
        if (!(p >= 0f && p <= 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: the drop probability must be in [0, 1].");
        if (sourceLength != destinationLength)
            throw new ArgumentException($"Dropout: {sourceName} has {sourceLength} floats but {destinationName} has {destinationLength}.");
    }
}
