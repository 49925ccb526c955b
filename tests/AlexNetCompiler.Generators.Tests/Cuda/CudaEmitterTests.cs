using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace AlexNetCompiler.Generators.Tests.Cuda;

public sealed class CudaEmitterTests
{
    [Fact]
    public void CanonicalAlexNetHasThePapersParameterCount() =>
        Assert.Equal(60_965_224, CudaTestNetworks.CanonicalAlexNet().ParameterCount);

    [Fact]
    public void TorchvisionAlexNetHasTorchvisionsParameterCount() =>
        Assert.Equal(61_100_840, CudaTestNetworks.TorchvisionAlexNet().ParameterCount);

    [Fact]
    public void CanonicalAlexNetFusesReluIntoConvAndDenseAndLrnIntoPool()
    {
        var program = CudaEmitter.Build(CudaTestNetworks.CanonicalAlexNet());
        string[] stages = program.Stages.Select(s => $"{s.Kind}:{s.Name}").ToArray();
        Assert.Equal(new[]
        {
            "Conv:conv1", "LrnPool:lrn1_pool1", "Conv:conv2", "LrnPool:lrn2_pool2", "Conv:conv3", "Conv:conv4", "Conv:conv5",
            "LrnPool:pool3", "Dense:dense1", "Dense:dense2", "Dense:dense3",
        }, stages);
        Assert.All(program.Stages.Where(s => s.Kind is StageKind.Conv), s => Assert.True(s.Relu));
        Assert.Equal(new[] { true, true, false }, program.Stages.Where(s => s.Kind is StageKind.Dense).Select(s => s.Relu));
        // Both dropouts fuse into the dense layer that reads them.
        Assert.Equal(new[] { 0.5f, 0.5f }, program.Stages.Where(s => s.Dropout is not null).Select(s => s.Dropout!.DropoutP));
        Assert.Equal("dense3_out", program.LogitsBuffer);
    }

    [Fact]
    public void OddNetRunsEveryUnfusedPath()
    {
        var program = CudaEmitter.Build(CudaTestNetworks.OddNet());
        Assert.Equal(new[] { "Conv:conv1", "LrnPool:pool1", "Relu:relu1", "LrnPool:lrn1", "Dropout:dropout1", "Conv:conv2", "Dense:dense1", "Dense:dense2", "Dense:dense3" },
            program.Stages.Select(s => $"{s.Kind}:{s.Name}"));
        Assert.Contains("LrnPool<6, 3, 3, 3, 3, true, 3, false, 1, 1, 1, 1, 0, 0> lrn1_t", program.Source, StringComparison.Ordinal);
        Assert.Contains("Conv2d<2, 13, 11, 6, 7, 6, 3, 3, 2, 2, 1, 1, 2, false, false> conv1_t", program.Source, StringComparison.Ordinal);
    }

    [Fact]
    public void AdaptiveAveragePoolsRunTheirTemplate_ExceptTheIdentity()
    {
        var program = CudaEmitter.Build(CudaTestNetworks.AvgPoolNet());
        Assert.Equal(new[] { "Conv:conv1", "AvgPool:avgpool1", "Conv:conv2", "AvgPool:avgpool2", "Relu:relu2", "Dense:dense1" },
            program.Stages.Select(s => $"{s.Kind}:{s.Name}"));
        Assert.Contains("AdaptiveAvgPool<6, 9, 8, 4, 3> avgpool1_t", program.Source, StringComparison.Ordinal);
        Assert.Contains("AdaptiveAvgPool<8, 4, 3, 5, 6> avgpool2_t", program.Source, StringComparison.Ordinal);
        Assert.DoesNotContain("avgpool3", program.Source, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void EveryLaunchedKernelIsDefinedAndEveryDefinedKernelIsLaunched(string name)
    {
        var program = CudaEmitter.Build(Network(name));
        // The network's source plus the runtime's prelude, which it includes (sgd_update lives there).
        string compiled = AlexNetCompiler.Cuda.CudaPrelude.Source + program.Source;
        var defined = Regex.Matches(compiled, @"extern ""C"" __global__ void (?:__launch_bounds__\(ALEXNET_THREADS\)|ALEXNET_GEMM_LAUNCH_BOUNDS)\s*(\w+)\(")
            .Select(m => m.Groups[1].Value).ToHashSet();
        var launched = program.Launches.Select(l => l.Kernel).ToHashSet();
        launched.Add("sgd_update"); // launched by the runner directly
        launched.Add("scale_buffer"); // so is the data-parallel gradient scaling
        Assert.Empty(launched.Except(defined));
        // Data-gradient kernels of the first layer are emitted but never needed.
        Assert.DoesNotContain(defined.Except(launched), k => !k.StartsWith(program.Stages[0].Name + "_", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void LaunchArgumentsReferToPlannedBuffersAndParameterRangesFit(string name)
    {
        NetworkModel model = Network(name);
        var program = CudaEmitter.Build(model);
        var buffers = program.Buffers.ToDictionary(b => b.Name);
        foreach (var launch in program.Launches)
        {
            Assert.InRange(launch.X.Evaluate(1), 1, int.MaxValue);
            foreach (var arg in launch.Args.Where(a => a.Kind == CudaEmitter.ArgKind.Buffer))
            {
                Assert.True(buffers.ContainsKey(arg.Buffer), $"{launch.Kernel} uses unknown buffer {arg.Buffer}");
                if (arg.Offset != 0) Assert.InRange(arg.Offset, 0, model.ParameterCount - 1);
            }
        }
        foreach (var zero in program.Backward.OfType<CudaEmitter.Zero>())
            Assert.InRange(zero.Offset + zero.Length, 1, model.ParameterCount);
        // Every parameter tensor receives a gradient: zeroed-then-accumulated, or written by a weight/bias kernel.
        var written = program.Backward.OfType<CudaEmitter.Launch>()
            .SelectMany(l => l.Args.Where(a => a.Kind == CudaEmitter.ArgKind.Buffer && a.Buffer == "grads").Select(a => a.Offset)).ToHashSet();
        foreach (ParameterModel p in model.Layers.SelectMany(l => l.Parameters))
            Assert.Contains(p.Offset, written);
    }

    [Fact]
    public void BackwardReadsTheGradientWhereThePreviousStepLeftIt()
    {
        var program = CudaEmitter.Build(CudaTestNetworks.CanonicalAlexNet());
        string current = "grad_a"; // the loss writes dlogits here
        Assert.Equal("grad_a", program.Loss.OfType<CudaEmitter.Launch>().Single().Args[3].Buffer);
        foreach (var launch in program.Backward.OfType<CudaEmitter.Launch>())
        {
            var gradArgs = launch.Args.Where(a => a.Buffer is "grad_a" or "grad_b").Select(a => a.Buffer).ToArray();
            if (launch.Kernel.EndsWith("_backward_data", StringComparison.Ordinal) || launch.Kernel.EndsWith("pool1_backward", StringComparison.Ordinal) ||
                launch.Kernel.EndsWith("pool2_backward", StringComparison.Ordinal) || launch.Kernel.EndsWith("pool3_backward", StringComparison.Ordinal))
            {
                Assert.Equal(new[] { current, current == "grad_a" ? "grad_b" : "grad_a" }, gradArgs);
                current = gradArgs[1];
            }
            else
            {
                Assert.Equal(new[] { current }, gradArgs);
            }
        }
        Assert.DoesNotContain(program.Backward.OfType<CudaEmitter.Launch>(), l => l.Kernel == "conv1_backward_data");
    }

    [Fact]
    public void FlopCountsFollowTheLayerShapes()
    {
        // Canonical AlexNet, multiply-adds per image: conv k*k*(C/G) per output element, dense IN per output.
        long macs = 96L * 55 * 55 * 11 * 11 * 3 + 256L * 27 * 27 * 5 * 5 * 48 + 384L * 13 * 13 * 3 * 3 * 256
                  + 384L * 13 * 13 * 3 * 3 * 192 + 256L * 13 * 13 * 3 * 3 * 192 + 9216L * 4096 + 4096L * 4096 + 4096L * 1000;
        var program = CudaEmitter.Build(CudaTestNetworks.CanonicalAlexNet());
        Assert.Equal(2 * macs, program.ForwardFlopsPerSample);
        long conv1 = 2L * 96 * 55 * 55 * 11 * 11 * 3;
        Assert.Equal(3 * 2 * macs - conv1, program.TrainingFlopsPerSample); // conv1 has no input gradient
        // The per-launch counts (used to report each kernel against peak) add up to the same totals.
        Assert.Equal(program.ForwardFlopsPerSample, program.Forward.OfType<CudaEmitter.Launch>().Sum(l => l.Flops));
        Assert.Equal(program.TrainingFlopsPerSample, program.Launches.Sum(l => l.Flops));
    }

    [Theory]
    [InlineData(2f, "2.0f")]
    [InlineData(1e-4f, "0.0001f")]
    [InlineData(0.75f, "0.75f")]
    [InlineData(1e-10f, "1E-10f")]
    public void FloatLiteralsRoundTrip(float value, string literal) => Assert.Equal(literal, CudaEmitter.Float(value));

    [Fact]
    public void GeneratedCSharpCompilesAgainstTheRuntimeAndCarriesTheSource()
    {
        NetworkModel model = CudaTestNetworks.CanonicalAlexNet();
        string code = CudaEmitter.Emit(model, Lowerer.Lower(model, Backend.Cuda))!;
        var syntax = CSharpSyntaxTree.ParseText("namespace CanonicalAlexNet { public partial class AlexNet2012 { } }\n");
        var generated = CSharpSyntaxTree.ParseText(code);
        // The launch plan names the model file's constants (InputLength, Conv1WeightOffset, ...).
        var constants = CSharpSyntaxTree.ParseText(ModelEmitter.Emit(model, Lowerer.Lower(model, Backend.Cpu)));
        var references = AppDomain.CurrentDomain.GetAssemblies()
            .Where(a => !a.IsDynamic && a.Location.Length > 0)
            .Select(a => MetadataReference.CreateFromFile(a.Location))
            .Append(MetadataReference.CreateFromFile(typeof(AlexNetCompiler.Cuda.CudaLaunchPlan).Assembly.Location));
        var compilation = CSharpCompilation.Create("CudaEmitTest", [syntax, generated, constants], references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var stream = new MemoryStream();
        var emit = compilation.Emit(stream);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning)));
        Assert.Empty(emit.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));

        var assembly = System.Reflection.Assembly.Load(stream.ToArray());
        var type = assembly.GetType("CanonicalAlexNet.AlexNet2012")!;
        string source = (string)type.GetField("CudaSource")!.GetValue(null)!;
        Assert.Equal(CudaEmitter.Build(model).Source, source);
        var plan = (AlexNetCompiler.Cuda.CudaLaunchPlan)type.GetProperty("CudaPlan")!.GetValue(null)!;
        Assert.Equal(60_965_224, plan.ParameterCount);
        Assert.Equal("dense3_out", plan.LogitsBuffer);
        Assert.Equal(CudaEmitter.Build(model).Launches.Select(l => l.Kernel), plan.Forward.Concat(plan.Loss).Concat(plan.Backward)
            .OfType<AlexNetCompiler.Cuda.CudaLaunch>().Select(l => l.Kernel));
        Assert.Equal(55L * 55 * 128, plan.Forward.OfType<AlexNetCompiler.Cuda.CudaLaunch>().First().GridX.PerSample * 128);
    }

    // The GEMM extents the runner sizes grids from, against AlexNet's shapes (Krizhevsky et al. 2012, figure 2:
    // conv1 has 96 kernels of 11x11x3 over a 55x55 output; conv2 256 kernels of 5x5x48 in two groups over 27x27;
    // the first dense layer maps 6x6x256 = 9216 inputs to 4096 outputs).
    [Fact]
    public void GemmLaunchesCarryTheirGemmShape()
    {
        var program = CudaEmitter.Build(CudaTestNetworks.CanonicalAlexNet());
        CudaEmitter.Gemm Gemm(string kernel) => program.Launches.Single(l => l.Kernel == kernel).Gemm!;
        Assert.Equal(new CudaEmitter.Gemm(0, 96, 55 * 55, 0), Gemm("conv1_forward"));
        Assert.Equal(new CudaEmitter.Gemm(0, 96, 0, 3 * 11 * 11, SplitReduction: true), Gemm("conv1_backward_weights"));
        Assert.Equal(new CudaEmitter.Gemm(0, 128, 27 * 27, 0), Gemm("conv2_forward"));
        Assert.Equal(new CudaEmitter.Gemm(0, 48, 27 * 27, 0), Gemm("conv2_backward_data"));
        Assert.Equal(new CudaEmitter.Gemm(1, 0, 0, 4096), Gemm("dense1_forward"));
        Assert.Equal(new CudaEmitter.Gemm(0, 4096, 0, 9216), Gemm("dense1_backward_weights"));
        Assert.Equal(new CudaEmitter.Gemm(1, 0, 0, 9216), Gemm("dense1_backward_data"));
        // Every launch of a kernel declared with the GEMM launch bounds has a shape, and no other launch has one.
        string source = program.Source;
        foreach (var launch in program.Launches)
        {
            bool declaredGemm = source.Contains("ALEXNET_GEMM_LAUNCH_BOUNDS " + launch.Kernel + "(", StringComparison.Ordinal);
            Assert.True(declaredGemm == (launch.Gemm is not null), $"{launch.Kernel}: GEMM launch bounds {declaredGemm}, GEMM shape {launch.Gemm is not null}");
        }
    }

    [Fact]
    public void CanonicalAlexNetSourceMatchesReviewedSnapshot() => AssertSnapshot("AlexNet2012.cu", CudaEmitter.Build(CudaTestNetworks.CanonicalAlexNet()).Source);

    // Generated code reads like hand-written code: no line of the CUDA source or of the C# that carries it and the
    // launch plan is longer than 120 characters, whatever the names in the spec.
    [Theory]
    [MemberData(nameof(Networks))]
    public void GeneratedCudaLinesStayUnder120Characters(string name)
    {
        NetworkModel model = Network(name);
        string csharp = CudaEmitter.Emit(model, Lowerer.Lower(model, Backend.Cuda))!;
        foreach (string line in csharp.Split('\n'))
            Assert.True(line.Length <= SourceLayout.MaxLineLength, $"{line.Length} characters: {line}");
        Assert.DoesNotContain("CudaArg.Of(\"params\", 1", csharp, StringComparison.Ordinal); // parameter offsets are named constants
    }

    [Fact]
    public void LongCommentsAndSignaturesWrapAtWordsAndParameters()
    {
        string comment = "// " + string.Join(" ", Enumerable.Repeat("word", 40));
        string signature = "extern \"C\" __global__ void __launch_bounds__(256) kernel(" + string.Join(", ", Enumerable.Range(0, 12).Select(i => $"const float* __restrict__ x{i}")) + ")";
        string wrapped = SourceLayout.Wrap(comment + "\n" + signature);
        string[] lines = wrapped.Split('\n');
        Assert.All(lines, l => Assert.True(l.Length <= SourceLayout.MaxLineLength, l));
        Assert.All(lines.TakeWhile(l => l.StartsWith("//", StringComparison.Ordinal)), l => Assert.StartsWith("// word", l));
        Assert.Equal(string.Join(" ", Enumerable.Repeat("word", 40)), string.Join(" ", lines.Where(l => l.StartsWith("//", StringComparison.Ordinal)).Select(l => l[3..])));
        Assert.Contains(lines, l => l.EndsWith("__launch_bounds__(256) kernel(", StringComparison.Ordinal));
        Assert.Equal(signature.Replace(" ", ""), string.Join("", lines.SkipWhile(l => l.StartsWith("//", StringComparison.Ordinal))).Replace(" ", ""));
    }

    [Fact]
    public void EmissionIsDeterministic() =>
        Assert.Equal(CudaEmitter.Build(CudaTestNetworks.FashionNet()).Source, CudaEmitter.Build(CudaTestNetworks.FashionNet()).Source);

    public static TheoryData<string> Networks() => new(CudaTestNetworks.All().Select(n => n.Name));

    internal static NetworkModel Network(string name) => CudaTestNetworks.All().Single(n => n.Name == name).Model;

    private static void AssertSnapshot(string file, string actual, [CallerFilePath] string here = "")
    {
        string dir = Path.Combine(Path.GetDirectoryName(here)!, "Snapshots");
        string approved = Path.Combine(dir, file);
        string received = Path.Combine(dir, Path.GetFileNameWithoutExtension(file) + ".received" + Path.GetExtension(file));
        string expected = File.Exists(approved) ? File.ReadAllText(approved).Replace("\r\n", "\n") : "";
        if (expected == actual)
        {
            if (File.Exists(received)) File.Delete(received);
            return;
        }
        Directory.CreateDirectory(dir);
        File.WriteAllText(received, actual);
        Assert.Fail($"CUDA source differs from the reviewed snapshot {approved}; review {received} and rename it over the snapshot if the change is intended.");
    }
}
