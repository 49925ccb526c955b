using System.Collections.Immutable;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using CsCheck;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// Random specs, mostly plausible and sometimes wrong in every way the attributes allow: the generator never
/// throws, never fails internally, and whatever it generates compiles without a warning in the strictest build a
/// user can ask for. Specs are compiled in batches (one namespace each) so that thousands fit in a few seconds.
/// </summary>
public sealed class PropertyTests
{
    private static Gen<string> Optional(Gen<string> present, int omitWeight, int presentWeight = 1) =>
        Gen.Frequency((omitWeight, (IGen<string>)Gen.Const("")), (presentWeight, present));

    private static Gen<T> Either<T>(bool wild, Gen<T> plausible, Gen<T> odd, int oddWeight = 1) =>
        wild ? Gen.Frequency((4, (IGen<T>)plausible), (oddWeight, odd)) : plausible;

    /// <summary>
    /// Long names: a long identifier, a sentence whose identifier is short (letters outside ASCII are left out of it),
    /// and a word too long for any line.
    /// </summary>
    internal static readonly string[] LongNames =
    {
        "backbone.stage_4.block_3.depthwise_conv",
        "первый свёрточный слой сети: ядро одиннадцать на одиннадцать, шаг четыре, как в статье Крижевского, Суцкевера и Хинтона (2012)",
        "очень_длинное_имя_слоя_без_единого_пробела_которое_не_помещается_ни_в_одну_строку_комментария_и_должно_быть_разрезано_x",
    };

    private static readonly string[] OddNames =
        new[] { "stem", "features.0", "conv.2", "...", "", " ", "a\"b", "x\ny", "1st", "Conv1", "loss", "head", "é", "Weight", "classifier.1" }
            .Concat(LongNames).ToArray();

    private static Gen<string> Name(bool wild) => wild
        ? Optional(Gen.OneOf(OddNames).Select(n => ", Name = " + SymbolDisplay.FormatLiteral(n, quote: true)), omitWeight: 10)
        : Gen.Const("");

    // For attributes without a positional argument the leading ", " of the first named one is dropped.
    private static string Args(string text) => text.StartsWith(", ", StringComparison.Ordinal) ? text[2..] : text;

    private static Gen<string> Conv2d(bool wild) => Gen.Select(
        Either(wild, Gen.Int[1, 12], Gen.Int[-2, 0]),
        Gen.Frequency(
            (6, (IGen<string>)Gen.Int[1, 5].Select(k => $", Kernel = {k}")),
            (2, Gen.Select(Gen.Int[1, 5], Gen.Int[1, 5], (h, w) => $", KernelHeight = {h}, KernelWidth = {w}")),
            (wild ? 1 : 0, Gen.Const("")),
            (wild ? 1 : 0, Gen.Int[-1, 40].Select(k => $", Kernel = {k}"))),
        Optional(Either(wild, Gen.Int[1, 2].Select(v => $", Stride = {v}"),
            Gen.OneOf(", Stride = 0", ", Stride = -1", ", StrideHeight = 3, StrideWidth = 1", ", StrideWidth = 2")), omitWeight: 3),
        Optional(Either(wild, Gen.Int[0, 2].Select(v => $", Padding = {v}"),
            Gen.Int[-2, 3].Select(v => $", PaddingHeight = {v}")), omitWeight: 2),
        Optional(Either(wild, Gen.Const(", Groups = 1"), Gen.Int[-1, 4].Select(g => $", Groups = {g}")), omitWeight: 4),
        Optional(Either(wild, Gen.OneOf(", Bias = false", ", BiasInit = 0.5f"), Gen.Const(", BiasInit = float.PositiveInfinity")), omitWeight: 6),
        Name(wild),
        (c, k, s, p, g, b, n) => $"Conv2d({c}{k}{s}{p}{g}{b}{n})");

    private static Gen<string> Relu(bool wild) => Name(wild).Select(n => n.Length == 0 ? "Relu" : $"Relu({Args(n)})");

    private static Gen<string> Lrn(bool wild) => Gen.Select(
        Optional(Either(wild, Gen.OneOf(1, 3, 5), Gen.Int[-1, 6]).Select(v => $", Size = {v}"), omitWeight: 2),
        Optional(Either(wild, Gen.Const(", Alpha = 1e-4f"), Gen.OneOf(", Alpha = -1f", ", Alpha = float.NaN")), omitWeight: 2),
        Optional(Either(wild, Gen.Const(", Beta = 0.75f"), Gen.Const(", Beta = -0.5f")), omitWeight: 2),
        Optional(Either(wild, Gen.OneOf(", K = 2f", ", K = 1f"), Gen.Const(", K = 0f")), omitWeight: 2),
        Name(wild),
        (a, b, c, d, n) => (a + b + c + d + n) is { Length: > 0 } all ? $"Lrn({Args(all)})" : "Lrn");

    private static Gen<string> MaxPool(bool wild) => Gen.Select(
        Either(wild, Gen.Int[2, 3], Gen.Int[-1, 9]),
        Optional(Either(wild, Gen.Const(", Stride = 2"), Gen.Int[-1, 3].Select(v => $", Stride = {v}")), omitWeight: 1, presentWeight: 2),
        Optional(Either(wild, Gen.Const(", Padding = 1"), Gen.Int[-1, 2].Select(v => $", Padding = {v}")), omitWeight: 4),
        Optional(Either(wild, Gen.Const(""), Gen.Select(Gen.Int[0, 3], Gen.Int[0, 3], (h, w) => $", KernelHeight = {h}, StrideWidth = {w}")), omitWeight: 4),
        Name(wild),
        (k, s, p, r, n) => $"MaxPool({k}{s}{p}{r}{n})");

    private static Gen<string> AdaptiveAvgPool(bool wild) => Gen.Select(
        Either(wild, Gen.Int[1, 8], Gen.Int[-1, 0]),
        Optional(Either(wild, Gen.Int[1, 8].Select(v => $", OutputWidth = {v}"), Gen.Int[-1, 0].Select(v => $", OutputHeight = {v}")), omitWeight: 3),
        Name(wild),
        (size, side, n) => $"AdaptiveAvgPool({size}{side}{n})");

    private static Gen<string> Dropout(bool wild) => Gen.Select(
        Either(wild, Gen.OneOf("0.5f", "0f", "0.25f", "0.9f"), Gen.OneOf("1f", "-0.1f", "float.NaN")),
        Name(wild),
        (p, n) => $"Dropout({p}{n})");

    private static Gen<string> Dense(bool wild, int low = 1) => Gen.Select(
        Either(wild, Gen.Int[low, 20], Gen.Int[-1, 0]),
        Optional(Gen.Int[-1, 300].Select(f => $", InFeatures = {f}"), omitWeight: wild ? 6 : 1000),
        Optional(Gen.OneOf(", Bias = false", ", BiasInit = 0.1f"), omitWeight: 6),
        Name(wild),
        (f, i, b, n) => $"Dense({f}{i}{b}{n})");

    /// <summary>The AlexNet pattern: features, classifier, a last Dense, maybe the loss head written out.</summary>
    private static Gen<string[]> Layers(bool wild) => Gen.Select(
        Gen.Frequency((3, (IGen<string>)Conv2d(wild)), (2, Relu(wild)), (1, Lrn(wild)), (2, MaxPool(wild)), (1, AdaptiveAvgPool(wild))).Array[0, 5],
        Gen.Frequency((1, (IGen<string>)Dropout(wild)), (1, Dense(wild)), (1, Relu(wild))).Array[0, 3],
        wild ? Gen.Frequency((8, (IGen<string>)Dense(wild)), (1, Gen.Const(""))) : Dense(wild, low: 2),
        Gen.Frequency((4, (IGen<string>)Gen.Const("")), (1, Gen.Const("SoftmaxCrossEntropy"))),
        (features, classifier, last, loss) => features.Concat(classifier).Append(last).Append(loss).Where(l => l.Length > 0).ToArray());

    /// <summary>Any layers in any order.</summary>
    private static readonly Gen<string[]> Shuffled = Gen.Frequency(
        (3, (IGen<string>)Conv2d(true)), (2, Relu(true)), (1, Lrn(true)), (2, MaxPool(true)), (1, AdaptiveAvgPool(true)), (1, Dropout(true)), (2, Dense(true)),
        (1, Gen.Const("SoftmaxCrossEntropy"))).Array[0, 10];

    private static Gen<string> Network(bool wild) => Gen.Select(
        Either(wild, Gen.Int[1, 4], Gen.Int[-1, 0]),
        Either(wild, Gen.Int[12, 40], Gen.Int[-1, 3]),
        Either(wild, Gen.Int[12, 40].Select(w => $", Width = {w}"), Gen.OneOf("", ", Width = 0", ", Width = 2")),
        (c, h, w) => $"[Network(Channels = {c}, Height = {h}{w})]");

    private static readonly Gen<string> ClassShape = Gen.Frequency(
        (12, (IGen<string>)Gen.Const("{0}public partial class Net {{ }}")),
        (1, Gen.Const("{0}public class Net {{ }}")),
        (1, Gen.Const("{0}public static partial class Net {{ }}")),
        (1, Gen.Const("{0}public partial class Net<T> {{ }}")),
        (1, Gen.Const("public partial class Outer {{\n{0}internal partial class Net {{ }}\n}}")),
        (1, Gen.Const("public partial struct Outer {{\n{0}public partial class Net {{ }}\n}}")),
        (1, Gen.Const("public class Outer {{\n{0}public partial class Net {{ }}\n}}")),
        // Names of the user's beside the generated ones: a collision (ANC0023, nothing generated), an overload (generated).
        (1, Gen.Const("{0}public partial class Net {{ public int MaxBatch => 0; }}")),
        (1, Gen.Const("{0}public partial class Model {{ }}")),
        (1, Gen.Const("{0}public partial class Net {{ public void Forward(float[] input, int batch, float[] logits) {{ }} }}")));

    private static Gen<string> Spec(Gen<string> network, Gen<string[]> layers, Gen<string> shape) => Gen.Select(network, layers, shape,
        (n, l, s) => string.Format(s, n + "\n" + (l.Length == 0 ? "" : "[" + string.Join(", ", l) + "]\n")));

    /// <summary>Valid ranges in the AlexNet order: nearly always a network that generates code.</summary>
    private static readonly Gen<string> PlausibleSpec = Spec(Network(false), Layers(false), Gen.Const("{0}public partial class Net {{ }}"));

    /// <summary>Three in four plausible, the rest wrong in any way the attributes allow.</summary>
    internal static readonly Gen<string> AnySpec = Gen.Frequency(
        (3, (IGen<string>)PlausibleSpec),
        (1, Spec(Network(true), Gen.Frequency((2, (IGen<string[]>)Layers(true)), (1, Shuffled)), ClassShape)));

    // One namespace per spec, so that a batch compiles as one assembly.
    internal static GeneratorOutcome RunBatch(string[] batch) => GeneratorHarness.Run(
        GeneratorHarness.CreateStrictCompilation(batch.Select((spec, i) => ($"Spec{i}.cs", $"using AlexNetCompiler;\nnamespace P{i}\n{{\n{spec}\n}}\n"))),
        GeneratorHarness.StrictParseOptions);

    private static void AssertNone(IReadOnlyList<Diagnostic> diagnostics)
    {
        if (diagnostics.Count > 0)
            Assert.Fail(string.Join("\n", diagnostics.Take(5)) + "\nin:\n" + diagnostics[0].Location.SourceTree?.ToString());
    }

    [Fact]
    public void Random_specs_never_break_the_generator_and_what_is_generated_compiles_without_warnings()
    {
        int specs = 0, networksGenerated = 0;
        AnySpec.Array[40, 60].Sample(batch =>
        {
            GeneratorOutcome outcome = RunBatch(batch);

            Assert.Null(outcome.Result.Exception);
            Assert.DoesNotContain(outcome.GeneratorDiagnostics, d => d.Id == "ANC0001");
            AssertNone(outcome.CompilationErrors);
            // A strict user build (documentation file, every warning wave, TreatWarningsAsErrors) must not fail on
            // generated code: nothing at all is reported inside it.
            AssertNone(outcome.GeneratedCodeDiagnostics);

            Interlocked.Add(ref specs, batch.Length);
            Interlocked.Add(ref networksGenerated, outcome.Sources.Count(s => !s.HintName.Contains(".Cpu.") && !s.HintName.Contains(".Cuda.")));
        },
        iter: 22,
        print: batch => string.Join("\n\n", batch));

        // The property means little unless a good share of the specs is valid and gets compiled.
        Assert.True(specs >= 950, $"only {specs} specs were tried");
        Assert.True(networksGenerated >= specs / 5, $"only {networksGenerated} of {specs} specs generated code");
    }

    // The .NET analyzers skip generated code unless a rule asks otherwise; this checks that no rule of latest-all
    // does, so that the generated files pass a user's AnalysisLevel latest-all build with TreatWarningsAsErrors.
    [Fact]
    public void Random_plausible_specs_generate_code_the_dotnet_analyzers_accept_at_latest_all()
    {
        int networksGenerated = 0;
        PlausibleSpec.Array[20, 20].Sample(batch =>
        {
            GeneratorOutcome outcome = RunBatch(batch);
            AssertNone(outcome.CompilationErrors);
            var generated = outcome.GeneratedTrees.ToHashSet();
            ImmutableArray<Diagnostic> diagnostics = NetAnalyzers.Analyze(outcome.Output);
            AssertNone(diagnostics.Where(d => d.Id == "AD0001" || d.Location.SourceTree is { } tree && generated.Contains(tree)).ToList());
            Interlocked.Add(ref networksGenerated, outcome.Sources.Count(s => !s.HintName.Contains(".Cpu.") && !s.HintName.Contains(".Cuda.")));
        },
        iter: 3, threads: 1,
        print: batch => string.Join("\n\n", batch));

        Assert.True(NetAnalyzers.Analyzers.Length > 100, $"only {NetAnalyzers.Analyzers.Length} analyzers were loaded");
        Assert.True(networksGenerated >= 20, $"only {networksGenerated} networks were generated");
    }
}
