using AlexNetCompiler.Cpu;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Tests.Training;

public sealed class SgdTests
{
    private static float[] Random(int length, ulong seed)
    {
        var random = new SeededRandom(seed);
        return Enumerable.Range(0, length).Select(_ => random.NextGaussian(0f, 1f)).ToArray();
    }

    /// <summary>The PyTorch rule evaluated in double, element by element: the specification of the vectorised step.</summary>
    private static void PyTorchRuleInDouble(double[] p, double[] v, float[] grad, double lr, double mu, double wd, bool first)
    {
        for (int i = 0; i < p.Length; i++)
        {
            double g = grad[i] + wd * p[i];
            v[i] = first ? g : mu * v[i] + g;
            p[i] -= lr * v[i];
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]          // shorter than a vector, then vector + tail
    [InlineData(1_000_003)]   // large enough to be split over threads, odd length
    public void PyTorchRuleMatchesTheFormula(int length)
    {
        // Three float32 operations per step on O(1) values against the same formula in double:
        // |d| <= 1e-5 + 1e-5*|ref| after 3 steps.
        float[] parameters = Random(length, 1);
        double[] p = parameters.Select(x => (double)x).ToArray();
        double[] v = new double[length];
        var sgd = new Sgd(length, new SgdOptions(0.1f, 0.9f, 0.01f));
        for (int step = 0; step < 3; step++)
        {
            float[] grad = Random(length, 10 + (ulong)step);
            sgd.Step(parameters, grad);
            PyTorchRuleInDouble(p, v, grad, 0.1f, 0.9f, 0.01f, step == 0);
        }
        for (int i = 0; i < length; i++)
            Assert.True(Math.Abs(parameters[i] - p[i]) <= 1e-5 + 1e-5 * Math.Abs(p[i]), $"element {i}: {parameters[i]} vs {p[i]}");
    }

    [Fact]
    public void ResultDoesNotDependOnThreadCount()
    {
        const int length = 1 << 20;
        float[] a = Random(length, 3), b = (float[])a.Clone(), grad = Random(length, 4);
        using var single = new CpuContext(1);
        using var four = new CpuContext(4);
        var one = new Sgd(length, new SgdOptions(), single);
        var many = new Sgd(length, new SgdOptions(), four);
        for (int step = 0; step < 2; step++)
        {
            one.Step(a, grad);
            many.Step(b, grad);
        }
        Assert.True(a.AsSpan().SequenceEqual(b));
        Assert.True(one.Velocity.AsSpan().SequenceEqual(many.Velocity));
    }

    [Fact]
    public void StepLeavesTheSlicesUpdatedInBackwardAlone()
    {
        const int length = 1000;
        float[] start = Random(length, 20), grad = Random(length, 21);
        var whole = new Sgd(length, new SgdOptions(0.1f, 0.9f, 0.01f));
        var skipping = new Sgd(length, new SgdOptions(0.1f, 0.9f, 0.01f));
        float[] a = start.ToArray(), b = start.ToArray();
        whole.Step(a, grad);
        skipping.Step(b, grad, [new Range(0, 10), new Range(100, 300), new Range(990, 1000)]);
        for (int i = 0; i < length; i++)
        {
            bool skipped = i < 10 || (i >= 100 && i < 300) || i >= 990;
            Assert.Equal(skipped ? start[i] : a[i], b[i]);
            Assert.Equal(skipped ? 0f : whole.Velocity[i], skipping.Velocity[i]);
        }
        Assert.Equal(1, skipping.StepCount);
    }

    [Fact]
    public void SlicesUpdatedInBackwardOutOfOrderAreRefused()
    {
        var sgd = new Sgd(100, new SgdOptions(0.1f));
        float[] parameters = Random(100, 22), grad = Random(100, 23), before = parameters.ToArray();
        var e = Assert.Throws<ArgumentException>(() => sgd.Step(parameters, grad, [new Range(50, 60), new Range(10, 20)]));
        Assert.Equal("updatedInBackward", e.ParamName);
        e = Assert.Throws<ArgumentException>(() => sgd.Step(parameters, grad, [new Range(50, 60), new Range(90, 101)]));
        Assert.Equal("updatedInBackward", e.ParamName);
        // Refused before anything moved.
        Assert.Equal(before, parameters);
        Assert.All(sgd.Velocity, v => Assert.Equal(0f, v));
        Assert.Equal(0, sgd.StepCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => sgd.UpdateOf(new float[100], 90, 11));
    }

    [Fact]
    public void StepAllocatesNothing()
    {
        const int length = 1 << 20; // split over the context's threads
        using var cpu = new CpuContext(2);
        var sgd = new Sgd(length, new SgdOptions(), cpu);
        float[] parameters = new float[length], grad = Random(length, 8);
        sgd.Step(parameters, grad); // first use starts the workers
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) sgd.Step(parameters, grad);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void PaperRuleMatchesItsFormulaAndEqualsTorchAtConstantRate()
    {
        // Paper (Krizhevsky et al. 2012, section 5): v = 0.9 v - 0.0005 lr w - lr g; w = w + v.
        const int length = 100;
        const float lr = 0.05f, mu = 0.9f, wd = 0.01f;
        float[] paper = Random(length, 5), torchStyle = (float[])paper.Clone();
        double[] w = paper.Select(x => (double)x).ToArray(), v = new double[length];
        var paperSgd = new Sgd(length, new SgdOptions(lr, mu, wd, SgdVariant.Paper));
        var torchSgd = new Sgd(length, new SgdOptions(lr, mu, wd, SgdVariant.PyTorch));
        for (int step = 0; step < 4; step++)
        {
            float[] grad = Random(length, 20 + (ulong)step);
            paperSgd.Step(paper, grad);
            torchSgd.Step(torchStyle, grad);
            for (int i = 0; i < length; i++)
            {
                v[i] = mu * v[i] - wd * lr * w[i] - lr * grad[i];
                w[i] += v[i];
            }
            // float32 vs double over a few steps of O(1) values: 1e-5 absolute + relative.
            for (int i = 0; i < length; i++)
            {
                Assert.True(Math.Abs(paper[i] - w[i]) <= 1e-5 + 1e-5 * Math.Abs(w[i]), $"step {step} element {i}: paper rule {paper[i]} vs formula {w[i]}");
                Assert.True(Math.Abs(paper[i] - torchStyle[i]) <= 1e-5 + 1e-5 * Math.Abs(w[i]), $"step {step} element {i}: paper {paper[i]} vs torch rule {torchStyle[i]}");
            }
        }
        // The paper's velocity is -lr times torch's.
        for (int i = 0; i < length; i++)
            Assert.True(Math.Abs(paperSgd.Velocity[i] + lr * torchSgd.Velocity[i]) <= 1e-6 + 1e-5 * Math.Abs(paperSgd.Velocity[i]));
    }

    [Fact]
    public void RulesDifferAfterTheRateChanges()
    {
        const int length = 50;
        float[] paper = Random(length, 6), torchStyle = (float[])paper.Clone();
        var paperSgd = new Sgd(length, new SgdOptions(0.1f, 0.9f, 0f, SgdVariant.Paper));
        var torchSgd = new Sgd(length, new SgdOptions(0.1f, 0.9f, 0f, SgdVariant.PyTorch));
        float[] grad = Random(length, 7);
        paperSgd.Step(paper, grad);
        torchSgd.Step(torchStyle, grad);
        paperSgd.LearningRate = torchSgd.LearningRate = 0.01f;
        paperSgd.Step(paper, grad);
        torchSgd.Step(torchStyle, grad);
        // Second step: torch moves lr2*(mu*g + g) = 0.019 g, the paper mu*lr1*g + lr2*g = 0.1 g.
        for (int i = 0; i < length; i++)
            Assert.True(Math.Abs(paper[i] - torchStyle[i]) > 0.05 * Math.Abs(grad[i]) - 1e-5);
    }

    [Fact]
    public void LengthMismatchIsRejected()
    {
        var sgd = new Sgd(10, new SgdOptions());
        Assert.Throws<ArgumentException>(() => sgd.Step(new float[10], new float[9]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(10, new SgdOptions(LearningRate: -1f)));
    }
}
