using System.Reflection;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Parsing;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// A name of the user's that collides with a generated member is our located diagnostic (ANC0023), not an error or a
/// warning inside a generated file; what C# allows beside the generated members (overloads) generates as usual.
/// </summary>
public sealed class MemberCollisionTests
{
    private const string Layers = "using AlexNetCompiler;\nnamespace Specs;\n[Network(Channels = 1, Height = 8, Width = 8)]\n[Conv2d(4, Kernel = 3), Relu, MaxPool(2), Dense(3)]\n";

    private static string Source(string members) => Layers + "public partial class Net\n{\n" + members + "\n}\n";

    [Theory]
    [InlineData("public const long ParameterCount = 1;", "ParameterCount")]
    [InlineData("private float[] _gradientA = new float[1];", "_gradientA")]
    [InlineData("public int Conv1Weight => 0;", "Conv1Weight")]
    [InlineData("public static string CudaSource => \"\";", "CudaSource")]
    [InlineData("public event System.Action? Summary;", "Summary")]
    [InlineData("public struct ParameterTensors { }", "ParameterTensors")]
    [InlineData("public int Forward { get; set; }", "Forward")]                                                  // a property named like a method
    [InlineData("public void Forward(System.ReadOnlySpan<float> a, int b, System.Span<float> c) { }", "Forward")]
    [InlineData("private void RunForward(System.ReadOnlySpan<float> a, int b, bool c, bool d, ulong e, long f) { }", "RunForward")]
    [InlineData("private static System.Span<U> Slice<U>(U[] items, int count) => items;", "Slice")]              // generic: type parameters by position
    [InlineData("public float TrainStep(System.ReadOnlySpan<float> a, System.ReadOnlySpan<int> b, int c, AlexNetCompiler.Training.Sgd d, ulong? e) => 0;", "TrainStep")]
    [InlineData("public Net(int maxBatch, AlexNetCompiler.Cpu.CpuContext? cpu) { }", "Net")]
    [InlineData("public Net(int maxBatch, AlexNetCompiler.Cpu.CpuContext cpu) { }", "Net")]                    // a nullable annotation is no part of a signature
    public void A_member_that_collides_is_reported_at_its_name_and_nothing_is_generated(string member, string name)
    {
        string source = Source(member);
        GeneratorOutcome outcome = GeneratorHarness.Run(source);
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics);
        Assert.Equal("ANC0023", diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        int start = source.IndexOf(name, source.IndexOf("{\n", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Equal(new TextSpan(start, name.Length), diagnostic.Location.SourceSpan);
        Assert.Contains("network 'Specs.Net'", diagnostic.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(outcome.Sources);
        Assert.Empty(outcome.CompilationErrors);                  // no CS0102, CS0111 or CS0542 in generated code: there is none
    }

    [Theory]
    [InlineData("public void Forward(float[] input, int batch, float[] logits) { }")]                            // an overload of other parameter types
    [InlineData("public float ForwardBackward(System.ReadOnlySpan<float> a, System.ReadOnlySpan<int> b, int c, ulong d) => 0;")] // ulong is not ulong?
    [InlineData("public void Forward(int steps) { }")]
    [InlineData("private static System.Span<float> Slice(float[] buffer, int length) => buffer;")]              // not generic: another signature
    [InlineData("private static void CheckLabels(ref System.ReadOnlySpan<int> labels, int batch) { }")]          // by reference: another signature
    [InlineData("public Net(string name) : this(1) { }")]                                                      // a constructor of other parameters
    [InlineData("public Net() : this(1) { }")]
    [InlineData("public int Accuracy { get; set; }")]
    [InlineData("public const int Epochs = 3;")]
    [InlineData("private int forward;")]                                                                       // names are case-sensitive
    public void A_member_that_does_not_collide_lives_beside_the_generated_ones(string member)
    {
        GeneratorOutcome outcome = GeneratorHarness.RunStrict(Source("/// <summary>A member of the user's.</summary>\n" + member));
        Assert.DoesNotContain(outcome.GeneratorDiagnostics, d => d.Id == "ANC0023");
        Assert.NotEmpty(outcome.Sources);
        Assert.Empty(outcome.CompilationErrors);
        Assert.Empty(outcome.GeneratedCodeDiagnostics);
    }

    [Fact]
    public void The_class_name_of_a_generated_member_is_reported_at_the_class()
    {
        string source = Layers + "public partial class Model { }\n";
        GeneratorOutcome outcome = GeneratorHarness.Run(source);
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics);
        Assert.Equal("ANC0023", diagnostic.Id);
        Assert.Equal(source.IndexOf("Model", StringComparison.Ordinal), diagnostic.Location.SourceSpan.Start);
        Assert.Empty(outcome.Sources);
        Assert.Empty(outcome.CompilationErrors);                  // not CS0542 in generated code
    }

    [Fact]
    public void A_primary_constructor_is_reported_at_its_parameter_list()
    {
        string source = Layers + "public partial class Net(int size)\n{\n    public int Size => size;\n}\n";
        GeneratorOutcome outcome = GeneratorHarness.Run(source);
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics);
        Assert.Equal("ANC0023", diagnostic.Id);
        Assert.Equal("(int size)", source.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
        Assert.Empty(outcome.Sources);
        Assert.Empty(outcome.CompilationErrors);                  // not CS8862 in generated code
    }

    [Fact]
    public void An_inherited_member_that_a_generated_one_would_hide_is_reported_at_the_base_class()
    {
        string source = Layers + "public partial class Net : Base { }\npublic class Base\n{\n    public int MaxBatch => 1;\n    public void TrainStep() { }\n    private int Parameters => 0;\n}\n";
        GeneratorOutcome outcome = GeneratorHarness.Run(source);
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics);     // TrainStep() is an overload, the private Parameters is not inherited
        Assert.Equal("ANC0023", diagnostic.Id);
        Assert.Equal(source.IndexOf(": Base", StringComparison.Ordinal) + 2, diagnostic.Location.SourceSpan.Start);
        Assert.Contains("'MaxBatch', inherited from 'Specs.Base'", diagnostic.GetMessage(), StringComparison.Ordinal);
        Assert.Empty(outcome.Sources);
    }

    [Fact]
    public void A_member_in_another_part_is_reported_in_its_own_file()
    {
        Compilation compilation = GeneratorHarness.CreateCompilation(new[]
        {
            ("Net.cs", Layers + "public partial class Net { }\n"),
            ("Net.Extras.cs", "namespace Specs;\npublic partial class Net\n{\n    public int Logits => 0;\n}\n"),
        });
        GeneratorOutcome outcome = GeneratorHarness.Run(compilation);
        Diagnostic diagnostic = Assert.Single(outcome.GeneratorDiagnostics);
        Assert.Equal("Net.Extras.cs", diagnostic.Location.GetLineSpan().Path);
        Assert.Equal(new LinePosition(3, 15), diagnostic.Location.GetLineSpan().StartLinePosition);
        Assert.Empty(outcome.Sources);
    }

    // The collision check knows the generated members by reading the generated text. Compiled, each example's class
    // declares exactly those names (less what the compiler adds: accessors, backing fields, the static constructor),
    // and each generated method's signature, read from the text, is what the parser reads from its symbol.
    [Theory]
    [MemberData(nameof(Example.Names), MemberType = typeof(Example))]
    public void Every_member_the_emitters_generate_is_in_the_collision_check(string name)
    {
        Example example = Example.Named(name);
        GeneratorOutcome outcome = example.Run();
        NetworkModel model = outcome.SingleModel;
        List<GeneratedMembers.Member> declared = GeneratedMembers.Declared(model.ClassName, outcome.Sources.Select(s => s.SourceText.ToString()));
        var listed = declared.Select(m => m.Name).ToHashSet();

        using var stream = new MemoryStream();
        Assert.True(outcome.Output.Emit(stream).Success);
        Type type = Assembly.Load(stream.ToArray()).GetType(example.TypeName)!;
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var compiled = type.GetMembers(all)
            .Where(m => m.Name == ".ctor" || !m.Name.StartsWith('<') && m.Name != ".cctor" && m is not MethodInfo { IsSpecialName: true } && !m.Name.Contains('.', StringComparison.Ordinal))
            .Select(m => m.Name).ToHashSet();
        Assert.Equal(compiled.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.Contains("ParameterCount", listed);
        Assert.Contains("CudaPlan", listed);
        Assert.Contains("TrainStep", listed);
        Assert.True(Lowerer.Lower(model, Backend.Cpu).Buffers.Items.Where(b => b.Role == BufferRole.Activation).All(b => listed.Contains("_" + b.Name)));

        INamedTypeSymbol symbol = outcome.Output.GetTypeByMetadataName(example.TypeName)!;
        var fromSymbols = symbol.GetMembers().OfType<IMethodSymbol>()
            .Where(m => m.MethodKind is MethodKind.Ordinary or MethodKind.Constructor && !m.IsImplicitlyDeclared)
            .Select(m => (m.MethodKind == MethodKind.Constructor ? ".ctor" : m.Name, MemberSignature.Of(m)))
            .Order().ToList();
        var fromText = declared.Where(m => m.Kind is MemberKind.Method or MemberKind.Constructor).Select(m => (m.Name, m.Signature)).Order().ToList();
        Assert.Equal(fromSymbols, fromText);
        Assert.Contains((".ctor", "(global::System.Int32, global::AlexNetCompiler.Cpu.CpuContext)"), fromText);
        Assert.Contains(("ForwardBackward", "(global::System.ReadOnlySpan<global::System.Single>, global::System.ReadOnlySpan<global::System.Int32>, global::System.Int32, global::System.UInt64?)"), fromText);
        Assert.Contains(("Slice", "<1>(!!0[], global::System.Int32)"), fromText);
    }
}
