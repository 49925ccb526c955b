using System.Reflection;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>The pipeline caches: an edit that does not touch a spec reruns nothing that depends on it.</summary>
public sealed class IncrementalityTests
{
    private static readonly string[] TrackedSteps = { TrackingNames.NetworkSpecs, TrackingNames.NetworkModels, TrackingNames.EmittedNetworks };

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

    // Typing inside the network class (a member's body, a comment) moves every member's location; the spec holds no
    // locations, so neither the model nor the printed files are recomputed.
    [Fact]
    public void An_edit_inside_the_network_class_that_adds_no_member_reprints_nothing()
    {
        string spec = Example.Canonical.SpecPath;
        Compilation compilation = GeneratorHarness.CreateCompilation(new[]
        {
            (spec, Repository.ReadText(spec).Replace("public partial class AlexNet2012 { }",
                "public partial class AlexNet2012\n{\n    public int Epochs => 1;\n}")),
        });
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        driver = driver.RunGenerators(Replace(compilation, spec, text => text.Replace("public int Epochs => 1;", "// the epochs\n    public int Epochs => 90;")));
        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        foreach (string step in new[] { TrackingNames.NetworkModels, TrackingNames.EmittedNetworks })
        {
            IncrementalStepRunReason[] reasons = result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Reason).ToArray();
            Assert.All(reasons, reason => Assert.True(reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {reason}"));
        }
        Assert.Equal(3, result.GeneratedSources.Length);
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
        Assert.Contains(typeof(LayerModel), visited);
        Assert.Contains(typeof(Diagnostics.LocationInfo), visited);
        Assert.Empty(offenders);
    }
}
