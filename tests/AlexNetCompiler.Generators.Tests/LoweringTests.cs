using System.Reflection;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Tests.Cuda;
using AlexNetCompiler.Generators.Tests.Infrastructure;

namespace AlexNetCompiler.Generators.Tests;

using LayerKind = AlexNetCompiler.Generators.Model.LayerKind;

/// <summary>
/// The execution plans: each backend's stages cover every layer once and chain buffer to buffer, the backends agree
/// on what they must agree on, and the generated code holds exactly the buffers its plan names.
/// </summary>
public sealed class LoweringTests
{
    public static TheoryData<string> Networks() => new(CudaTestNetworks.All().Select(n => n.Name));

    private static NetworkModel Network(string name) => CudaTestNetworks.All().Single(n => n.Name == name).Model;

    private static readonly Backend[] Backends = [Backend.Cpu, Backend.Cuda];

    private static IEnumerable<LayerModel> LayersOf(PlanStage s) =>
        new[] { s.Layer, s.FusedRelu, s.Lrn, s.Pool, s.Dropout }.OfType<LayerModel>().Distinct();

    [Theory]
    [MemberData(nameof(Networks))]
    public void EveryLayerRunsInExactlyOneStage_OnEveryBackend(string name)
    {
        NetworkModel model = Network(name);
        foreach (Backend backend in Backends)
        {
            ExecutionPlan plan = Lowerer.Lower(model, backend);
            int[] covered = plan.Stages.Items.SelectMany(LayersOf).Select(l => l.Index).OrderBy(i => i).ToArray();
            int[] expected = model.Layers.Items.Where(l => l.Kind != LayerKind.SoftmaxCrossEntropy && !IsIdentity(l)).Select(l => l.Index).ToArray();
            Assert.Equal(expected, covered);
        }
    }

    // An adaptive average pool to its input's own size averages windows of one element: no backend runs anything for it.
    private static bool IsIdentity(LayerModel l) => l.Kind == LayerKind.AdaptiveAvgPool && l.Input == l.Output;

    [Theory]
    [InlineData("AvgPoolNet", 3, 1)]
    [InlineData("TorchvisionAlexNet", 1, 1)]
    public void AnAdaptiveAveragePoolIsAStageOfItsOwn_UnlessItIsTheIdentity(string name, int pools, int identities)
    {
        NetworkModel model = Network(name);
        LayerModel[] avgPools = model.Layers.Items.Where(l => l.Kind == LayerKind.AdaptiveAvgPool).ToArray();
        Assert.Equal(pools, avgPools.Length);
        Assert.Equal(identities, avgPools.Count(IsIdentity));
        foreach (Backend backend in Backends)
        {
            PlanStage[] stages = Lowerer.Lower(model, backend).Stages.Items.Where(s => s.Kind == StageKind.AvgPool).ToArray();
            Assert.Equal(avgPools.Where(l => !IsIdentity(l)).Select(l => l.Index), stages.Select(s => s.Layer.Index));
            Assert.All(stages, s => Assert.Equal(s.Layer.Output, s.OutputShape));
        }
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void StagesChain_EachReadsWhatThePreviousWrote_AndEveryNameIsAPlannedBuffer(string name)
    {
        NetworkModel model = Network(name);
        foreach (Backend backend in Backends)
        {
            ExecutionPlan plan = Lowerer.Lower(model, backend);
            var buffers = plan.Buffers.Items.ToDictionary(b => b.Name);
            string previous = Lowerer.InputBuffer;
            TensorShape previousShape = model.Input;
            foreach (PlanStage s in plan.Stages)
            {
                Assert.Equal(previous, s.Input);
                Assert.Equal(previousShape, s.InputShape);
                Assert.Equal(s.OwnsOutput, s.Output != s.Input);
                foreach (string? buffer in new[] { s.Input, s.Output, s.Scale, s.Argmax })
                {
                    if (buffer is null) continue;
                    Assert.True(buffers.ContainsKey(buffer), $"{backend.Name} {s.Name}: '{buffer}' is not a buffer of the plan");
                    Assert.True(buffers[buffer].PerSample >= s.OutputShape.Length || buffer == s.Input, $"{backend.Name} {s.Name}: '{buffer}' is too small");
                }
                (previous, previousShape) = (s.Output, s.OutputShape);
            }
            Assert.Equal(previous, plan.Logits);
            Assert.Equal(model.ClassCount, previousShape.Length);
            long gradient = plan.Buffer(plan.GradientA).PerSample;
            Assert.All(plan.Stages.Items, s => Assert.True(s.OutputShape.Length <= gradient, $"{backend.Name} {s.Name}: the gradient buffers are too small"));
        }
    }

    // The two backends fuse differently (CUDA also fuses LRN into the pool and dropout into the dense), but a ReLU
    // after a conv or dense runs in its epilogue on both, and both compute the same FLOPs.
    [Theory]
    [MemberData(nameof(Networks))]
    public void BackendsAgreeOnReluFusionAndArithmetic(string name)
    {
        NetworkModel model = Network(name);
        ExecutionPlan cpu = Lowerer.Lower(model, Backend.Cpu), cuda = Lowerer.Lower(model, Backend.Cuda);
        static (int, int?)[] Gemms(ExecutionPlan p) =>
            p.Stages.Items.Where(s => s.Kind is StageKind.Conv or StageKind.Dense).Select(s => (s.Layer.Index, s.FusedRelu?.Index)).ToArray();
        Assert.Equal(Gemms(cpu), Gemms(cuda));
        Assert.Equal(cpu.Stages.Items.Sum(s => s.ForwardFlops), cuda.Stages.Items.Sum(s => s.ForwardFlops));
        Assert.All(cuda.Stages.Items.Where(s => s.Kind == StageKind.Relu), s => Assert.True(s.OwnsOutput)); // CUDA never works in place
    }

    [Fact]
    public void CanonicalAlexNet_CpuRunsEveryLayerOnItsOwn_CudaFusesLrnIntoPoolAndDropoutIntoDense()
    {
        NetworkModel model = CudaTestNetworks.CanonicalAlexNet();
        Assert.Equal(
            ["conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "conv4", "conv5", "pool3", "dropout1", "dense1", "dropout2", "dense2", "dense3"],
            Lowerer.Lower(model, Backend.Cpu).Stages.Items.Select(s => s.Name));
        Assert.Equal(
            ["conv1", "lrn1_pool1", "conv2", "lrn2_pool2", "conv3", "conv4", "conv5", "pool3", "dense1", "dense2", "dense3"],
            Lowerer.Lower(model, Backend.Cuda).Stages.Items.Select(s => s.Name));
    }

    // The CPU class holds a field per buffer of its plan (activations, saved tensors, probabilities, gradients) and no
    // other private array (Parameters and Gradients are its public state): what is allocated is what was planned, and the memory plan is computed from the same buffers.
    [Fact]
    public void GeneratedCpuClassAllocatesExactlyThePlansBuffers()
    {
        GeneratorOutcome outcome = Example.Canonical.Run();
        NetworkModel model = outcome.SingleModel;
        ExecutionPlan plan = Lowerer.Lower(model, Backend.Cpu);
        using var stream = new MemoryStream();
        Microsoft.CodeAnalysis.Emit.EmitResult emit = outcome.Output.Emit(stream);
        Assert.True(emit.Success, string.Join("\n", emit.Diagnostics));
        Type type = Assembly.Load(stream.ToArray()).GetType(Example.Canonical.TypeName)!;
        string[] arrays = type.GetFields(BindingFlags.NonPublic | BindingFlags.Instance).Where(f => f.FieldType.IsArray && f.Name.StartsWith('_')).Select(f => f.Name.TrimStart('_')).Order().ToArray();
        string[] planned = plan.Buffers.Items.Where(b => b.Role is BufferRole.Activation or BufferRole.Saved or BufferRole.Loss or BufferRole.Gradient)
            .Select(b => b.Name).Order().ToArray();
        Assert.Equal(planned, arrays);
    }

    // No buffer of the CUDA plan is allocated for nothing, and no launch names a buffer the plan lacks.
    [Fact]
    public void EveryBufferOfTheCudaPlanIsUsedByALaunch()
    {
        NetworkModel model = CudaTestNetworks.CanonicalAlexNet();
        ExecutionPlan plan = Lowerer.Lower(model, Backend.Cuda);
        CudaEmitter.CudaProgram program = CudaEmitter.Build(model, plan);
        var argumentBuffers = program.Launches.SelectMany(l => l.Args).Where(a => a.Kind == CudaEmitter.ArgKind.Buffer).Select(a => a.Buffer).ToHashSet();
        // (The velocity is read by the SGD kernel, which the runner launches itself.)
        Assert.Subset(plan.Buffers.Items.Select(b => b.Name).ToHashSet(), argumentBuffers);
        Assert.Equal(plan.Buffers.Items.Select(b => b.Name).Where(n => n != "velocity").Order(), argumentBuffers.Order());
    }
}
