using AlexNetCompiler.Cuda;
using AlexNetCompiler.Tests.Networks;
using AlexNetCompiler.Training;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda.Emulation;

/// <summary>
/// <see cref="CudaNetwork"/> on the CUDA emulator, next to the generated CPU class, both driven through
/// <see cref="INetwork"/>. The emulator library stands in for the CUDA driver, which a process loads once, so each
/// scenario runs in a child process (this assembly run as a program, <see cref="Program"/>) with the library
/// named; the scenarios themselves are in <see cref="CudaNetworkScenarios"/>. UnusualNet keeps the runs short.
/// </summary>
public sealed class EmulatedCudaNetworkTests(ITestOutputHelper output)
{
    // A hang guard only, sized for a loaded two-core machine.
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(15);

    [SkippableFact]
    public void CpuAndCudaNetworksComputeTheSameThroughINetwork() => RunScenario(nameof(CudaNetworkScenarios.SameThroughINetwork));

    [SkippableFact]
    public void ParametersFollowTheSynchronisationRule() => RunScenario(nameof(CudaNetworkScenarios.ParameterSynchronisation));

    [SkippableFact]
    public void TheDeviceOwnsTheMomentumUntilItIsCopiedBack() => RunScenario(nameof(CudaNetworkScenarios.OptimizerStateOwnership));

    [SkippableFact]
    public void AShardAtAnOffsetDrawsTheCpuNetworksDropoutMasks() => RunScenario(nameof(CudaNetworkScenarios.ShardAtAnOffset));

    private void RunScenario(string scenario)
    {
        CudaEmulator.RequireTools();
        string library = CudaEmulator.BuildNetworkLibrary(nameof(UnusualNet), UnusualNet.CudaSource, tf32: false);
        var (code, text) = CudaEmulator.RunProgram(typeof(EmulatedCudaNetworkTests).Assembly.Location,
            [CudaNetworkScenarios.Command, scenario], library, Timeout);
        output.WriteLine(text);
        Assert.True(code == 0, $"scenario {scenario} exited with {code}:\n{text}");
        Assert.Contains($"PASS {scenario}", text, StringComparison.Ordinal);
    }
}

/// <summary>
/// What the child process runs: each scenario builds UnusualNet on the CPU and as a <see cref="CudaNetwork"/> on
/// GPU 0 (the emulator), with the same He-initialised parameters, batches and dropout seeds, and throws (an xUnit
/// assertion) at the first difference beyond the GPU check's FP32 tolerances (relative L2: 1e-4 per tensor, 1e-3
/// per SGD step and for the momentum buffer).
/// </summary>
internal static class CudaNetworkScenarios
{
    public const string Command = "cuda-network-scenario";

    private const int Batch = 4;
    private const int Steps = 3;
    private const ulong InitSeed = 7;
    private static readonly SgdOptions Options = new(LearningRate: 0.001f, Momentum: 0.9f, WeightDecay: 5e-4f);
    private static EmulatedGpuCheck.Tolerances Tolerances => EmulatedGpuCheck.Fp32Tolerances;

    public static int Run(string scenario)
    {
        Action? body = scenario switch
        {
            nameof(SameThroughINetwork) => SameThroughINetwork,
            nameof(ParameterSynchronisation) => ParameterSynchronisation,
            nameof(OptimizerStateOwnership) => OptimizerStateOwnership,
            nameof(ShardAtAnOffset) => ShardAtAnOffset,
            _ => null,
        };
        if (body is null)
        {
            Console.Error.WriteLine($"Unknown scenario '{scenario}'.");
            return 2;
        }
        try
        {
            body();
            Console.WriteLine($"PASS {scenario}");
            return 0;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"FAIL {scenario}: {e}");
            return 1;
        }
    }

    /// <summary>Forward, ForwardBackward and a few TrainSteps through one helper that sees only INetwork.</summary>
    public static void SameThroughINetwork()
    {
        var cpu = new UnusualNet(Batch);
        using CudaNetwork gpu = CreateGpuNetwork();
        Pass expected = Drive(cpu, NewOptimizer());
        Pass actual = Drive(gpu, NewOptimizer());

        AssertClose("forward logits", expected.ForwardLogits, actual.ForwardLogits, Tolerances.LogitsAndLoss);
        AssertClose("loss", [expected.Loss], [actual.Loss], Tolerances.LogitsAndLoss);
        AssertClose("training logits", expected.TrainingLogits, actual.TrainingLogits, Tolerances.LogitsAndLoss);
        foreach (ParameterDescriptor p in UnusualNet.Model.Parameters)
            AssertClose("gradient " + p.Name, expected.Gradients.AsSpan(p.Offset, p.Length), actual.Gradients.AsSpan(p.Offset, p.Length), Tolerances.Gradient);
        for (int step = 0; step < Steps; step++)
            AssertClose($"loss of step {step + 1}", [expected.StepLosses[step]], [actual.StepLosses[step]], Tolerances.LogitsAndLoss);
        AssertClose($"parameter change over {Steps} steps", Difference(expected.After, expected.Before), Difference(actual.After, actual.Before), Tolerances.Sgd);
        AssertClose("parameters after the steps", expected.After, actual.After, Tolerances.LogitsAndLoss);
    }

    /// <summary>
    /// Reading Parameters after a device step gives the device's values; writing into the array it returned is what
    /// the next pass and the next update use.
    /// </summary>
    public static void ParameterSynchronisation()
    {
        var cpu = new UnusualNet(Batch);
        using CudaNetwork gpu = CreateGpuNetwork();
        Initializer.Initialize(UnusualNet.Model, cpu.Parameters, InitScheme.He, InitSeed);
        cpu.Parameters.CopyTo(gpu.Parameters, 0);
        float[] initial = cpu.Parameters.ToArray();
        Sgd cpuOptimizer = NewOptimizer(), gpuOptimizer = NewOptimizer();
        var (images, labels) = Data(0);

        // Read after a device step: downloaded first, so the step is in it (a stale copy would show no change at all).
        cpu.TrainStep(images, labels, Batch, cpuOptimizer, dropoutSeed: 100);
        gpu.TrainStep(images, labels, Batch, gpuOptimizer, dropoutSeed: 100);
        AssertClose("step read back", Difference(cpu.Parameters, initial), Difference(gpu.Parameters, initial), Tolerances.Sgd);

        // Written on the host after the step, then a Forward: it uses the written values. Shifting the last layer's
        // biases moves each logit by its class's shift, far beyond the tolerance.
        float[] logitsBeforeWrite = new float[Batch * UnusualNet.ClassCount];
        gpu.Forward(images, Batch, logitsBeforeWrite);
        ParameterDescriptor lastBias = UnusualNet.Model.Parameters.Last(p => p.Role == ParameterRole.Bias);
        foreach (float[] parameters in new[] { cpu.Parameters, gpu.Parameters })
            for (int i = 0; i < lastBias.Length; i++) parameters[lastBias.Offset + i] += 3f + i;
        float[] cpuLogits = new float[logitsBeforeWrite.Length], gpuLogits = new float[logitsBeforeWrite.Length];
        cpu.Forward(images, Batch, cpuLogits);
        gpu.Forward(images, Batch, gpuLogits);
        AssertClose("logits after a host write", cpuLogits, gpuLogits, Tolerances.LogitsAndLoss);
        Assert.InRange(gpuLogits[0] - logitsBeforeWrite[0], 2.99f, 3.01f);

        // Written on the host, then a device step with no pass between: the update starts from the written values.
        ParameterDescriptor firstWeight = UnusualNet.Model.Parameters[0];
        foreach (float[] parameters in new[] { cpu.Parameters, gpu.Parameters })
            for (int i = 0; i < firstWeight.Length; i++) parameters[firstWeight.Offset + i] *= 0.5f;
        cpu.TrainStep(images, labels, Batch, cpuOptimizer, dropoutSeed: 101);
        gpu.TrainStep(images, labels, Batch, gpuOptimizer, dropoutSeed: 101);
        AssertClose("parameters after a step from written values", cpu.Parameters, gpu.Parameters, Tolerances.LogitsAndLoss);
    }

    /// <summary>
    /// While a CudaNetwork trains with an Sgd, its momentum lives on the device: the Sgd's Velocity is untouched
    /// until CopyOptimizerStateToHost brings it back; its StepCount counts every step. Another Sgd used with the
    /// network takes over with its own velocity.
    /// </summary>
    public static void OptimizerStateOwnership()
    {
        var cpu = new UnusualNet(Batch);
        using CudaNetwork gpu = CreateGpuNetwork();
        Initializer.Initialize(UnusualNet.Model, cpu.Parameters, InitScheme.He, InitSeed);
        cpu.Parameters.CopyTo(gpu.Parameters, 0);
        Sgd cpuOptimizer = NewOptimizer(), gpuOptimizer = NewOptimizer();
        for (int step = 0; step < 2; step++)
        {
            var (images, labels) = Data(step);
            cpu.TrainStep(images, labels, Batch, cpuOptimizer, dropoutSeed: 200 + (ulong)step);
            gpu.TrainStep(images, labels, Batch, gpuOptimizer, dropoutSeed: 200 + (ulong)step);
        }
        Assert.Equal(2, gpuOptimizer.StepCount);
        Assert.All(gpuOptimizer.Velocity, v => Assert.Equal(0f, v));
        gpu.CopyOptimizerStateToHost();
        AssertClose("velocity copied back", cpuOptimizer.Velocity, gpuOptimizer.Velocity, Tolerances.Sgd);

        // A second optimizer with a velocity of its own (half the first one's) continues on both sides; if the device
        // kept the first one's momentum, the step would differ by half of it.
        Sgd cpuSuccessor = Successor(cpuOptimizer), gpuSuccessor = Successor(cpuOptimizer);
        var (nextImages, nextLabels) = Data(2);
        float[] cpuBefore = cpu.Parameters.ToArray(), gpuBefore = gpu.Parameters.ToArray();
        cpu.TrainStep(nextImages, nextLabels, Batch, cpuSuccessor, dropoutSeed: 202);
        gpu.TrainStep(nextImages, nextLabels, Batch, gpuSuccessor, dropoutSeed: 202);
        Assert.Equal(3, gpuSuccessor.StepCount);
        AssertClose("step after the hand-over", Difference(cpu.Parameters, cpuBefore), Difference(gpu.Parameters, gpuBefore), Tolerances.Sgd);
        gpu.CopyOptimizerStateToHost();
        AssertClose("velocity of the second optimizer", cpuSuccessor.Velocity, gpuSuccessor.Velocity, Tolerances.Sgd);

        static Sgd Successor(Sgd from)
        {
            Sgd next = NewOptimizer();
            for (int i = 0; i < next.Velocity.Length; i++) next.Velocity[i] = from.Velocity[i] / 2;
            next.StepCount = from.StepCount;
            return next;
        }
    }

    /// <summary>
    /// Samples 4..6 of a batch of 7, passed alone with dropoutFirstSample 4, on the GPU and on the CPU: the same logits,
    /// loss and gradients, so the GPU draws the masks the CPU draws for those samples, in the standalone dropout (before
    /// a conv) and in the one fused into a Dense. The logits are also the CPU's whole batch's rows 4..6; and the same
    /// shard passed as if it started at sample 0 differs by far more than the tolerance (its masks are other ones).
    /// </summary>
    public static void ShardAtAnOffset()
    {
        const int whole = 7, first = 4, shard = whole - first;
        const ulong seed = 11;
        var cpu = new UnusualNet(whole);
        using CudaNetwork gpu = CreateGpuNetwork();
        Initializer.Initialize(UnusualNet.Model, cpu.Parameters, InitScheme.He, InitSeed);
        cpu.Parameters.CopyTo(gpu.Parameters, 0);
        var random = SeededRandom.ForStream(43, 0);
        float[] images = new float[whole * UnusualNet.InputLength];
        for (int i = 0; i < images.Length; i++) images[i] = 2 * random.NextSingle() - 1;
        int[] labels = new int[whole];
        for (int i = 0; i < labels.Length; i++) labels[i] = random.NextInt(UnusualNet.ClassCount);
        ReadOnlySpan<float> shardImages = images.AsSpan(first * UnusualNet.InputLength);
        ReadOnlySpan<int> shardLabels = labels.AsSpan(first);
        int classes = UnusualNet.ClassCount;

        cpu.ForwardBackward(images, labels, whole, seed);
        float[] wholeBatchRows = cpu.Logits.Slice(first * classes, shard * classes).ToArray();

        float cpuLoss = cpu.ForwardBackward(shardImages, shardLabels, shard, seed, dropoutFirstSample: first);
        float[] cpuLogits = cpu.Logits.ToArray(), cpuGradients = cpu.Gradients.ToArray();
        Assert.Equal(wholeBatchRows, cpuLogits); // the CPU's own contract, which the GPU is held to below

        float gpuLoss = gpu.ForwardBackward(shardImages, shardLabels, shard, seed, dropoutFirstSample: first);
        float[] gpuLogits = gpu.Logits.ToArray(), gpuGradients = gpu.Gradients.ToArray();
        AssertClose("shard logits", cpuLogits, gpuLogits, Tolerances.LogitsAndLoss);
        AssertClose("shard logits against the whole batch's", wholeBatchRows, gpuLogits, Tolerances.LogitsAndLoss);
        AssertClose("shard loss", [cpuLoss], [gpuLoss], Tolerances.LogitsAndLoss);
        foreach (ParameterDescriptor p in UnusualNet.Model.Parameters)
            AssertClose("shard gradient " + p.Name, cpuGradients.AsSpan(p.Offset, p.Length), gpuGradients.AsSpan(p.Offset, p.Length), Tolerances.Gradient);

        gpu.ForwardBackward(shardImages, shardLabels, shard, seed, dropoutFirstSample: 0);
        double moved = RelativeL2(cpuLogits, gpu.Logits);
        Console.WriteLine($"shard logits with the masks of samples 0..{shard - 1}: relative L2 {moved:E2}");
        Assert.True(moved > 100 * Tolerances.LogitsAndLoss, $"the masks at sample 0 change the shard's logits by only {moved:E2}");
    }

    private sealed record Pass(float[] Before, float[] ForwardLogits, float Loss, float[] TrainingLogits, float[] Gradients, float[] StepLosses, float[] After);

    // Everything the comparison needs, through INetwork alone.
    private static Pass Drive(INetwork network, Sgd optimizer)
    {
        Initializer.Initialize(network.Descriptor, network.Parameters, InitScheme.He, InitSeed);
        float[] before = network.Parameters.ToArray();
        var (images, labels) = Data(0);
        float[] forwardLogits = new float[Batch * network.Descriptor.ClassCount];
        network.Forward(images, Batch, forwardLogits);
        float loss = network.ForwardBackward(images, labels, Batch, dropoutSeed: 11);
        float[] trainingLogits = network.Logits.ToArray();
        float[] gradients = network.Gradients.ToArray();
        float[] stepLosses = new float[Steps];
        for (int step = 0; step < Steps; step++)
        {
            var (stepImages, stepLabels) = Data(step + 1);
            stepLosses[step] = network.TrainStep(stepImages, stepLabels, Batch, optimizer, dropoutSeed: 100 + (ulong)step);
        }
        return new Pass(before, forwardLogits, loss, trainingLogits, gradients, stepLosses, network.Parameters.ToArray());
    }

    private static CudaNetwork CreateGpuNetwork() =>
        // One GEMM tile: no tuning runs, and the emulator library holds that tile's kernels.
        CudaNetwork.Create(UnusualNet.Model, UnusualNet.CudaPlan, UnusualNet.CudaSource, Batch, new CudaRunnerOptions(GemmTiles: [CudaGemmTile.Default]));

    private static Sgd NewOptimizer() => new(checked((int)UnusualNet.Model.ParameterCount), Options);

    // Batch number `index`: inputs uniform in [-1, 1), labels uniform over the classes, the same on every call.
    private static (float[] Images, int[] Labels) Data(int index)
    {
        var random = SeededRandom.ForStream(42, (ulong)index);
        float[] images = new float[Batch * UnusualNet.InputLength];
        for (int i = 0; i < images.Length; i++) images[i] = 2 * random.NextSingle() - 1;
        int[] labels = new int[Batch];
        for (int i = 0; i < labels.Length; i++) labels[i] = random.NextInt(UnusualNet.ClassCount);
        return (images, labels);
    }

    private static float[] Difference(float[] a, float[] b) => a.Zip(b, (x, y) => x - y).ToArray();

    // Relative L2 error ||actual - expected|| / ||expected||, as the GPU check measures it.
    private static void AssertClose(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance)
    {
        double relative = RelativeL2(expected, actual);
        Console.WriteLine($"{what}: relative L2 {relative:E2} (tolerance {tolerance:E0})");
        Assert.True(relative <= tolerance, $"{what}: relative L2 {relative:E2} exceeds {tolerance:E0}");
    }

    private static double RelativeL2(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double error = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            error += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return norm == 0 ? Math.Sqrt(error) : Math.Sqrt(error / norm);
    }
}
