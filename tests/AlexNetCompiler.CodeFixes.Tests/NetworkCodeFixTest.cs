using System.Collections.Immutable;
using AlexNetCompiler.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Testing;

namespace AlexNetCompiler.CodeFixes.Tests;

/// <summary>
/// A code-fix test whose diagnostics come from the network generator, run on the test's project as the compiler runs
/// it. The library checks the diagnostics in the source before the fix, the fixed source, that the fixed source has
/// no diagnostics left (the generator runs again on it), and the same through Fix All.
/// </summary>
internal sealed class NetworkCodeFixTest<TCodeFix> : CSharpCodeFixTest<FixableGeneratorDiagnostics, TCodeFix, DefaultVerifier>
    where TCodeFix : CodeFixProvider, new()
{
    public const string Header = "using AlexNetCompiler;\nnamespace Specs;\n";

    /// <summary>The running test host's framework plus AlexNetCompiler (the attributes), so nothing is downloaded.</summary>
    private static readonly ImmutableArray<MetadataReference> References = CreateReferences();

    public NetworkCodeFixTest()
    {
        ReferenceAssemblies = new ReferenceAssemblies("net10.0");
        TestState.AdditionalReferences.AddRange(References);
        FixedState.AdditionalReferences.AddRange(References);
        // The generated sources are the generator's tests' business (snapshots); here only the user's source matters.
        TestBehaviors |= TestBehaviors.SkipGeneratedSourcesCheck;
    }

    protected override IEnumerable<Type> GetSourceGenerators() => new[] { typeof(NetworkGenerator) };

    private static ImmutableArray<MetadataReference> CreateReferences()
    {
        string frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        return Directory.GetFiles(frameworkDirectory, "*.dll")
            .Where(path => !Path.GetFileName(path).StartsWith("Microsoft.VisualBasic", StringComparison.Ordinal))
            .OrderBy(path => path, StringComparer.Ordinal)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .Append(MetadataReference.CreateFromFile(typeof(NetworkAttribute).Assembly.Location))
            .ToImmutableArray();
    }
}

/// <summary>
/// Reports nothing: it only declares the generator's fixable IDs, because the test library's Fix All asks the
/// analyzers which IDs to collect and would otherwise collect none of the generator's diagnostics.
/// </summary>
#pragma warning disable RS1001 // No [DiagnosticAnalyzer]: the test library creates it; no compiler ever loads it.
internal sealed class FixableGeneratorDiagnostics : DiagnosticAnalyzer
#pragma warning restore RS1001
{
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        Declare("ANC0002"), Declare("ANC0013"), Declare("ANC0015"));

    private static DiagnosticDescriptor Declare(string id) => new(id, id, id, "AlexNetCompiler", DiagnosticSeverity.Warning, isEnabledByDefault: true);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
    }
}
