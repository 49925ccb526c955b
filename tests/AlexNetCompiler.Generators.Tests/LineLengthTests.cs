using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using CsCheck;
using Microsoft.CodeAnalysis.CSharp;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// Generated code reads like hand-written code: no line of any generated file is longer than 120 characters, for
/// the example networks, for random specs, and for long layer names (comments and string literals wrap; code wraps
/// at argument boundaries).
/// </summary>
public sealed class LineLengthTests
{
    private static void AssertShortLines(GeneratorOutcome outcome)
    {
        var longLines = new List<string>();
        foreach (var source in outcome.Sources)
        {
            string[] lines = source.SourceText.ToString().Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                if (lines[i].Length > SourceLayout.MaxLineLength)
                    longLines.Add($"{source.HintName} line {i + 1} has {lines[i].Length} characters: {lines[i]}");
            }
        }
        Assert.True(longLines.Count == 0, $"{longLines.Count} long lines:\n" + string.Join("\n", longLines.Take(20)));
    }

    [Theory]
    [MemberData(nameof(Example.Names), MemberType = typeof(Example))]
    public void Example_networks_generate_no_line_over_120_characters(string name)
    {
        GeneratorOutcome outcome = Example.Named(name).Run();
        Assert.NotEmpty(outcome.Sources);
        AssertShortLines(outcome);
    }

    [Fact]
    public void Long_layer_names_wrap_in_comments_literals_and_calls()
    {
        string[] names = PropertyTests.LongNames;
        string Name(int i) => ", Name = " + SymbolDisplay.FormatLiteral(names[i % names.Length] + "_" + i, quote: true);
        string source = "using AlexNetCompiler;\nnamespace Specs\n{\npublic partial class Outer\n{\n" +
            "[Network(Channels = 3, Height = 32, Width = 32)]\n" +
            $"[Conv2d(16, Kernel = 3, Padding = 1{Name(0)}), Relu(Name = \"relu\"), Lrn(Size = 3{Name(1)}), MaxPool(2, Stride = 2{Name(2)})]\n" +
            $"[Dropout(0.5f{Name(3)}), Dense(32{Name(4)}), Relu({Name(5)[2..]}), Dense(10{Name(6)})]\n" +
            "internal partial class Net { }\n}\n}\n";
        GeneratorOutcome outcome = GeneratorHarness.RunStrict(source);
        Assert.Empty(outcome.GeneratorDiagnostics);
        Assert.Empty(outcome.CompilationErrors);
        Assert.Empty(outcome.GeneratedCodeDiagnostics);
        Assert.Equal(3, outcome.Sources.Length);
        AssertShortLines(outcome);
    }

    [Fact]
    public void Random_specs_generate_no_line_over_120_characters()
    {
        int generated = 0;
        PropertyTests.AnySpec.Array[40, 60].Sample(batch =>
        {
            GeneratorOutcome outcome = PropertyTests.RunBatch(batch);
            AssertShortLines(outcome);
            Interlocked.Add(ref generated, outcome.Sources.Length);
        },
        iter: 10,
        print: batch => string.Join("\n\n", batch));
        Assert.True(generated >= 100, $"only {generated} files were generated");
    }
}
