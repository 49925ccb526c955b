using System.Collections.Immutable;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// Generated code passes the strictest build a user can ask for: a documentation file, every compiler warning wave,
/// the .NET analyzers at AnalysisLevel latest-all, and TreatWarningsAsErrors. Nothing may be reported inside a
/// generated file, since the user cannot change it. PropertyTests checks the same over random specs.
/// </summary>
public sealed class StrictBuildTests
{
    private static void AssertClean(GeneratorOutcome outcome)
    {
        Assert.Null(outcome.Result.Exception);
        Assert.NotEmpty(outcome.Sources);
        Assert.Equal(outcome.Sources.Length, outcome.GeneratedTrees.Count);
        Assert.Empty(outcome.CompilationErrors);
        Assert.Empty(outcome.GeneratedCodeDiagnostics);
        var generated = outcome.GeneratedTrees.ToHashSet();
        ImmutableArray<Diagnostic> analyzerDiagnostics = NetAnalyzers.Analyze(outcome.Output);
        Assert.Empty(analyzerDiagnostics.Where(d => d.Id == "AD0001" || d.Location.SourceTree is { } tree && generated.Contains(tree)));
    }

    [Theory]
    [MemberData(nameof(Example.Names), MemberType = typeof(Example))]
    public void Example_networks_generate_code_a_strict_build_accepts(string name)
    {
        Example example = Example.Named(name);
        (string, string)[] sources = example.CreateCompilation().SyntaxTrees.Select(t => (t.FilePath, t.ToString())).ToArray();
        AssertClean(GeneratorHarness.Run(GeneratorHarness.CreateStrictCompilation(sources, OutputKind.ConsoleApplication), GeneratorHarness.StrictParseOptions));
    }

    // A network of one Dense layer once declared a gradient ping-pong flag that its backward pass never read (CS0219);
    // the others are the smallest networks around it.
    [Theory]
    [InlineData("[Dense(3)]")]
    [InlineData("[Dense(3), SoftmaxCrossEntropy]")]
    [InlineData("[Dense(4), Relu, Dense(3)]")]
    [InlineData("[Dropout(0.5f), Dense(3)]")]
    [InlineData("[Conv2d(2, Kernel = 1), Relu, Dense(3)]")]
    public void Small_networks_compile_cleanly(string layers) =>
        AssertClean(GeneratorHarness.RunStrict($"using AlexNetCompiler;\n[Network(Channels = 1, Height = 2, Width = 2)]\n{layers}\npublic partial class Small {{ }}"));

    // Names are user text inside doc comments: markup in them must stay text (CS1570 otherwise).
    [Fact]
    public void Layer_names_with_markup_keep_the_doc_comments_well_formed() =>
        AssertClean(GeneratorHarness.RunStrict(
            "using AlexNetCompiler;\n[Network(Channels = 1, Height = 8, Width = 8)]\n" +
            "[Conv2d(2, Kernel = 3, Name = \"a\\nb */ \\\" <c> & d\"), Relu, Dense(3, Name = \"</summary>x\\r\\ny\")]\npublic partial class Named { }"));
}
