namespace AlexNetCompiler.Tests.Cpu;

/// <summary>Comparisons of a fast kernel's float32 result with a reference, and seeded test data.</summary>
internal static class KernelAssert
{
    /// <summary>Unit roundoff of float32.</summary>
    public const double U = 1.0 / (1 << 24);

    /// <summary>
    /// Higham's bound for a float sum computed with a chain of at most <paramref name="roundings"/> roundings
    /// ("Accuracy and Stability of Numerical Algorithms", 2nd ed., eq. 3.5 / lemma 3.1):
    /// |computed - exact| &lt;= gamma_n * sum |terms|, gamma_n = n u / (1 - n u). The reference accumulates in double
    /// and rounds once (half an ulp of its value), so each element must satisfy
    /// |fast - ref| &lt;= gamma_n * magnitude + u * |ref|, where magnitude = sum of |terms| (the same kernel run on
    /// absolute values). A missing or doubled term, a wrong index or a wrong sign breaks this by orders of magnitude.
    /// </summary>
    public static void WithinSummationBound(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, ReadOnlySpan<float> magnitude, int roundings, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double gamma = roundings * U / (1 - roundings * U);
        for (int i = 0; i < expected.Length; i++)
        {
            double bound = gamma * magnitude[i] + U * Math.Abs(expected[i]) + 1e-30;
            double diff = Math.Abs((double)actual[i] - expected[i]);
            if (!(diff <= bound))
                Assert.Fail($"{what}: element {i}: fast {actual[i]:R}, reference {expected[i]:R}, |diff| {diff:E3} > bound {bound:E3} (magnitude {magnitude[i]:E3}, {roundings} roundings)");
        }
    }

    /// <summary>|actual - expected| &lt;= relative * scale[i] for every element (scale: a magnitude the error is proportional to).</summary>
    public static void WithinRelative(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, ReadOnlySpan<float> scale, double relative, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double bound = relative * Math.Abs(scale[i]) + 1e-30;
            double diff = Math.Abs((double)actual[i] - expected[i]);
            if (!(diff <= bound))
                Assert.Fail($"{what}: element {i}: fast {actual[i]:R}, reference {expected[i]:R}, |diff| {diff:E3} > {relative:E1} x {Math.Abs(scale[i]):E3}");
        }
    }

    public static float[] Random(int length, int seed, float low = -1f, float high = 1f)
    {
        var rng = new Random(seed);
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = low + (float)rng.NextDouble() * (high - low);
        return x;
    }

    public static float[] Abs(ReadOnlySpan<float> x)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = Math.Abs(x[i]);
        return y;
    }

    public static float[] NegativeAbs(ReadOnlySpan<float> x)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = -Math.Abs(x[i]);
        return y;
    }
}
