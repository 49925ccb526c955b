using System.Reflection;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>The pipeline caches: an edit that does not touch a spec reruns nothing that depends on it.</summary>
public sealed class IncrementalityTests
{
    private static readonly string[] TrackedSteps = { TrackingNames.NetworkSpecs, TrackingNames.NetworkModels, TrackingNames.GeneratedNetworks };

    private static (GeneratorRunResult Result, Compilation Compilation) RunTwice(Func<Compilation, Compilation> edit)
    {
        Compilation compilation = GeneratorHarness.CreateCompilation(new[]
        {
            (Example.Canonical.SpecPath, Repository.ReadText(Example.Canonical.SpecPath)),
            ("Other.cs", "namespace Elsewhere;\npublic class Other { public int Value => 1; }\n"),
        });
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        Compilation edited = edit(compilation);
        driver = driver.RunGenerators(edited);
        return (driver.GetRunResult().Results.Single(), edited);
    }

    private static Compilation Replace(Compilation compilation, string path, Func<string, string> change)
    {
        SyntaxTree old = compilation.SyntaxTrees.Single(t => t.FilePath == path);
        SyntaxTree replacement = CSharpSyntaxTree.ParseText(change(old.ToString()), GeneratorHarness.ParseOptions, path);
        return compilation.ReplaceSyntaxTree(old, replacement);
    }

    [Fact]
    public void An_unrelated_edit_leaves_every_step_cached_or_unchanged()
    {
        (GeneratorRunResult result, _) = RunTwice(c => Replace(c, "Other.cs", text => text.Replace("=> 1", "=> 2")));

        foreach (string step in TrackedSteps)
        {
            Assert.True(result.TrackedSteps.ContainsKey(step), $"step {step} is not tracked");
            IncrementalStepRunReason[] reasons = result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();
            Assert.NotEmpty(reasons);
            Assert.All(reasons, reason => Assert.True(reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {reason}"));
        }
        Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
            output => Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, output.Reason.ToString()));
    }

    [Fact]
    public void Editing_the_spec_reruns_the_model_step()
    {
        // The counterpart of the test above: the steps are really tracked and do notice a change.
        (GeneratorRunResult result, _) = RunTwice(c => Replace(c, Example.Canonical.SpecPath, text => text.Replace("[Dense(1000)]", "[Dense(999)]")));
        IncrementalStepRunReason[] reasons = result.TrackedSteps[TrackingNames.NetworkModels].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();
        Assert.Contains(IncrementalStepRunReason.Modified, reasons);
        var model = (NetworkResult)result.TrackedSteps[TrackingNames.NetworkModels].Single().Outputs.Single().Value;
        Assert.Equal(999, model.Model!.ClassCount);
    }

    private const string NetWithMembers =
        "using AlexNetCompiler;\nnamespace Specs;\n[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, MaxPool(2), Dense(3)]\n" +
        "public partial class Net\n{\n    public int Epochs() { return 1; }\n\n    public const long ParameterCount = 1;\n}\n";

    private static GeneratorDriver RunBeforeAndAfter(string source, Func<string, string> edit, out Compilation edited)
    {
        Compilation compilation = GeneratorHarness.CreateCompilation(source);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        edited = Replace(compilation, "Spec.cs", edit);
        return driver.RunGenerators(edited);
    }

    private static IncrementalStepRunReason[] Reasons(GeneratorRunResult result, string step) =>
        result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();

    [Fact]
    public void Editing_a_method_body_in_the_network_class_leaves_the_model_as_it_was_and_does_not_rerun_the_emitters()
    {
        // The edit moves the member below it: the spec holds its new location, the result of shape inference is
        // equal to the last one, so the emitters' step is not run at all.
        string source = NetWithMembers.Replace("ParameterCount = 1", "Threshold = 1");
        GeneratorRunResult result = RunBeforeAndAfter(source, text => text.Replace("return 1;", "return 1 + 1;"), out _).GetRunResult().Results.Single();
        Assert.Contains(IncrementalStepRunReason.Modified, Reasons(result, TrackingNames.NetworkSpecs));
        Assert.All(Reasons(result, TrackingNames.NetworkModels), reason => Assert.Equal(IncrementalStepRunReason.Unchanged, reason));
        Assert.All(Reasons(result, TrackingNames.GeneratedNetworks), reason => Assert.Equal(IncrementalStepRunReason.Cached, reason));
        Assert.Equal(3, result.GeneratedSources.Length);
    }

    [Fact]
    public void A_collision_is_reported_where_the_member_is_after_an_edit_above_it()
    {
        GeneratorDriver driver = RunBeforeAndAfter(NetWithMembers, text => text.Replace("return 1;", "return 1 + 1;"), out Compilation edited);
        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        Diagnostic diagnostic = Assert.Single(result.Diagnostics);
        Assert.Equal("ANC0023", diagnostic.Id);
        string text = edited.SyntaxTrees.Single().ToString();
        Assert.Equal(text.IndexOf("ParameterCount", StringComparison.Ordinal), diagnostic.Location.SourceSpan.Start);
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void Pipeline_models_hold_no_symbols_syntax_locations_or_compilations()
    {
        Type[] forbidden = { typeof(ISymbol), typeof(SyntaxNode), typeof(SyntaxTree), typeof(Compilation), typeof(SemanticModel), typeof(Location), typeof(SyntaxToken) };
        var visited = new HashSet<Type>();
        var offenders = new List<string>();

        void Walk(Type type, string path)
        {
            if (!visited.Add(type)) return;
            foreach (Type f in forbidden)
            {
                if (f.IsAssignableFrom(type)) offenders.Add($"{path}: {type.Name}");
            }
            if (type.IsGenericType)
            {
                foreach (Type argument in type.GetGenericArguments()) Walk(argument, path + "<" + argument.Name + ">");
            }
            if (type.IsArray) Walk(type.GetElementType()!, path + "[]");
            // Only our own types are walked field by field (DiagnosticDescriptor and friends are Roslyn's immutable values).
            if (type.Assembly != typeof(NetworkModel).Assembly) return;
            foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            {
                Walk(field.FieldType, path + "." + field.Name);
            }
        }

        Walk(typeof(NetworkSpec), nameof(NetworkSpec));
        Walk(typeof(NetworkResult), nameof(NetworkResult));
        Walk(typeof(Emitters.GeneratedNetwork), nameof(Emitters.GeneratedNetwork));
        Assert.Contains(typeof(LayerModel), visited);
        Assert.Contains(typeof(Diagnostics.LocationInfo), visited);
        Assert.Contains(typeof(UserMemberName), visited);
        Assert.Empty(offenders);
    }
}
