using System.Reflection;
using System.Runtime.Loader;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Tests.Infrastructure;
using Microsoft.CodeAnalysis;


namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// What the generator infers for the three examples and for small hand-checked specs. Expected values are
/// published figures (the paper, torchvision) or worked out by hand in the comments, never taken from the generator.
/// </summary>
public sealed class ModelTests
{
    [Theory]
    [MemberData(nameof(Example.Names), MemberType = typeof(Example))]
    public void Example_generates_code_that_compiles_without_diagnostics(string name)
    {
        GeneratorOutcome outcome = Example.Named(name).Run();
        Assert.Null(outcome.Result.Exception);
        Assert.Empty(outcome.GeneratorDiagnostics);
        Assert.NotEmpty(outcome.Sources);
        // Zero errors, and no warnings at all in the generated files.
        IEnumerable<Diagnostic> all = outcome.Output.GetDiagnostics();
        Assert.DoesNotContain(all, d => d.Severity == DiagnosticSeverity.Error);
        Assert.DoesNotContain(all, d => d.Severity == DiagnosticSeverity.Warning && d.Location.SourceTree?.FilePath.EndsWith(".g.cs", StringComparison.Ordinal) == true);
    }

    [Fact]
    public void Canonical_AlexNet_has_the_published_parameter_count_and_shapes()
    {
        NetworkModel model = Example.Canonical.Run().SingleModel;

        // Krizhevsky et al. 2012 with the two GPU towers as groups = 2: 60,965,224 parameters.
        Assert.Equal(60_965_224L, model.ParameterCount);
        Assert.Equal(1000, model.ClassCount);
        // Feature maps of the paper (section 3.5, figure 2), with the 227 input that tiles conv1.
        int[][] convShapes = model.Layers.Where(l => l.Kind == Model.LayerKind.Conv2d)
            .Select(l => new[] { l.Output.Channels, l.Output.Height, l.Output.Width }).ToArray();
        Assert.Equal(new[] { new[] { 96, 55, 55 }, new[] { 256, 27, 27 }, new[] { 384, 13, 13 }, new[] { 384, 13, 13 }, new[] { 256, 13, 13 } }, convShapes);
        Assert.Equal(new TensorShape(256, 6, 6), model.Layers.Last(l => l.Kind == Model.LayerKind.MaxPool).Output);
        // Paper initialisation (section 5): biases 1 in conv2, conv4, conv5 and the hidden FC layers, 0 elsewhere.
        float[] biases = model.Layers.SelectMany(l => l.Parameters).Where(p => p.Role == Model.ParameterRole.Bias).Select(p => p.PaperBiasValue).ToArray();
        Assert.Equal(new[] { 0f, 1f, 0f, 1f, 1f, 1f, 1f, 0f }, biases);
    }

    [Fact]
    public void Torchvision_AlexNet_has_the_published_parameter_count_and_state_dict_names()
    {
        NetworkModel model = Example.Torchvision.Run().SingleModel;

        Assert.Equal(61_100_840L, model.ParameterCount);
        // torchvision.models.alexnet().state_dict() keys, in order.
        string[] expected =
        {
            "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias", "features.6.weight", "features.6.bias",
            "features.8.weight", "features.8.bias", "features.10.weight", "features.10.bias",
            "classifier.1.weight", "classifier.1.bias", "classifier.4.weight", "classifier.4.bias", "classifier.6.weight", "classifier.6.bias",
        };
        Assert.Equal(expected, model.Layers.SelectMany(l => l.Parameters).Select(p => p.Name));
        Assert.Equal(new[] { 4096, 9216 }, model.Layers.Single(l => l.Name == "classifier.1").Parameters[0].Shape.ToArray());
    }

    [Fact]
    public void FashionNet_parameter_count_matches_a_hand_count()
    {
        NetworkModel model = Example.Fashion.Run().SingleModel;
        long expected =
            (1 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 9 * 128 + 128)      // conv1..conv3
            + (64 * 9 * 128 + 128) + (64 * 9 * 64 + 64)                         // conv4, conv5 with groups = 2: in/2 per filter
            + (64 * 3 * 3 * 512 + 512) + (512 * 256 + 256) + (256 * 10 + 10);   // 28 -> 14 -> 7 -> 3 after the pools
        Assert.Equal(expected, model.ParameterCount);
        Assert.Equal(10, model.ClassCount);
    }

    [Fact]
    public void Parameters_are_contiguous_in_declaration_order_weight_before_bias()
    {
        foreach (Example example in Example.All)
        {
            NetworkModel model = example.Run().SingleModel;
            long offset = 0;
            foreach (LayerModel layer in model.Layers)
            {
                foreach (ParameterModel p in layer.Parameters)
                {
                    Assert.Equal(offset, p.Offset);
                    Assert.Equal(p.Shape.Aggregate(1L, (a, d) => a * d), p.Length);
                    offset += p.Length;
                }
                if (layer.Parameters.Length == 2) Assert.Equal(Model.ParameterRole.Weight, layer.Parameters[0].Role);
            }
            Assert.Equal(model.ParameterCount, offset);
        }
    }

    [Fact]
    public void Memory_plan_of_a_tiny_network_matches_a_hand_calculation()
    {
        // [1, 4, 4] -> Conv2d(2, k=3) [2, 2, 2] -> Relu -> MaxPool(2) [2, 1, 1] -> Dense(3) [3] -> loss [3]
        GeneratorOutcome outcome = GeneratorHarness.Run(
            "using AlexNetCompiler;\n[Network(Channels = 1, Height = 4, Width = 4)]\n[Conv2d(2, Kernel = 3), Relu, MaxPool(2), Dense(3)]\npublic partial class Tiny { }");
        NetworkModel model = outcome.SingleModel;
        Assert.Equal(2 * 9 + 2 + 3 * 2 + 3, model.ParameterCount);
        MemoryPlanModel m = model.Memory;
        Assert.Equal(4 * 29, m.ParameterBytes);
        Assert.Equal(2 * 4 * 29, m.TrainingStateBytes);
        Assert.Equal(16, m.LargestActivationLength);                        // the input is the largest tensor
        Assert.Equal(4 * 2 * 16, m.InferenceActivationBytesPerSample);
        Assert.Equal(4 * (8 + 0 + 2 * 2 + 3 + 3) + 4 * 2 * 16, m.TrainingActivationBytesPerSample); // conv, relu, pool x2, dense, probabilities
        Assert.Equal(4 * (1 * 3 * 3 * 2 * 2), m.ConvWorkspaceBytesPerThread);
        ExecutionPlan cpu = Lowerer.Lower(model, Backend.Cpu);
        Assert.Equal(model.Layers[1], cpu.Stages[0].FusedRelu);                 // the ReLU runs in the conv's epilogue
        Assert.Null(cpu.Stages[^1].FusedRelu);
        Assert.Equal(Model.LayerKind.SoftmaxCrossEntropy, model.Layers[^1].Kind);
        Assert.Equal("loss", model.Layers[^1].Name);
        Assert.Empty(outcome.CompilationErrors);
    }

    [Fact]
    public void Layer_names_with_newlines_quotes_and_markup_generate_code_that_compiles()
    {
        // Names are user text that lands in comments, doc comments and string literals of every emitter.
        GeneratorOutcome outcome = GeneratorHarness.Run(
            "using AlexNetCompiler;\n[Network(Channels = 1, Height = 8, Width = 8)]\n" +
            "[Conv2d(2, Kernel = 3, Name = \"a\\nb */ \\\" <c> & d\"), Relu, Dense(3, Name = \"x\\r\\ny\")]\npublic partial class Named { }");
        Assert.Contains(outcome.Sources, s => s.HintName.EndsWith(".Cpu.g.cs", StringComparison.Ordinal));
        Assert.Empty(outcome.CompilationErrors);
        Assert.Equal("a\nb */ \" <c> & d.weight", outcome.SingleModel.Layers[0].Parameters[0].Name);
    }

    [Fact]
    public void Memory_plan_gives_a_relu_after_lrn_its_own_buffer()
    {
        // [1, 4, 4] -> Conv2d(2, k=3) [2, 2, 2] -> Lrn [2, 2, 2] -> Relu [2, 2, 2] -> Dense(3) [3] -> loss [3]
        MemoryPlanModel m = GeneratorHarness.Run(
            "using AlexNetCompiler;\n[Network(Channels = 1, Height = 4, Width = 4)]\n[Conv2d(2, Kernel = 3), Lrn(Size = 3), Relu, Dense(3)]\npublic partial class Tiny { }").SingleModel.Memory;
        // conv 8, LRN output + scale 16, ReLU's own buffer 8 (LRN's backward reads LRN's output), dense 3, probabilities 3
        Assert.Equal(4 * (8 + 16 + 8 + 3 + 3) + 4 * 2 * 16, m.TrainingActivationBytesPerSample);
    }

    [Fact]
    public void Rectangular_kernels_strides_and_paddings()
    {
        // H: floor((8 + 2*1 - 3) / 1) + 1 = 8;  W: floor((9 + 0 - 5) / 2) + 1 = 3
        NetworkModel model = GeneratorHarness.Run(
            "using AlexNetCompiler;\n[Network(Channels = 1, Height = 8, Width = 9)]\n[Conv2d(2, KernelHeight = 3, KernelWidth = 5, StrideWidth = 2, PaddingHeight = 1), Dense(4)]\npublic partial class Rect { }").SingleModel;
        LayerModel conv = model.Layers[0];
        Assert.Equal(new TensorShape(2, 8, 3), conv.Output);
        Assert.Equal((3, 5, 1, 2, 1, 0), (conv.KernelHeight, conv.KernelWidth, conv.StrideHeight, conv.StrideWidth, conv.PaddingHeight, conv.PaddingWidth));
        Assert.Equal(new[] { 2, 1, 3, 5 }, conv.Parameters[0].Shape.ToArray());
    }

    [Fact]
    public void Names_and_identifiers_follow_the_conventions()
    {
        NetworkModel model = GeneratorHarness.Run(
            "using AlexNetCompiler;\n[Network(Channels = 1, Height = 8, Width = 8)]\n" +
            "[Conv2d(4, Kernel = 3, Name = \"stem.conv_a\"), Relu, MaxPool(2), Conv2d(4, Kernel = 1), Relu, Dropout(0.5f), Dense(8, BiasInit = 0.25f), Relu, Dense(3, Name = \"head\"), SoftmaxCrossEntropy]\n" +
            "public partial class Names { }").SingleModel;
        Assert.Equal(new[] { "stem.conv_a", "features.1", "features.2", "features.3", "features.4", "classifier.0", "classifier.1", "classifier.2", "head", "loss" },
            model.Layers.Select(l => l.Name));
        Assert.Equal(new[] { "StemConvA", "Relu1", "Pool1", "Conv2", "Relu2", "Dropout1", "Dense1", "Relu3", "Head", "Loss" },
            model.Layers.Select(l => l.Identifier));
        Assert.Equal(0.25f, model.Layers[6].Parameters[1].PaperBiasValue);   // BiasInit wins over the paper's 1
        Assert.Equal(0f, model.Layers[8].Parameters[1].PaperBiasValue);      // the last Dense: 0
        Assert.Equal(1 * 3 * 3, model.Layers[0].Parameters[0].FanIn);   // in/groups * kh * kw
        Assert.Equal(4 * 3 * 3, model.Layers[6].Parameters[0].FanIn);      // [4, 3, 3] flattened
    }

    [Fact]
    public void Generated_descriptor_of_the_canonical_network_loads_and_reports_the_published_count()
    {
        GeneratorOutcome outcome = Example.Canonical.Run();
        using var image = new MemoryStream();
        Microsoft.CodeAnalysis.Emit.EmitResult emitted = outcome.Output.Emit(image);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));

        var context = new AssemblyLoadContext("generated", isCollectible: true);
        try
        {
            image.Position = 0;
            Type type = context.LoadFromStream(image).GetType(Example.Canonical.TypeName, throwOnError: true)!;
            var descriptor = (NetworkDescriptor)type.GetProperty("Model", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
            Assert.Equal(60_965_224L, descriptor.ParameterCount);
            Assert.Equal(60_965_224L, (long)type.GetField("ParameterCount")!.GetValue(null)!);
            Assert.Equal(290_400, (int)type.GetField("Conv1OutputLength")!.GetValue(null)!);     // 96 * 55 * 55
            Assert.Equal(descriptor.ParameterCount, descriptor.Parameters.Sum(p => (long)p.Length));
            Assert.Equal("features.0.weight", descriptor.Parameters[0].Name);
            Assert.Equal(new[] { 96, 3, 11, 11 }, descriptor.Parameters[0].Shape);
            Assert.Contains("60,965,224", descriptor.ToSummary());
        }
        finally
        {
            context.Unload();
        }
    }
}
