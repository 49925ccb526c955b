using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Tests.Cpu;

/// <summary>
/// <see cref="Conv2dWeightCache"/>: a forward pass given a cache computes the same bits as one without it, prepares the
/// weights once while they stay the same, and prepares them again whenever any byte of them changes. Every comparison
/// is exact: the cache only moves where the prepared weights come from, never the arithmetic.
/// </summary>
public sealed class Conv2dWeightCacheTests
{
    private static Conv2dGeometry Geometry(int c, int size, int oc, int kernel, int stride, int padding, int groups) =>
        new(c, size, size, oc, (size + 2 * padding - kernel) / stride + 1, (size + 2 * padding - kernel) / stride + 1,
            kernel, kernel, stride, stride, padding, padding, groups);

    /// <summary>(name, geometry, batch, algorithm): each path that prepares weights.</summary>
    public static TheoryData<string, Conv2dGeometry, int, Conv2dAlgorithm> PreparedPaths() => new()
    {
        { "Winograd F(4x4, 3x3), two groups", Geometry(6, 13, 10, 3, 1, 1, 2), 3, Conv2dAlgorithm.Winograd },
        { "Winograd F(2x2, 5x5)", Geometry(5, 9, 7, 5, 1, 2, 1), 2, Conv2dAlgorithm.Winograd },
        { "column panels (stride 2)", Geometry(3, 19, 8, 5, 2, 1, 1), 2, Conv2dAlgorithm.Auto },
        // 64 output channels over 14 x 14 positions: the channel lanes under Auto with AVX-512, panels without.
        { "channel lanes (stride 2)", Geometry(3, 29, 64, 5, 2, 1, 1), 2, Conv2dAlgorithm.Auto },
        { "im2col items, weights packed once", Geometry(4, 9, 6, 3, 1, 1, 2), 4, Conv2dAlgorithm.Im2Col },
    };

    /// <summary>Random input, weights and bias for one layer; seeds seed to seed + 2.</summary>
    private static (float[] Input, float[] Weight, float[] Bias) Operands(in Conv2dGeometry g, int batch, int seed) =>
        (KernelAssert.Random(batch * g.InputLength, seed), KernelAssert.Random(g.WeightLength, seed + 1, -0.3f, 0.3f),
            KernelAssert.Random(g.OutChannels, seed + 2));

    private static float[] Run(in Conv2dGeometry g, int batch, Conv2dAlgorithm algorithm, float[] input, float[] weight, float[] bias,
        CpuContext ctx, Conv2dWeightCache? cache)
    {
        var output = new float[batch * g.OutputLength];
        Conv2dKernels.Forward(g, batch, input, weight, bias, output, relu: true, ctx, algorithm, cache);
        return output;
    }

    [Theory]
    [MemberData(nameof(PreparedPaths))]
    public void A_cached_pass_gives_the_bits_of_an_uncached_one_and_prepares_once(string name, Conv2dGeometry g, int batch, Conv2dAlgorithm algorithm)
    {
        _ = name;
        using var ctx = new CpuContext(2);
        var (input, weight, bias) = Operands(g, batch, seed: 1);
        var cache = new Conv2dWeightCache();
        float[] expected = Run(g, batch, algorithm, input, weight, bias, ctx, cache: null);

        Assert.Equal(expected, Run(g, batch, algorithm, input, weight, bias, ctx, cache));
        Assert.Equal(1, cache.Preparations);
        Assert.True(cache.Bytes >= (long)g.WeightLength * 2 * sizeof(float), $"{cache.Bytes} bytes: the copy and the prepared form");
        Assert.Equal(expected, Run(g, batch, algorithm, input, weight, bias, ctx, cache));
        Assert.Equal(expected, Run(g, batch, algorithm, input, weight, bias, ctx, cache));
        Assert.Equal(1, cache.Preparations);
    }

    [Theory]
    [MemberData(nameof(PreparedPaths))]
    public void Changed_weights_are_prepared_again(string name, Conv2dGeometry g, int batch, Conv2dAlgorithm algorithm)
    {
        _ = name;
        using var ctx = new CpuContext(2);
        var (input, weight, bias) = Operands(g, batch, seed: 4);
        var cache = new Conv2dWeightCache();
        float[] before = Run(g, batch, algorithm, input, weight, bias, ctx, cache);

        // One weight of the last filter, as an optimizer step or a checkpoint load would write it.
        weight[^1] += 0.25f;
        float[] after = Run(g, batch, algorithm, input, weight, bias, ctx, cache);

        Assert.Equal(2, cache.Preparations);
        Assert.Equal(Run(g, batch, algorithm, input, weight, bias, ctx, cache: null), after);
        Assert.NotEqual(before, after); // else the stale form would have passed too
    }

    [Fact]
    public void A_zero_whose_sign_flips_is_a_change()
    {
        // -0 and +0 compare equal as floats, but the packed weight copies the sign bit: the cache compares bytes, so
        // the flip is seen and the weights packed again.
        Conv2dGeometry g = Geometry(4, 9, 6, 3, 1, 1, 2);
        const int batch = 4;
        using var ctx = new CpuContext(2);
        var (input, weight, bias) = Operands(g, batch, seed: 7);
        weight[17] = 0f;
        var cache = new Conv2dWeightCache();
        Run(g, batch, Conv2dAlgorithm.Im2Col, input, weight, bias, ctx, cache);

        weight[17] = -0f;
        float[] after = Run(g, batch, Conv2dAlgorithm.Im2Col, input, weight, bias, ctx, cache);

        Assert.Equal(2, cache.Preparations);
        Assert.Equal(Run(g, batch, Conv2dAlgorithm.Im2Col, input, weight, bias, ctx, cache: null), after);
    }

    [Fact]
    public void One_cache_passed_to_layers_of_other_shapes_or_algorithms_prepares_for_each()
    {
        // Same weights, other layouts: a cache keyed by the weights alone would hand the im2col path Winograd's filters.
        Conv2dGeometry g = Geometry(8, 11, 12, 3, 1, 1, 1);
        Conv2dGeometry wider = g with { InHeight = 13, InWidth = 13, OutHeight = 13, OutWidth = 13 };
        using var ctx = new CpuContext(2);
        const int batch = 4;
        // The input of the wider plane; the narrower takes its first floats.
        var (input, weight, bias) = Operands(wider, batch, seed: 10);
        var cache = new Conv2dWeightCache();

        foreach (var (geometry, algorithm) in new[]
        {
            (g, Conv2dAlgorithm.Winograd), (g, Conv2dAlgorithm.Im2Col), (wider, Conv2dAlgorithm.Im2Col), (g, Conv2dAlgorithm.Winograd),
        })
        {
            float[] x = input.AsSpan(0, batch * geometry.InputLength).ToArray();
            Assert.Equal(Run(geometry, batch, algorithm, x, weight, bias, ctx, cache: null), Run(geometry, batch, algorithm, x, weight, bias, ctx, cache));
        }
        // At least on every change of algorithm (the second im2col call, on a wider plane, may share the packed form).
        Assert.InRange(cache.Preparations, 3, 4);
    }

    [Fact]
    public void Clear_lets_the_memory_go_and_the_next_pass_prepares_again()
    {
        Conv2dGeometry g = Geometry(6, 13, 10, 3, 1, 1, 1);
        using var ctx = new CpuContext(2);
        var (input, weight, bias) = Operands(g, batch: 2, seed: 13);
        var cache = new Conv2dWeightCache();
        float[] expected = Run(g, 2, Conv2dAlgorithm.Winograd, input, weight, bias, ctx, cache);

        cache.Clear();
        Assert.Equal(0, cache.Bytes);
        Assert.Equal(expected, Run(g, 2, Conv2dAlgorithm.Winograd, input, weight, bias, ctx, cache));
        Assert.Equal(2, cache.Preparations);
    }
}
