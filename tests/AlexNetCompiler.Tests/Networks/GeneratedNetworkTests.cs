using AlexNetCompiler.Training;
using FashionMnist;

namespace AlexNetCompiler.Tests.Networks;

/// <summary>
/// Behaviour of the generated compute (Forward / ForwardBackward / TrainStep) on the Fashion-MNIST network.
/// Numeric agreement with libtorch is checked layer by layer and for whole networks in ReferenceTests;
/// these tests check the generated orchestration itself: gradients against finite differences, the two
/// forward paths against each other, determinism, and that SGD on the gradients actually learns.
/// </summary>
public sealed class GeneratedNetworkTests
{
    private const int Batch = 4;

    private static (FashionNet net, float[] input, int[] labels) Create(ulong seed,
        global::AlexNetCompiler.Cpu.Conv2dAlgorithm convolutions = global::AlexNetCompiler.Cpu.Conv2dAlgorithm.Auto)
    {
        var net = new FashionNet(Batch, new global::AlexNetCompiler.Cpu.CpuContext(2) { Conv2dAlgorithm = convolutions });
        Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, seed);
        var rng = new SeededRandom(seed + 1);
        var input = new float[Batch * FashionNet.InputLength];
        for (int i = 0; i < input.Length; i++) input[i] = rng.NextSingle();
        var labels = new int[Batch];
        for (int i = 0; i < Batch; i++) labels[i] = i * 3 % FashionNet.ClassCount;
        return (net, input, labels);
    }

    [Fact]
    public void Inference_forward_matches_the_training_forward_without_dropout()
    {
        // im2col everywhere: at batch 4 an inference pass would otherwise run the 7x7 layers (16 tiles a group) by
        // Winograd on its cached filters, where a training step keeps im2col (the next test).
        var (net, input, labels) = Create(11, global::AlexNetCompiler.Cpu.Conv2dAlgorithm.Im2Col);
        var logits = new float[Batch * FashionNet.ClassCount];
        net.Forward(input, Batch, logits);
        net.ForwardBackward(input, labels, Batch, dropoutSeed: null);
        // Same kernels, same order: the two passes must agree to the bit.
        Assert.Equal(logits, net.Logits.ToArray());
    }

    [Fact]
    public void Inference_by_winograd_stays_within_its_error_of_the_training_forward()
    {
        // Auto: the inference pass runs FashionNet's three 7x7 layers by Winograd F(4x4, 3x3), the training pass by
        // im2col + GEMM. Each Winograd layer is held to a relative L2 of 1e-5 against the exact sum
        // (WinogradConvTests); three of them in a row, the logits here measured 7.1e-7. The bound leaves 14x.
        var (net, input, labels) = Create(11);
        var logits = new float[Batch * FashionNet.ClassCount];
        net.Forward(input, Batch, logits);
        net.ForwardBackward(input, labels, Batch, dropoutSeed: null);
        float[] training = net.Logits.ToArray();
        double diff = 0, norm = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            diff += (double)(logits[i] - training[i]) * (logits[i] - training[i]);
            norm += (double)training[i] * training[i];
        }
        double relativeL2 = Math.Sqrt(diff / norm);
        Assert.True(relativeL2 <= 1e-5, $"relative L2 {relativeL2:E2}");
        Assert.NotEqual(training, logits); // else the two passes ran the same algorithm and this test checks nothing
    }

    [Fact]
    public void Inference_sees_parameters_written_between_calls()
    {
        // Forward keeps each convolution's prepared weights between calls (at batch 16 the 7x7 layers' Winograd filters,
        // the first two layers' packed weights); parameters written in place in between must still take effect.
        const int batch = 16;
        var net = new FashionNet(batch, new global::AlexNetCompiler.Cpu.CpuContext(2));
        Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, 31);
        var rng = new SeededRandom(32);
        var input = new float[batch * FashionNet.InputLength];
        for (int i = 0; i < input.Length; i++) input[i] = rng.NextSingle();
        float[] Forward(FashionNet network)
        {
            var logits = new float[batch * FashionNet.ClassCount];
            network.Forward(input, batch, logits);
            return logits;
        }
        float[] first = Forward(net);
        Assert.Equal(first, Forward(net));

        Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, 33);
        float[] after = Forward(net);

        var fresh = new FashionNet(batch, new global::AlexNetCompiler.Cpu.CpuContext(2));
        net.Parameters.CopyTo(fresh.Parameters, 0);
        Assert.Equal(Forward(fresh), after);
        Assert.NotEqual(first, after);
        net.ForwardBackward(input, new int[batch], batch, dropoutSeed: null); // training's forward prepares on every call
        Assert.Equal(after, net.Logits.ToArray());
    }

    [Fact]
    public void Loss_is_the_mean_cross_entropy_of_the_logits()
    {
        var (net, input, labels) = Create(12);
        float loss = net.ForwardBackward(input, labels, Batch, dropoutSeed: null);
        double expected = 0;
        ReadOnlySpan<float> logits = net.Logits;
        for (int n = 0; n < Batch; n++)
        {
            ReadOnlySpan<float> row = logits.Slice(n * FashionNet.ClassCount, FashionNet.ClassCount);
            double max = double.NegativeInfinity;
            foreach (float v in row) max = Math.Max(max, v);
            double sum = 0;
            foreach (float v in row) sum += Math.Exp(v - max);
            expected += Math.Log(sum) + max - row[labels[n]];
        }
        expected /= Batch;
        // float32 log-sum-exp over 10 classes: rel 1e-5 covers rounding of exp/log.
        Assert.InRange(loss, expected - 1e-5 * Math.Abs(expected) - 1e-6, expected + 1e-5 * Math.Abs(expected) + 1e-6);
    }

    [Fact]
    public void Parameter_gradients_match_central_finite_differences()
    {
        var (net, input, labels) = Create(13);
        net.ForwardBackward(input, labels, Batch, dropoutSeed: null);
        float[] analytic = net.Gradients.ToArray();

        // Probe the largest-gradient entries of every tensor (small gradients drown in float32 rounding).
        var failures = new List<string>();
        foreach (ParameterDescriptor p in net.Descriptor.Parameters)
        {
            int best = p.Offset;
            for (int i = p.Offset; i < p.Offset + p.Length; i++)
                if (Math.Abs(analytic[i]) > Math.Abs(analytic[best])) best = i;
            if (Math.Abs(analytic[best]) < 1e-4f) continue;

            float saved = net.Parameters[best];
            const float h = 1e-2f;
            net.Parameters[best] = saved + h;
            float plus = net.ForwardBackward(input, labels, Batch, dropoutSeed: null);
            net.Parameters[best] = saved - h;
            float minus = net.ForwardBackward(input, labels, Batch, dropoutSeed: null);
            net.Parameters[best] = saved;
            double numeric = (plus - minus) / (2.0 * h);
            // Central differences in float32 with h = 1e-2: truncation O(h^2) plus rounding ~1e-7/h of a loss ~2.3;
            // max-pool switches can add kinks, so 5% relative + 2e-4 absolute.
            double tolerance = 2e-4 + 0.05 * Math.Abs(analytic[best]);
            if (Math.Abs(numeric - analytic[best]) > tolerance)
                failures.Add($"{p.Name}[{best - p.Offset}]: analytic {analytic[best]}, numeric {numeric}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Unusual_layer_orders_have_correct_gradients()
    {
        var net = new UnusualNet(3, new global::AlexNetCompiler.Cpu.CpuContext(2));
        Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, 21);
        var rng = new SeededRandom(22);
        var input = new float[3 * UnusualNet.InputLength];
        for (int i = 0; i < input.Length; i++) input[i] = 2 * rng.NextSingle() - 1;
        int[] labels = { 4, 0, 2 };
        net.ForwardBackward(input, labels, 3, dropoutSeed: null);
        float[] analytic = net.Gradients.ToArray();
        var failures = new List<string>();
        // Every entry of this small net, not just the largest. This net is strongly non-linear (LRN with alpha 0.05,
        // several ReLU and max-pool kinks), so h = 1e-2 steps across kinks; h = 3e-3 does not, and its float32
        // rounding error is about 2 ulp(loss ~ 3.6) / 6e-3 ~ 1.5e-4: tolerance 3e-4 + 3% relative.
        for (int i = 0; i < analytic.Length; i++)
        {
            float saved = net.Parameters[i];
            const float h = 3e-3f;
            net.Parameters[i] = saved + h;
            float plus = net.ForwardBackward(input, labels, 3, dropoutSeed: null);
            net.Parameters[i] = saved - h;
            float minus = net.ForwardBackward(input, labels, 3, dropoutSeed: null);
            net.Parameters[i] = saved;
            double numeric = (plus - minus) / (2.0 * h);
            if (Math.Abs(numeric - analytic[i]) > 3e-4 + 0.03 * Math.Abs(analytic[i]))
                failures.Add($"parameter {i}: analytic {analytic[i]}, numeric {numeric}");
        }
        // A nudge can still flip a kink for an entry sitting next to one; allow 1 in 100.
        Assert.True(failures.Count <= analytic.Length / 100, $"{failures.Count} of {analytic.Length} entries differ:\n" + string.Join("\n", failures.Take(20)));
        Assert.Equal(5, UnusualNet.ClassCount);
    }

    [Fact]
    public void Dropout_is_deterministic_under_a_seed_and_differs_across_seeds()
    {
        var (net, input, labels) = Create(14);
        float a = net.ForwardBackward(input, labels, Batch, dropoutSeed: 99);
        float[] gradientsA = net.Gradients.ToArray();
        float b = net.ForwardBackward(input, labels, Batch, dropoutSeed: 99);
        Assert.Equal(a, b);
        Assert.Equal(gradientsA, net.Gradients);
        float c = net.ForwardBackward(input, labels, Batch, dropoutSeed: 100);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Sgd_steps_overfit_a_fixed_batch()
    {
        var (net, input, labels) = Create(15);
        var sgd = new Sgd(net.Parameters.Length, new SgdOptions(LearningRate: 0.02f, Momentum: 0.9f, WeightDecay: 5e-4f));
        float first = net.TrainStep(input, labels, Batch, sgd, dropoutSeed: null);
        float last = first;
        for (int step = 0; step < 30; step++) last = net.TrainStep(input, labels, Batch, sgd, dropoutSeed: null);
        // Four samples, 30 steps: a working backward drives the loss far below its start (about ln 10).
        Assert.True(last < 0.25f * first, $"loss went from {first} to {last}");
    }

    [Theory]
    [InlineData(Batch)]
    [InlineData(30)] // past the fused dense kernels' batch limit: the weight update follows each dense layer's backward
    public void TrainStep_gives_the_bits_of_ForwardBackward_then_the_whole_step(int batch)
    {
        var (reference, _, _) = Create(40);
        var rng = new SeededRandom(41);
        var input = new float[batch * FashionNet.InputLength];
        for (int i = 0; i < input.Length; i++) input[i] = rng.NextSingle();
        int[] labels = Enumerable.Range(0, batch).Select(i => i * 7 % FashionNet.ClassCount).ToArray();
        var cpu = new global::AlexNetCompiler.Cpu.CpuContext(2);
        var separate = new FashionNet(batch, cpu);
        var fused = new FashionNet(batch, cpu);
        reference.Parameters.CopyTo(separate.Parameters, 0);
        reference.Parameters.CopyTo(fused.Parameters, 0);
        var options = new SgdOptions(LearningRate: 0.02f, Momentum: 0.9f, WeightDecay: 5e-4f);
        var separateSgd = new Sgd(separate.Parameters.Length, options, cpu);
        var fusedSgd = new Sgd(fused.Parameters.Length, options, cpu);
        for (int step = 0; step < 3; step++)
        {
            float expected = separate.ForwardBackward(input, labels, batch, dropoutSeed: (ulong)step);
            separateSgd.Step(separate.Parameters, separate.Gradients);
            float loss = fused.TrainStep(input, labels, batch, fusedSgd, dropoutSeed: (ulong)step);
            Assert.Equal(expected, loss);
            Assert.True(separate.Parameters.AsSpan().SequenceEqual(fused.Parameters), $"parameters after step {step}");
            Assert.True(separateSgd.Velocity.AsSpan().SequenceEqual(fusedSgd.Velocity), $"velocity after step {step}");
        }
        Assert.Equal(3, fusedSgd.StepCount);
    }

    [Fact]
    public void TrainStep_with_a_loss_that_is_not_finite_changes_nothing()
    {
        var (net, input, labels) = Create(42);
        var sgd = new Sgd(net.Parameters.Length, new SgdOptions(LearningRate: 0.02f));
        net.TrainStep(input, labels, Batch, sgd, dropoutSeed: 1);
        net.Parameters[^1] = float.NaN; // the last layer's bias: every logit of that class, and so the loss
        float[] parameters = net.Parameters.ToArray(), velocity = sgd.Velocity.ToArray();
        float loss = net.TrainStep(input, labels, Batch, sgd, dropoutSeed: 2);
        Assert.True(float.IsNaN(loss));
        Assert.Equal(parameters, net.Parameters);
        Assert.Equal(velocity, sgd.Velocity);
        Assert.Equal(1, sgd.StepCount);
    }

    [Fact]
    public void Networks_sharing_one_context_on_several_threads_match_sequential_runs()
    {
        var shared = new global::AlexNetCompiler.Cpu.CpuContext(2);
        float[] Train(int which)
        {
            var (net, input, labels) = Create(30 + (ulong)which);
            var own = new FashionNet(Batch, shared);
            net.Parameters.CopyTo(own.Parameters, 0);
            var sgd = new Sgd(own.Parameters.Length, new SgdOptions(LearningRate: 0.01f), shared);
            for (int step = 0; step < 3; step++) own.TrainStep(input, labels, Batch, sgd, dropoutSeed: (ulong)step);
            return own.Parameters;
        }
        float[][] sequential = Enumerable.Range(0, 4).Select(Train).ToArray();
        var concurrent = new float[4][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => concurrent[i] = Train(i));
        // Same kernels, same thread count, same order within each pass: bit-identical.
        for (int i = 0; i < 4; i++) Assert.Equal(sequential[i], concurrent[i]);
    }

    [Fact]
    public void Bad_arguments_name_what_is_wrong()
    {
        var (net, input, labels) = Create(16);
        var logits = new float[Batch * FashionNet.ClassCount];
        var tooBig = Assert.Throws<ArgumentOutOfRangeException>(() => net.Forward(input, Batch + 1, new float[(Batch + 1) * 10]));
        Assert.Contains("MaxBatch", tooBig.Message);
        var shortInput = Assert.Throws<ArgumentException>(() => net.Forward(input.AsSpan(0, 10), 1, logits));
        Assert.Contains("[1, 28, 28]", shortInput.Message);
        labels[2] = 10;
        var badLabel = Assert.Throws<ArgumentException>(() => net.ForwardBackward(input, labels, Batch, null));
        Assert.Contains("labels[2] is 10", badLabel.Message);
    }

    [Fact]
    public void A_max_batch_whose_buffers_overflow_an_array_is_refused_before_allocating()
    {
        // FashionNet's largest buffers hold 25,088 floats per sample (conv1's output): at a million samples that is
        // 25 billion, beyond any array; computed in int it overflowed (OverflowException, or a negative size).
        Assert.Equal(Array.MaxLength / FashionNet.Conv1OutputLength, FashionNet.MaxBatchLimit);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new FashionNet(1_000_000));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "buffers were allocated before the check");
        Assert.Equal("maxBatch", e.ParamName);
        Assert.Contains("FashionNet", e.Message);
        Assert.Contains("gradient buffers", e.Message);
        Assert.Contains("Conv1's output", e.Message);
        Assert.Contains("25088000000", e.Message);
        Assert.Contains($"the largest maxBatch that fits is {FashionNet.MaxBatchLimit}", e.Message);

        // Every network checks its own largest buffer; at the limit itself the buffers are allocated.
        var unusual = Assert.Throws<ArgumentOutOfRangeException>(() => new UnusualNet(int.MaxValue));
        Assert.Contains("UnusualNet", unusual.Message);
        Assert.Contains($"the largest maxBatch that fits is {UnusualNet.MaxBatchLimit}", unusual.Message);
        Assert.Equal(Array.MaxLength / UnusualNet.Conv1OutputLength, UnusualNet.MaxBatchLimit);
        Assert.Throws<ArgumentOutOfRangeException>(() => new UnusualNet(UnusualNet.MaxBatchLimit + 1));
    }
}
