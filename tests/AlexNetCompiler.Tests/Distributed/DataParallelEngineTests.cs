using AlexNetCompiler.Cpu;
using AlexNetCompiler.Distributed;
using AlexNetCompiler.Training;
using FashionMnist;

namespace AlexNetCompiler.Tests.Distributed;

public sealed class DataParallelEngineTests
{
    private const int SampleLength = FashionNet.InputChannels * FashionNet.InputHeight * FashionNet.InputWidth;
    private static readonly TimeSpan Patient = TimeSpan.FromMinutes(2);

    private static (float[] Images, int[] Labels) RandomBatches(int steps, int batch, int seed)
    {
        var random = new Random(seed);
        float[] images = new float[steps * batch * SampleLength];
        for (int i = 0; i < images.Length; i++) images[i] = (float)(random.NextDouble() * 2 - 1);
        int[] labels = new int[steps * batch];
        for (int i = 0; i < labels.Length; i++) labels[i] = random.Next(FashionNet.ClassCount);
        return (images, labels);
    }

    private static ulong DropoutSeed(int step) => 1000UL + (ulong)step;

    private static SgdOptions Options => new(LearningRate: 0.02f, Momentum: 0.9f, WeightDecay: 5e-4f);

    /// <summary>
    /// One process taking step <paramref name="step"/> over the whole batch from the given parameters and momentum:
    /// the reference each step of the ranks must reproduce.
    /// </summary>
    private static (float[] Parameters, float Loss) OneProcessStep(int step, int batch, float[] images, int[] labels, float[] parameters, float[] velocity)
    {
        using var cpu = new CpuContext(1);
        var net = new FashionNet(batch, cpu);
        parameters.CopyTo(net.Parameters, 0);
        var sgd = new Sgd(net.Parameters.Length, Options, cpu) { StepCount = step };
        velocity.CopyTo(sgd.Velocity, 0);
        float loss = net.ForwardBackward(images.AsSpan(step * batch * SampleLength, batch * SampleLength), labels.AsSpan(step * batch, batch), batch, DropoutSeed(step));
        sgd.Step(net.Parameters, net.Gradients);
        return (net.Parameters, loss);
    }

    /// <summary>
    /// Every rank's final parameters, and rank 0's parameters and momentum before each step (and its parameters
    /// after the last), its losses and correct counts.
    /// </summary>
    private sealed record RankRun(float[][] Parameters, float[][] ParametersBefore, float[][] VelocityBefore, float[] Losses, long[] Correct);

    private static RankRun Ranks(int size, int steps, int batch, float[] images, int[] labels)
    {
        InProcessCommunicator[] ranks = InProcessCommunicator.CreateGroup(size, Patient);
        var parameters = new float[size][];
        var parametersBefore = new float[steps + 1][];
        var velocityBefore = new float[steps][];
        var losses = new float[steps];
        var correct = new long[steps];
        InProcessCommunicatorTests.OnEveryRank(ranks, c =>
        {
            using var cpu = new CpuContext(1);
            var net = new FashionNet(batch, cpu);
            // Rank 1 starts from other parameters: the engine's first broadcast must replace them with rank 0's.
            Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, seed: c.Rank == 1 ? 99UL : 7UL);
            var sgd = new Sgd(net.Parameters.Length, Options, cpu);
            using var engine = new DataParallelEngine(net, sgd, c, bucketFloats: 100_000); // several buckets
            engine.CopyStateFromHost();
            for (int s = 0; s < steps; s++)
            {
                if (c.Rank == 0) (parametersBefore[s], velocityBefore[s]) = (net.Parameters.ToArray(), sgd.Velocity.ToArray());
                (int first, int count) = DataParallelEngine.Shard(batch, c.Rank, c.Size);
                int start = s * batch + first;
                DataParallelStep step = engine.TrainShard(images.AsSpan(start * SampleLength, count * SampleLength), labels.AsSpan(start, count),
                    count, first, batch, DropoutSeed(s));
                if (c.Rank == 0) (losses[s], correct[s]) = (step.MeanLoss, step.Correct);
            }
            parameters[c.Rank] = net.Parameters;
            if (c.Rank == 0) parametersBefore[steps] = net.Parameters.ToArray();
        });
        return new RankRun(parameters, parametersBefore, velocityBefore, losses, correct);
    }

    [Theory]
    [InlineData(2, 8)] // shards of 4 and 4
    [InlineData(3, 7)] // shards of 2, 2 and 3: the gradients are scaled by 2/7, 2/7 and 3/7
    public void Ranks_TakeTheStepsOfOneProcessOverTheWholeBatch(int size, int batch)
    {
        const int steps = 4;
        (float[] images, int[] labels) = RandomBatches(steps, batch, seed: 5);
        RankRun run = Ranks(size, steps, batch, images, labels);

        // Every rank applies the same update to the same sum: the ranks agree exactly.
        for (int r = 1; r < size; r++) Assert.Equal(run.Parameters[0], run.Parameters[r]);
        // Each step against one process taking the same step from the same parameters and momentum. (Whole runs are
        // not compared: a max pool's choice between two inputs within rounding of each other can flip in a later
        // step, which then moves parameters by lr * gradient.) Within a step only the order of the batch's
        // per-sample additions differs (a shard's partial sum, then the sum over ranks), and with uneven shards the
        // rounding of the count/batch scaling: each float32 sum of n terms is within about n * 2^-24 of its value
        // relative to the sum of magnitudes, so 1e-5 of the largest parameter leaves a wide margin, while one wrong
        // dropout mask, a missing shard or a wrong scale moves parameters by about lr * gradient, 1e-3 or more.
        for (int s = 0; s < steps; s++)
        {
            (float[] expected, float expectedLoss) = OneProcessStep(s, batch, images, labels, run.ParametersBefore[s], run.VelocityBefore[s]);
            float[] actual = run.ParametersBefore[s + 1];
            float scale = expected.Max(MathF.Abs);
            float worst = 0;
            for (int i = 0; i < expected.Length; i++) worst = MathF.Max(worst, MathF.Abs(actual[i] - expected[i]));
            Assert.True(worst <= 1e-5f * scale, $"step {s}: largest parameter difference {worst:G3}, parameters up to {scale:G3}");
            Assert.Equal(expectedLoss, run.Losses[s], 1e-5f * expectedLoss);
        }
        // The momentum carried between steps was used: the last step from the ranks' state is not a plain first step.
        Assert.NotEqual(run.VelocityBefore[steps - 1], new float[run.VelocityBefore[steps - 1].Length]);
    }

    [Fact]
    public void AShardWithAnOffset_DrawsTheWholeBatchesDropoutMasks()
    {
        // The logits of samples 3..5 of a batch of 6 computed alone, with dropoutFirstSample 3, must be the whole
        // batch's rows 3..5. Rows of a GEMM do not mix samples, so only rounding of a different blocking can differ
        // (far below 1e-5 relative); a different mask changes a logit by O(1).
        using var cpu = new CpuContext(1);
        (float[] images, int[] labels) = RandomBatches(1, 6, seed: 9);
        var whole = new FashionNet(6, cpu);
        Initializer.Initialize(whole.Descriptor, whole.Parameters, InitScheme.He, seed: 3);
        var shard = new FashionNet(3, cpu);
        whole.Parameters.CopyTo(shard.Parameters, 0);
        whole.ForwardBackward(images, labels, 6, dropoutSeed: 77);
        float[] expected = whole.Logits.Slice(3 * FashionNet.ClassCount, 3 * FashionNet.ClassCount).ToArray();
        shard.ForwardBackward(images.AsSpan(3 * SampleLength), labels.AsSpan(3), 3, dropoutSeed: 77, dropoutFirstSample: 3);
        float[] fromOffset = shard.Logits.ToArray();
        shard.ForwardBackward(images.AsSpan(3 * SampleLength), labels.AsSpan(3), 3, dropoutSeed: 77);
        float[] fromZero = shard.Logits.ToArray();
        float scale = expected.Max(MathF.Abs);
        for (int i = 0; i < expected.Length; i++) Assert.True(MathF.Abs(expected[i] - fromOffset[i]) <= 1e-5f * scale, $"logit {i}: {fromOffset[i]} vs {expected[i]}");
        Assert.Contains(Enumerable.Range(0, expected.Length), i => MathF.Abs(expected[i] - fromZero[i]) > 1e-3f * scale);
    }

    [Theory]
    [InlineData(10, 3)]
    [InlineData(64, 2)]
    [InlineData(2, 4)] // fewer samples than ranks: some shards are empty
    public void Shards_CoverTheBatchOnceInOrder_WithSizesWithinOne(int batch, int size)
    {
        int next = 0;
        var counts = new List<int>();
        for (int r = 0; r < size; r++)
        {
            (int first, int count) = DataParallelEngine.Shard(batch, r, size);
            Assert.Equal(next, first);
            next += count;
            counts.Add(count);
        }
        Assert.Equal(batch, next);
        Assert.True(counts.Max() - counts.Min() <= 1);
    }

    [Fact]
    public void CorrectPredictions_OfFewerClassesThanOutputs_AreTheArgmaxOfTheFirstOnes()
    {
        // Two samples of labels 1 and 0 on four outputs; output 3 (no class of the data) has the largest logit in both.
        float[] logits = [0, 5, 1, 9, /**/ 4, 2, 0, 8];
        int[] labels = [1, 0];
        Assert.Equal(0, DataParallelEngine.CountCorrect(logits, labels, classes: 4));
        Assert.Equal(2, DataParallelEngine.CountCorrect(logits, labels, classes: 4, scoredClasses: 2));
    }

    [Fact]
    public void Buckets_CoverTheGradients_LastParametersFirst()
    {
        Assert.Equal([(6, 4), (2, 4), (0, 2)], DataParallelEngine.Buckets(10, 4));
        Assert.Equal([(0, 3)], DataParallelEngine.Buckets(3, 4));
    }

    [Fact]
    public void GeneratedBackward_ReportsEachLayersGradients_LastToFirst_WhenFinal()
    {
        (float[] images, int[] labels) = RandomBatches(1, 3, seed: 4);
        using var cpu = new CpuContext(1);
        var net = new FashionNet(3, cpu);
        Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, seed: 7);
        net.ForwardBackward(images, labels, 3, DropoutSeed(0));
        float[] plain = (float[])net.Gradients.Clone();

        Array.Fill(net.Gradients, float.NaN);
        var reports = new List<(int Offset, float[] Values)>();
        net.ForwardBackward(images, labels, 3, DropoutSeed(0), dropoutFirstSample: 0,
            (offset, length) => reports.Add((offset, net.Gradients.AsSpan(offset, length).ToArray())));

        // One report per layer with parameters (five convolutions, three dense layers), last first, together covering the
        // buffer once; each holds, when reported, the values the pass ends with, and those are the plain pass's.
        Assert.Equal(8, reports.Count);
        int end = net.Gradients.Length;
        foreach ((int offset, float[] values) in reports)
        {
            Assert.Equal(end, offset + values.Length);
            Assert.Equal(net.Gradients.AsSpan(offset, values.Length).ToArray(), values);
            end = offset;
        }
        Assert.Equal(0, end);
        Assert.Equal(plain, net.Gradients);
    }

    [Fact]
    public void Engine_StartsSummingTheLastLayers_BeforeBackwardReachesTheFirst()
    {
        (float[] images, int[] labels) = RandomBatches(1, 4, seed: 5);
        using var cpu = new CpuContext(1);
        var net = new FashionNet(4, cpu);
        Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, seed: 7);
        var recorder = new StartRecorder(InProcessCommunicator.Single(), net);
        using var engine = new DataParallelEngine(net, new Sgd(net.Parameters.Length, Options, cpu), recorder, bucketFloats: 100_000);

        Array.Fill(net.Gradients, float.NaN); // conv1's weight gradient is NaN until its backward has run
        engine.TrainShard(images, labels, 4, 0, 4, DropoutSeed(0));

        // Seven gradient buckets (632,778 floats in 100,000s) and the loss statistics. The first bucket (the classifier's
        // last floats) starts while conv1's gradient is still unwritten; the last gradient bucket only once it is written.
        Assert.Equal(8, recorder.Conv1WrittenAtStart.Count);
        Assert.False(recorder.Conv1WrittenAtStart[0]);
        Assert.True(recorder.Conv1WrittenAtStart[6]);
    }

    /// <summary>A communicator that notes, at each started sum, whether the first parameter's gradient has been written.</summary>
    private sealed class StartRecorder(InProcessCommunicator inner, FashionNet net) : ICommunicator
    {
        public List<bool> Conv1WrittenAtStart { get; } = [];
        public int Rank => inner.Rank;
        public int Size => inner.Size;
        public string Description => inner.Description;
        public TimeSpan Timeout => inner.Timeout;

        public PendingSum StartAllReduceSum(Memory<float> buffer)
        {
            Conv1WrittenAtStart.Add(!float.IsNaN(net.Gradients[0]));
            return inner.StartAllReduceSum(buffer);
        }

        public void Broadcast(Memory<float> buffer, int root) => inner.Broadcast(buffer, root);
        public void Dispose() => inner.Dispose();
    }
}
