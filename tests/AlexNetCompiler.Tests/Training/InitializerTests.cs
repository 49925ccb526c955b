using AlexNetCompiler.Training;

namespace AlexNetCompiler.Tests.Training;

public sealed class InitializerTests
{
    private static readonly NetworkDescriptor Network = TestNetworks.Small;

    private static float[] Initialized(InitScheme scheme, ulong seed)
    {
        var parameters = new float[Network.ParameterCount];
        parameters.AsSpan().Fill(float.NaN); // every element must be written
        Initializer.Initialize(Network, parameters, scheme, seed);
        return parameters;
    }

    private static (double Mean, double Std) Moments(ReadOnlySpan<float> values)
    {
        double sum = 0, sumSquares = 0;
        foreach (float v in values) { sum += v; sumSquares += (double)v * v; }
        double mean = sum / values.Length;
        return (mean, Math.Sqrt(sumSquares / values.Length - mean * mean));
    }

    [Theory]
    [InlineData(InitScheme.Paper)]
    [InlineData(InitScheme.He)]
    public void WeightStatisticsAndBiasesFollowTheScheme(InitScheme scheme)
    {
        float[] parameters = Initialized(scheme, 2012);
        foreach (ParameterDescriptor p in Network.Parameters)
        {
            ReadOnlySpan<float> values = parameters.AsSpan(p.Offset, p.Length);
            if (p.Role == ParameterRole.Bias)
            {
                float expected = scheme == InitScheme.Paper ? p.PaperBiasValue : 0f;
                Assert.All(values.ToArray(), v => Assert.Equal(expected, v));
                continue;
            }
            double sigma = scheme == InitScheme.Paper ? 0.01 : Math.Sqrt(2.0 / p.FanIn);
            var (mean, std) = Moments(values);
            // For n normal samples the sample mean has standard error sigma/sqrt(n) and the sample standard
            // deviation sigma/sqrt(2n); allow 5 standard errors (n >= 600 here).
            int n = p.Length;
            Assert.InRange(mean, -5 * sigma / Math.Sqrt(n), 5 * sigma / Math.Sqrt(n));
            Assert.InRange(std, sigma * (1 - 5 / Math.Sqrt(2.0 * n)), sigma * (1 + 5 / Math.Sqrt(2.0 * n)));
        }
    }

    [Fact]
    public void SameSeedReproducesDifferentSeedDiffers()
    {
        Assert.Equal(Initialized(InitScheme.He, 1), Initialized(InitScheme.He, 1));
        Assert.NotEqual(Initialized(InitScheme.He, 1), Initialized(InitScheme.He, 2));
    }

    [Fact]
    public void LargeTensorIsIndependentOfThreadScheduling()
    {
        // 3M weights span several 1M chunks filled in parallel; the result must still be a pure function of the seed.
        NetworkDescriptor big = TestNetworks.Create("Big", ("classifier.1.weight", [3000, 1000], ParameterRole.Weight, 1000, 0f));
        var a = new float[big.ParameterCount];
        var b = new float[big.ParameterCount];
        Initializer.Initialize(big, a, InitScheme.Paper, 11);
        Initializer.Initialize(big, b, InitScheme.Paper, 11);
        Assert.True(a.AsSpan().SequenceEqual(b));
        // Chunks use distinct streams: the first values of chunk 0 and chunk 1 differ.
        Assert.False(a.AsSpan(0, 16).SequenceEqual(a.AsSpan(1 << 20, 16)));
    }

    [Fact]
    public void WrongBufferLengthNamesTheNetwork()
    {
        var e = Assert.Throws<ArgumentException>(() => Initializer.Initialize(Network, new float[5], InitScheme.Paper, 1));
        Assert.Contains("SmallNet", e.Message);
    }
}
