namespace AlexNetCompiler.Data;

/// <summary>
/// A small seeded generator (SplitMix64, Steele et al. 2014) for data shuffling and augmentation.
/// A value type so that each sample can have its own stream derived from (seed, epoch, index): the
/// result then does not depend on which thread prepares which batch.
/// </summary>
public struct SplitMixRandom
{
    private ulong _state;

    public SplitMixRandom(ulong seed) => _state = seed;

    /// <summary>A generator whose stream is a pure function of the three values.</summary>
    public static SplitMixRandom For(ulong seed, long stream, long index) =>
        new(Mix(Mix(seed ^ 0x9E3779B97F4A7C15UL) ^ (ulong)stream * 0xBF58476D1CE4E5B9UL ^ Mix((ulong)index + 0x632BE59BD9B4E019UL)));

    /// <summary>The SplitMix64 finaliser: a bijective mix of 64 bits.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 24 bits, exactly representable as float.</summary>
    public float NextSingle() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform in [min, max).</summary>
    public float NextSingle(float min, float max) => min + (max - min) * NextSingle();

    /// <summary>Uniform integer in [0, bound), bound &gt; 0 (Lemire's multiply-shift; the bias is below 2^-32 for the small bounds used here).</summary>
    public int NextInt(int bound) => (int)(((NextUInt64() >> 32) * (ulong)bound) >> 32);

    public bool NextBool() => (NextUInt64() >> 63) != 0;

    /// <summary>
    /// Standard normal N(0, 1) by the Box-Muller transform of two uniforms; the first is taken as 1 - u, in (0, 1],
    /// so that its logarithm is finite.
    /// </summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - (NextUInt64() >> 11) * (1.0 / (1UL << 53));
        double u2 = (NextUInt64() >> 11) * (1.0 / (1UL << 53));
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle(Span<int> values)
    {
        for (int i = values.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }
}
