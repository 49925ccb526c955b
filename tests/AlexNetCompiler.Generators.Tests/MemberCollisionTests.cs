using System.Reflection;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>A user's member named like a generated one is our located diagnostic, not CS0102 inside a generated file.</summary>
public sealed class MemberCollisionTests
{
    private static string Source(string members) =>
        "using AlexNetCompiler;\n[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, MaxPool(2), Dense(3)]\n" +
        "public partial class Net\n{\n" + members + "\n}\n";

    private static GeneratorOutcome Run(string members) => GeneratorHarness.Run(Source(members));

    [Theory]
    [InlineData("public const long ParameterCount = 1;", "ParameterCount")]
    [InlineData("private float[] _gradientA = new float[1];", "_gradientA")]
    [InlineData("public int Conv1Weight => 0;", "Conv1Weight")]
    [InlineData("public static string CudaSource => \"\";", "CudaSource")]
    [InlineData("public void Forward(System.ReadOnlySpan<float> a, int b, System.Span<float> c) { }", "Forward")]
    [InlineData("public Net(int maxBatch, AlexNetCompiler.Cpu.CpuContext? cpu) { }", "Net")]
    public void A_member_named_like_a_generated_one_is_reported_at_the_members_name(string member, string name)
    {
        GeneratorOutcome outcome = Run(member);
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics, d => d.Id == "ANC0023");
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        string source = Source(member);
        int start = source.IndexOf(name, source.IndexOf("{\n", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Equal(start, diagnostic.Location.SourceSpan.Start);
        Assert.Equal(name.Length, diagnostic.Location.SourceSpan.Length);
        Assert.Contains($"'{(name == "Net" ? "Net (constructor)" : name)}' in network 'Net'", diagnostic.GetMessage());
        Assert.Empty(outcome.Sources);                                   // nothing generated, so no CS0102/CS0111 in generated code
        Assert.DoesNotContain(outcome.CompilationErrors, d => d.Id is "CS0102" or "CS0111");
    }

    [Theory]
    [InlineData("public void Forward(int steps) { }")]                    // an overload with another parameter count
    [InlineData("public Net(string name) : this(1) { }")]                   // a constructor of another arity
    [InlineData("public int Accuracy { get; set; }")]
    [InlineData("public const int Epochs = 3;")]
    public void Other_members_live_beside_the_generated_ones(string member)
    {
        GeneratorOutcome outcome = Run(member);
        Assert.DoesNotContain(outcome.GeneratorDiagnostics, d => d.Id == "ANC0023");
        Assert.NotEmpty(outcome.Sources);
        Assert.Empty(outcome.CompilationErrors);
    }

    // The generated member list is read from the generated text; compiled, the class declares exactly those members
    // (less what the compiler adds: accessors, backing fields, the static constructor).
    [Fact]
    public void Every_member_the_emitters_generate_is_in_the_collision_check()
    {
        GeneratorOutcome outcome = Example.Canonical.Run();
        NetworkModel model = outcome.SingleModel;
        var listed = GeneratedMembers.Declared(model.ClassName, outcome.Sources.Select(s => s.SourceText.ToString())).Select(m => m.Name).ToHashSet();
        using var stream = new MemoryStream();
        Assert.True(outcome.Output.Emit(stream).Success);
        Type type = Assembly.Load(stream.ToArray()).GetType(Example.Canonical.TypeName)!;
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var compiled = type.GetMembers(all)
            .Where(m => !m.Name.StartsWith('<') && m.Name != ".cctor" && !(m is MethodInfo { IsSpecialName: true }) && !m.Name.Contains('.', StringComparison.Ordinal) || m.Name == ".ctor")
            .Select(m => m.Name).ToHashSet();
        Assert.Subset(listed, compiled);
        Assert.Contains("ParameterCount", listed);
        Assert.Contains("CudaPlan", listed);
        Assert.Contains("TrainStep", listed);
        Assert.True(Lowerer.Lower(model, Backend.Cpu).Buffers.Items.Where(b => b.Role == BufferRole.Activation).All(b => listed.Contains("_" + b.Name)));
    }
}
