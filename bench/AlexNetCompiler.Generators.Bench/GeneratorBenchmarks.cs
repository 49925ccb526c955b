using System.Collections.Immutable;
using AlexNetCompiler.Generators;
using BenchmarkDotNet.Attributes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace AlexNetCompiler.Generators.Bench;

/// <summary>
/// The generator on the canonical AlexNet spec (examples/CanonicalAlexNet/AlexNet2012.cs): a cold run (what a
/// command-line build pays) and an incremental re-run after an edit elsewhere (what the IDE pays per keystroke).
/// </summary>
[MemoryDiagnoser]
public class GeneratorBenchmarks
{
    private static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    private CSharpCompilation _compilation = null!;
    private CSharpCompilation _edited = null!;
    private GeneratorDriver _warmDriver = null!;

    [GlobalSetup]
    public void Setup()
    {
        string root = FindRepositoryRoot();
        string spec = File.ReadAllText(Path.Combine(root, "examples/CanonicalAlexNet/AlexNet2012.cs"));
        string frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var references = Directory.GetFiles(frameworkDirectory, "*.dll")
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .Append(MetadataReference.CreateFromFile(typeof(AlexNetCompiler.NetworkAttribute).Assembly.Location));

        SyntaxTree other = CSharpSyntaxTree.ParseText("namespace Elsewhere;\npublic class Other { public int Value => 1; }\n", ParseOptions, "Other.cs");
        _compilation = CSharpCompilation.Create("Bench",
            new[] { CSharpSyntaxTree.ParseText(spec, ParseOptions, "AlexNet2012.cs"), other },
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        _edited = _compilation.ReplaceSyntaxTree(other,
            CSharpSyntaxTree.ParseText("namespace Elsewhere;\npublic class Other { public int Value => 2; }\n", ParseOptions, "Other.cs"));

        // Bind the references once, as a long-running compiler server would have.
        _ = _compilation.GetTypeByMetadataName("AlexNetCompiler.NetworkAttribute");
        _ = _edited.GetTypeByMetadataName("AlexNetCompiler.NetworkAttribute");

        _warmDriver = CreateDriver().RunGenerators(_compilation);
        if (_warmDriver.GetRunResult().GeneratedTrees.Length == 0) throw new InvalidOperationException("the generator produced nothing");
    }

    private static GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create(new[] { new NetworkGenerator().AsSourceGenerator() }, parseOptions: ParseOptions);

    /// <summary>Parse, infer shapes and emit from scratch.</summary>
    [Benchmark(Baseline = true)]
    public ImmutableArray<SyntaxTree> FullRun() => CreateDriver().RunGenerators(_compilation).GetRunResult().GeneratedTrees;

    /// <summary>Re-run after an unrelated edit: every step of the network is cached.</summary>
    [Benchmark]
    public ImmutableArray<SyntaxTree> IncrementalRerunAfterUnrelatedEdit() => _warmDriver.RunGenerators(_edited).GetRunResult().GeneratedTrees;

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AlexNetCompiler.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("AlexNetCompiler.sln not found above " + AppContext.BaseDirectory);
    }
}
