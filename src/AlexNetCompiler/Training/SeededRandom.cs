using System.Runtime.CompilerServices;

namespace AlexNetCompiler.Training;

/// <summary>
/// A small, fast, reproducible generator: xoshiro256** (Blackman and Vigna, "Scrambled linear
/// pseudorandom number generators", 2018) seeded through splitmix64 as its authors recommend, plus
/// uniform and Box-Muller normal samples. The same seed gives the same sequence on every machine.
/// Not thread-safe: give each thread its own instance (see <see cref="ForStream"/>).
/// </summary>
public sealed class SeededRandom
{
    private ulong _s0, _s1, _s2, _s3;
    private double _spareNormal;
    private bool _hasSpareNormal;

    public SeededRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>An independent generator for sub-stream <paramref name="stream"/> of <paramref name="seed"/>
    /// (e.g. one per parameter tensor or per chunk), so results do not depend on the order work is done in.</summary>
    public static SeededRandom ForStream(ulong seed, ulong stream)
    {
        ulong x = seed ^ 0xD1B54A32D192ED03UL;
        ulong mixed = SplitMix64(ref x) ^ (stream * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL);
        ulong y = mixed;
        return new SeededRandom(SplitMix64(ref y));
    }

    /// <summary>The next 64 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
    public float NextSingle() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform integer in [0, maxExclusive), without modulo bias (Lemire's multiply-shift with rejection).</summary>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        uint range = (uint)maxExclusive;
        ulong m = (NextUInt64() >> 32) * range;
        if ((uint)m < range)
        {
            uint rejectBelow = unchecked(0u - range) % range; // 2^32 mod range
            while ((uint)m < rejectBelow) m = (NextUInt64() >> 32) * range;
        }
        return (int)(m >> 32);
    }

    /// <summary>Standard normal sample (Box-Muller; the second value of each pair is kept for the next call).</summary>
    public double NextGaussian()
    {
        if (_hasSpareNormal)
        {
            _hasSpareNormal = false;
            return _spareNormal;
        }
        double u1 = 1.0 - NextDouble(); // (0, 1]: log(u1) is finite
        double u2 = NextDouble();
        double radius = Math.Sqrt(-2.0 * Math.Log(u1));
        (double sin, double cos) = Math.SinCos(2.0 * Math.PI * u2);
        _spareNormal = radius * sin;
        _hasSpareNormal = true;
        return radius * cos;
    }

    /// <summary>Normal sample with the given mean and standard deviation.</summary>
    public float NextGaussian(float mean, float standardDeviation) => (float)(mean + standardDeviation * NextGaussian());

    private static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
