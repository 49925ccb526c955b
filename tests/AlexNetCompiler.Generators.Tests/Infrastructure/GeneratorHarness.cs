using System.Collections.Immutable;
using AlexNetCompiler.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace AlexNetCompiler.Generators.Tests.Infrastructure;

/// <summary>Runs the generator the way the compiler does, on in-memory sources, against the real runtime assembly.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>The shared framework of the running test host, plus AlexNetCompiler (the attributes and descriptors).</summary>
    public static readonly ImmutableArray<MetadataReference> References = CreateReferences();

    private static ImmutableArray<MetadataReference> CreateReferences()
    {
        string frameworkDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var references = Directory.GetFiles(frameworkDirectory, "*.dll")
            .Where(path => !Path.GetFileName(path).StartsWith("Microsoft.VisualBasic", StringComparison.Ordinal))
            .OrderBy(path => path, StringComparer.Ordinal)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToList();
        references.Add(MetadataReference.CreateFromFile(typeof(AlexNetCompiler.NetworkAttribute).Assembly.Location));
        return references.ToImmutableArray();
    }

    // Compilations made from one empty base share its bound reference symbols; creating each from scratch would
    // rebind every framework assembly, which costs more than compiling the specs themselves.
    private static readonly CSharpCompilation LibraryBase = CreateBase(OutputKind.DynamicallyLinkedLibrary, concurrentBuild: true);
    private static readonly CSharpCompilation ConsoleBase = CreateBase(OutputKind.ConsoleApplication, concurrentBuild: true);

    /// <summary>
    /// For checking many specs as strictly as a user's build can: documentation comments checked, as in a project
    /// that writes its documentation file (CS1591 on a public member without one), and every warning reported as an
    /// error; no concurrent build (on two cores, its coordination costs more than it saves for small trees).
    /// </summary>
    public static readonly CSharpParseOptions StrictParseOptions = ParseOptions.WithDocumentationMode(DocumentationMode.Diagnose);
    private static readonly CSharpCompilation StrictBase = CreateBase(OutputKind.DynamicallyLinkedLibrary, concurrentBuild: false, warningsAsErrors: true);

    // Every warning wave on (warning level 9999, what AnalysisLevel latest-all asks of the compiler), nullable on.
    private static CSharpCompilation CreateBase(OutputKind kind, bool concurrentBuild, bool warningsAsErrors = false) =>
        CSharpCompilation.Create("SpecAssembly", syntaxTrees: null, References,
            new CSharpCompilationOptions(kind, nullableContextOptions: NullableContextOptions.Enable, deterministic: true, concurrentBuild: concurrentBuild,
                warningLevel: 9999, generalDiagnosticOption: warningsAsErrors ? ReportDiagnostic.Error : ReportDiagnostic.Default));

    /// <summary>A compilation (and, with <see cref="Run(Compilation, CSharpParseOptions?)"/>, a driver) set up for <see cref="StrictParseOptions"/>.</summary>
    public static CSharpCompilation CreateStrictCompilation(IEnumerable<(string Path, string Text)> sources, OutputKind kind = OutputKind.DynamicallyLinkedLibrary)
    {
        CSharpCompilation strict = kind == StrictBase.Options.OutputKind ? StrictBase : StrictBase.WithOptions(StrictBase.Options.WithOutputKind(kind));
        return strict.AddSyntaxTrees(sources.Select(s => CSharpSyntaxTree.ParseText(s.Text, StrictParseOptions, path: s.Path)));
    }

    /// <summary>Runs the generator on one source in a <see cref="CreateStrictCompilation"/>.</summary>
    public static GeneratorOutcome RunStrict(string source) => Run(CreateStrictCompilation(new[] { ("Spec.cs", source) }), StrictParseOptions);

    public static CSharpCompilation CreateCompilation(IEnumerable<(string Path, string Text)> sources, OutputKind kind = OutputKind.DynamicallyLinkedLibrary) =>
        (kind == OutputKind.ConsoleApplication ? ConsoleBase : LibraryBase)
            .AddSyntaxTrees(sources.Select(s => CSharpSyntaxTree.ParseText(s.Text, ParseOptions, path: s.Path)));

    public static CSharpCompilation CreateCompilation(string source) => CreateCompilation(new[] { ("Spec.cs", source) });

    public static GeneratorDriver CreateDriver(CSharpParseOptions? parseOptions = null) =>
        CSharpGeneratorDriver.Create(
            new[] { new NetworkGenerator().AsSourceGenerator() },
            parseOptions: parseOptions ?? ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorOutcome Run(Compilation compilation, CSharpParseOptions? parseOptions = null)
    {
        GeneratorDriver driver = CreateDriver(parseOptions).RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> _);
        return new GeneratorOutcome(driver, driver.GetRunResult(), output);
    }

    public static GeneratorOutcome Run(string source) => Run(CreateCompilation(source));
}

internal sealed record GeneratorOutcome(GeneratorDriver Driver, GeneratorDriverRunResult RunResult, Compilation Output)
{
    public GeneratorRunResult Result => RunResult.Results.Single();

    /// <summary>Diagnostics the generator reported (not the compiler's).</summary>
    public ImmutableArray<Diagnostic> GeneratorDiagnostics => Result.Diagnostics;

    public ImmutableArray<GeneratedSourceResult> Sources => Result.GeneratedSources;

    /// <summary>The syntax trees of the generated files in <see cref="Output"/>.</summary>
    public IReadOnlyList<SyntaxTree> GeneratedTrees =>
        Output.SyntaxTrees.Where(tree => Sources.Any(s => s.SyntaxTree.FilePath == tree.FilePath)).ToList();

    /// <summary>
    /// Everything the compiler reports inside the generated files, whatever its severity: a user building with
    /// TreatWarningsAsErrors sees every warning there as an error in code they cannot change.
    /// </summary>
    public IReadOnlyList<Diagnostic> GeneratedCodeDiagnostics
    {
        get
        {
            var generated = GeneratedTrees.ToHashSet();
            return Output.GetDiagnostics().Where(d => d.Location.SourceTree is { } tree && generated.Contains(tree)).ToList();
        }
    }

    /// <summary>
    /// Errors of compiling the user's code together with everything generated; warnings reported as errors by a strict
    /// compilation are left to <see cref="GeneratedCodeDiagnostics"/> (in the user's code they are the user's).
    /// </summary>
    public IReadOnlyList<Diagnostic> CompilationErrors =>
        Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && !d.IsWarningAsError).ToList();

    /// <summary>The results of the shape-inference step, one per [Network] class.</summary>
    public IReadOnlyList<Model.NetworkResult> NetworkResults =>
        Result.TrackedSteps[TrackingNames.NetworkModels]
            .SelectMany(step => step.Outputs)
            .Select(output => (Model.NetworkResult)output.Value)
            .ToList();

    public Model.NetworkModel SingleModel =>
        NetworkResults.Single().Model ?? throw new InvalidOperationException(
            "No model: " + string.Join("; ", GeneratorDiagnostics.Select(d => d.ToString())));
}

/// <summary>Finds the repository root (the folder holding AlexNetCompiler.sln) from the test assembly's folder.</summary>
internal static class Repository
{
    public static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AlexNetCompiler.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("AlexNetCompiler.sln not found above " + AppContext.BaseDirectory);
    }

    public static string ReadText(string relativePath) => File.ReadAllText(Path.Combine(Root, relativePath)).Replace("\r\n", "\n");
}
