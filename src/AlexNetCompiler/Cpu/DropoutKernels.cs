using System.Runtime.CompilerServices;

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

    /// <summary>True when element <paramref name="index"/> survives dropout with drop probability p under seed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Keep(float p, ulong seed, long index) =>
        (Hash(seed, index) >> (64 - ThresholdBits)) >= DropThreshold(p);

    /// <summary>output[i] = Keep(p, seed, i) ? input[i] / (1 - p) : 0.</summary>
    public static void Forward(float p, ulong seed, ReadOnlySpan<float> input, Span<float> output)
    {
        ThrowIfInvalid(p, input.Length, output.Length, "input", "output");
        ApplyMask(p, seed, input, output);
    }

    /// <summary>dInput[i] = Keep(p, seed, i) ? dOutput[i] / (1 - p) : 0 (the same mask as the forward pass).</summary>
    public static void Backward(float p, ulong seed, ReadOnlySpan<float> dOutput, Span<float> dInput)
    {
        ThrowIfInvalid(p, dOutput.Length, dInput.Length, "dOutput", "dInput");
        ApplyMask(p, seed, dOutput, dInput);
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

    private static void ApplyMask(float p, ulong seed, ReadOnlySpan<float> source, Span<float> destination)
    {
        if (p >= 1f)
        {
            destination.Clear(); // everything dropped; 1/(1-p) would be infinite
            return;
        }
        float scale = 1f / (1f - p);
        ulong threshold = DropThreshold(p);
        ulong seedMix = Mix(seed + 0x9E3779B97F4A7C15UL);
        for (int i = 0; i < source.Length; i++)
        {
            // Same as Keep(p, seed, i), with the seed's mix hoisted out of the loop.
            ulong hash = Mix(seedMix + (ulong)i * 0x9E3779B97F4A7C15UL);
            destination[i] = (hash >> (64 - ThresholdBits)) >= threshold ? source[i] * scale : 0f;
        }
    }

    private static void ThrowIfInvalid(float p, int sourceLength, int destinationLength, string sourceName, string destinationName)
    {
        if (!(p >= 0f && p <= 1f))
            throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: the drop probability must be in [0, 1].");
        if (sourceLength != destinationLength)
            throw new ArgumentException($"Dropout: {sourceName} has {sourceLength} floats but {destinationName} has {destinationLength}.");
    }
}
