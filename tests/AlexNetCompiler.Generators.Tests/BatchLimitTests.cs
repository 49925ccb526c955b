using System.Reflection;
using System.Runtime.Loader;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// The generated constructor refuses a maxBatch whose largest buffer would not fit in an array, in 64-bit arithmetic
/// and before allocating, instead of overflowing int (an OverflowException, or a negative array size).
/// </summary>
public sealed class BatchLimitTests
{
    // [1, 4, 4] -> Conv2d(2, k=3) [2, 2, 2] -> Relu -> MaxPool(2) [2, 1, 1] -> Dense(3) [3]: the input is the largest tensor.
    private const string Tiny =
        "using AlexNetCompiler;\nnamespace Limits;\n[Network(Channels = 1, Height = 4, Width = 4)]\n" +
        "[Conv2d(2, Kernel = 3), Relu, MaxPool(2), Dense(3)]\npublic partial class Tiny { }";

    [Fact]
    public void A_max_batch_beyond_the_largest_buffer_is_refused_with_the_network_the_buffer_and_the_limit()
    {
        GeneratorOutcome outcome = GeneratorHarness.Run(Tiny);
        Assert.Empty(outcome.CompilationErrors);
        string cpu = outcome.Sources.Single(s => s.HintName.EndsWith(".Cpu.g.cs", StringComparison.Ordinal)).SourceText.ToString();
        Assert.Contains("private const int LargestBufferLengthPerSample = 16;", cpu);
        Assert.Contains("/// activation (the input, [1, 4, 4]).", cpu);

        Type tiny = Load(outcome.Output).GetType("Limits.Tiny", throwOnError: true)!;
        int limit = (int)tiny.GetProperty("MaxBatchLimit")!.GetValue(null)!;
        Assert.Equal(Array.MaxLength / 16, limit);

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Construct(tiny, limit + 1));
        Assert.Equal("maxBatch", e.ParamName);
        Assert.Contains($"Tiny: at maxBatch {limit + 1} the gradient buffers (as large as the input) would hold {(limit + 1L) * 16} floats", e.Message);
        Assert.Contains($"more than an array can ({Array.MaxLength}); the largest maxBatch that fits is {limit}.", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Construct(tiny, int.MaxValue));
        Assert.NotNull(Construct(tiny, 2));
    }

    [Fact]
    public void The_emitted_check_reads_like_hand_written_code()
    {
        string cpu = GeneratorHarness.Run(Tiny).Sources.Single(s => s.HintName.EndsWith(".Cpu.g.cs", StringComparison.Ordinal)).SourceText.ToString();
        int start = cpu.IndexOf("/// Floats per sample of the largest buffer", StringComparison.Ordinal);
        int end = cpu.IndexOf("// Typed views of each parameter tensor", StringComparison.Ordinal); // after the constructor
        Assert.True(start > 0 && end > start);
        string[] lines = cpu[start..end].Split('\n');
        Assert.All(lines, line => Assert.True(line.Length < 120, $"{line.Length} characters: {line}"));
        Assert.Contains("_gradientA = new float[maxBatch * LargestBufferLengthPerSample];", cpu); // a name, not a number
    }

    private static object Construct(Type network, int maxBatch)
    {
        try
        {
            return Activator.CreateInstance(network, maxBatch, null)!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }

    /// <summary>Compiles the generated code and loads it beside the AlexNetCompiler runtime the tests already use.</summary>
    private static Assembly Load(Compilation compilation)
    {
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        image.Position = 0;
        return new AssemblyLoadContext("batch-limit", isCollectible: true).LoadFromStream(image);
    }
}
