using AlexNetCompiler.Cpu;
using AlexNetCompiler.Data;
using AlexNetCompiler.Training;
using FashionMnist;
using FashionMnist.App;

namespace AlexNetCompiler.Tests.App;

public sealed class TestViewsTests
{
    [Fact]
    public void TenViews_AreTheFiveCropsAndTheirReflections()
    {
        // One 5x5 image with a single lit pixel at the centre (2, 2), crop padding 1. A crop whose top-left corner
        // is (oy, ox) in padded coordinates moves the pixel to (2 + 1 - oy, 2 + 1 - ox): the four corner crops put it
        // at (3, 3), (3, 1), (1, 3), (1, 1); the centre crop leaves it; a reflection maps column x to 4 - x.
        var image = new float[25];
        image[2 * 5 + 2] = 1f;
        var data = new Dataset("one", image, [0], 1, 5, 5, ["a", "b"]);
        var seen = new List<(int Y, int X)>();
        ForwardPass forward = (images, count, logits) =>
        {
            for (int n = 0; n < count; n++)
            {
                ReadOnlySpan<float> sample = images.Slice(n * 25, 25);
                int lit = sample.IndexOf(1f);
                Assert.Equal(1, sample.ToArray().Count(v => v != 0f)); // nothing else lit, padding is zero
                seen.Add((lit / 5, lit % 5));
                logits[n * 2] = 0f;
                logits[n * 2 + 1] = 0f;
            }
        };

        Evaluator.Evaluate(forward, 2, 4, data, Normalization.Identity(1), views: 10, cropPadding: 1);

        var expected = new[] { (2, 2), (2, 2), (3, 3), (3, 3), (3, 1), (3, 1), (1, 3), (1, 3), (1, 1), (1, 1) };
        Assert.Equal(expected.OrderBy(p => p), seen.OrderBy(p => p));
    }

    [Fact]
    public void TwoViews_AverageTheSoftmaxOfTheImageAndItsReflection()
    {
        // Right half lit; the network's logit k is the sum over half k of the image. The image gives logits (0, 8),
        // its reflection (8, 0): the averaged probabilities are (0.5, 0.5) and the loss is ln 2 for either label.
        var image = new float[16];
        for (int y = 0; y < 4; y++) { image[y * 4 + 2] = 1f; image[y * 4 + 3] = 1f; }
        var data = new Dataset("half", image, [1], 1, 4, 4, ["left", "right"]);
        ForwardPass forward = (images, count, logits) =>
        {
            for (int n = 0; n < count; n++)
            {
                float left = 0, right = 0;
                for (int y = 0; y < 4; y++)
                    for (int x = 0; x < 4; x++)
                        if (x < 2) left += images[n * 16 + y * 4 + x]; else right += images[n * 16 + y * 4 + x];
                logits[n * 2] = left;
                logits[n * 2 + 1] = right;
            }
        };

        EvaluationResult single = Evaluator.Evaluate(forward, 2, 1, data, Normalization.Identity(1), views: 1, cropPadding: 1);
        Assert.Equal(1.0, single.Accuracy);
        Assert.Equal(Math.Log(1 + Math.Exp(-8)), single.Loss, 1e-9);

        EvaluationResult both = Evaluator.Evaluate(forward, 2, 1, data, Normalization.Identity(1), views: 2, cropPadding: 1);
        Assert.Equal(Math.Log(2), both.Loss, 1e-9);
    }

    [Fact]
    public void OneView_IsPlainInference_OnTheGeneratedNetwork()
    {
        // Evaluate with one view against inference written out here: normalise each test image, run the network,
        // take the first maximum and the cross-entropy of the logits.
        LoadedData data = TinyData.Slice(1, 6);
        using var cpu = new CpuContext(2);
        var network = new FashionNet(16, cpu);
        Initializer.Initialize(FashionNet.Model, network.Parameters, InitScheme.He, seed: 4);
        Normalization normalization = data.Train.ComputeNormalization();

        EvaluationResult result = Evaluator.Evaluate(network.Forward, 10, 16, data.Test, normalization);

        var expected = new int[10, 10];
        double lossSum = 0;
        var logits = new float[10];
        for (int i = 0; i < data.Test.Count; i++)
        {
            float[] image = data.Test.Image(i).ToArray();
            normalization.Apply(image, 28, 28);
            network.Forward(image, 1, logits);
            int predicted = Array.IndexOf(logits, logits.Max());
            double max = logits.Max(), sum = logits.Sum(z => Math.Exp(z - max));
            lossSum += Math.Log(sum) - (logits[data.Test.Labels[i]] - max);
            expected[data.Test.Labels[i], predicted]++;
        }
        Assert.Equal(expected, result.Confusion);
        // The network computes batches of 16 here and single images above, so logits differ in the last bits of
        // float32; the evaluator also subtracts the maximum logit in float32 (one ulp of a logit, ~2e-6 near 30).
        // Relative 1e-5 on the mean loss covers both.
        Assert.Equal(lossSum / data.Test.Count, result.Loss, lossSum / data.Test.Count * 1e-5);
    }

    [Theory]
    [InlineData(3, 2, "--views 3")]
    [InlineData(10, 0, "--crop-padding 0")]
    public void BadViewSettings_AreRejected(int views, int padding, string named)
    {
        var data = new Dataset("one", new float[25], [0], 1, 5, 5, ["a", "b"]);
        var e = Assert.Throws<ArgumentException>(() =>
            Evaluator.Evaluate((_, _, _) => { }, 2, 1, data, Normalization.Identity(1), views, padding));
        Assert.Contains(named, e.Message);
    }
}
