using System.Collections.Immutable;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AlexNetCompiler.Generators.Tests.Infrastructure;

/// <summary>
/// The .NET SDK's code-analysis rules (CAxxxx) as a project with AnalysisLevel latest-all and TreatWarningsAsErrors
/// runs them: the analyzers and the "all" configuration of the latest analysis level come from the SDK that built
/// the tests (the project file records where it is), every rule it enables reported as an error.
/// </summary>
internal static class NetAnalyzers
{
    private static readonly string Directory = Metadata("NetAnalyzersDirectory");

    public static readonly ImmutableArray<DiagnosticAnalyzer> Analyzers = Load();

    /// <summary>AnalysisLevel "latest" is the SDK's major version: analysislevel_10_all.globalconfig for SDK 10.0.x.</summary>
    public static readonly string LatestAllConfig =
        Path.Combine(Directory, "build", "config", $"analysislevel_{Metadata("NetSdkVersion").Split('.')[0]}_all.globalconfig");

    private static readonly ImmutableDictionary<string, ReportDiagnostic> LatestAllSeverities = ReadSeverities(LatestAllConfig);

    /// <summary>The analyzers' diagnostics for the compilation, with the rule severities of latest-all and warnings as errors.</summary>
    public static ImmutableArray<Diagnostic> Analyze(Compilation compilation)
    {
        CompilationOptions options = compilation.Options
            .WithGeneralDiagnosticOption(ReportDiagnostic.Error)
            .WithSpecificDiagnosticOptions(LatestAllSeverities);
        return compilation.WithOptions(options)
            .WithAnalyzers(Analyzers)
            .GetAnalyzerDiagnosticsAsync()
            .GetAwaiter().GetResult();
    }

    private static string Metadata(string key) =>
        typeof(NetAnalyzers).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"The test project records no {key}.");

    private static ImmutableArray<DiagnosticAnalyzer> Load()
    {
        var loader = new LoadFromLoader();
        return new[] { "Microsoft.CodeAnalysis.NetAnalyzers.dll", "Microsoft.CodeAnalysis.CSharp.NetAnalyzers.dll" }
            .Select(file => new AnalyzerFileReference(Path.Combine(Directory, file), loader))
            .SelectMany(reference => reference.GetAnalyzers(LanguageNames.CSharp))
            .ToImmutableArray();
    }

    // "dotnet_diagnostic.CA1000.severity = warning" lines; a warning is an error under TreatWarningsAsErrors.
    private static ImmutableDictionary<string, ReportDiagnostic> ReadSeverities(string path)
    {
        var severities = ImmutableDictionary.CreateBuilder<string, ReportDiagnostic>();
        foreach (string line in File.ReadLines(path))
        {
            string[] parts = line.Split('=', StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || !parts[0].StartsWith("dotnet_diagnostic.", StringComparison.Ordinal) || !parts[0].EndsWith(".severity", StringComparison.Ordinal)) continue;
            string id = parts[0]["dotnet_diagnostic.".Length..^".severity".Length];
            severities[id] = parts[1] switch
            {
                "error" or "warning" => ReportDiagnostic.Error,
                "suggestion" => ReportDiagnostic.Info,
                "silent" => ReportDiagnostic.Hidden,
                "none" => ReportDiagnostic.Suppress,
                _ => ReportDiagnostic.Default,
            };
        }
        return severities.ToImmutable();
    }

    private sealed class LoadFromLoader : IAnalyzerAssemblyLoader
    {
        public void AddDependencyLocation(string fullPath) { }

        // The analyzers' own dependencies (Microsoft.CodeAnalysis and friends) bind to the test's, which are newer.
        public Assembly LoadFromPath(string fullPath) => Assembly.LoadFrom(fullPath);
    }
}
