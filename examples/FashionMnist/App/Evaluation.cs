using System.Numerics;
using AlexNetCompiler.Data;

namespace FashionMnist.App;

/// <summary>Loss, accuracy, per-class accuracy and confusion matrix (rows: true class, columns: predicted).</summary>
public sealed record EvaluationResult(double Loss, double Accuracy, int[,] Confusion, IReadOnlyList<string> ClassNames)
{
    public int Count
    {
        get
        {
            int total = 0;
            foreach (int v in Confusion) total += v;
            return total;
        }
    }

    /// <summary>Samples on the diagonal of the confusion matrix.</summary>
    public int Correct
    {
        get
        {
            int correct = 0;
            for (int c = 0; c < ClassNames.Count; c++) correct += Confusion[c, c];
            return correct;
        }
    }

    /// <summary>Fraction of each true class predicted correctly (NaN for a class with no samples).</summary>
    public double[] PerClassAccuracy()
    {
        int k = ClassNames.Count;
        var result = new double[k];
        for (int t = 0; t < k; t++)
        {
            int row = 0;
            for (int p = 0; p < k; p++) row += Confusion[t, p];
            result[t] = row == 0 ? double.NaN : (double)Confusion[t, t] / row;
        }
        return result;
    }
}

/// <summary>Inference: images [count, C, H, W] to logits [count, classes].</summary>
public delegate void ForwardPass(ReadOnlySpan<float> images, int count, Span<float> logits);

public static class Evaluator
{
    /// <summary>Numbers of test views <see cref="Evaluate"/> accepts.</summary>
    public static readonly IReadOnlyList<int> ViewCounts = [1, 2, 10];

    /// <summary>
    /// Inference over every test image through any forward pass (the CPU network or a GPU engine) taking up to
    /// <paramref name="maxBatch"/> images, with test-time averaging as in Krizhevsky et al. 2012, section 4.1: the
    /// prediction is the mean of the softmax outputs over several views of each image, and the class is its argmax. With 10 views these are the
    /// paper's five patches (four corners and the centre) and their horizontal reflections; here a patch is an H x W
    /// crop of the image zero-padded by <paramref name="cropPadding"/> (the training crop's extremes: corners
    /// shifted by cropPadding pixels, the centre being the image itself). 2 views: the image and its reflection;
    /// 1 view (the default, and what training evaluates every epoch): the image.
    /// The loss is the cross-entropy of the averaged probabilities. Views are built from the raw [0, 1] images,
    /// then normalised, exactly like training crops.
    /// </summary>
    public static EvaluationResult Evaluate(ForwardPass forward, int classes, int maxBatch, Dataset data, Normalization normalization,
        int views = 1, int cropPadding = 2, CancellationToken cancel = default)
    {
        if (!ViewCounts.Contains(views)) throw new ArgumentException($"--views {views}: use 1 (the image), 2 (and its reflection) or 10 (the paper's five crops and their reflections).");
        if (views == 10 && (cropPadding < 1 || 2 * cropPadding >= Math.Min(data.Height, data.Width)))
            throw new ArgumentException($"--crop-padding {cropPadding}: 10 views need a padding of at least 1 and under half the image size.");
        int c = data.Channels, h = data.Height, w = data.Width;
        return Run(forward, classes, maxBatch, data.Name, data.Count, data.SampleLength, data.ClassNames, i => data.Labels[i], views, (index, view, sample) =>
        {
            // view 0: the image, 1: its reflection, 2..9: corners (top-left, top-right, bottom-left, bottom-right), each then reflected.
            bool reflect = view % 2 == 1;
            int corner = view / 2 - 1;
            if (corner < 0) data.Image(index).CopyTo(sample);
            else ImageOps.CropPadded(data.Image(index), sample, c, h, w, cropPadding, corner / 2 * 2 * cropPadding, corner % 2 * 2 * cropPadding);
            if (reflect) ImageOps.FlipHorizontal(sample, c, h, w);
            normalization.Apply(sample, h, w);
        }, cancel);
    }

    /// <summary>
    /// <see cref="Evaluate(ForwardPass, int, int, Dataset, Normalization, int, int, CancellationToken)"/> for images in a
    /// decoded-image cache, through the paper's test views (<see cref="ImagePipeline.View"/>): 1 view is the centre crop,
    /// 2 the centre crop and its reflection, 10 the four corner crops and the centre crop at the full input size and
    /// their reflections (section 4.1).
    /// </summary>
    public static EvaluationResult Evaluate(ForwardPass forward, int classes, int maxBatch, ImageSet data, ImagePipeline pipeline, int views = 1,
        CancellationToken cancel = default)
    {
        if (!ViewCounts.Contains(views)) throw new ArgumentException($"--views {views}: use 1 (the centre crop), 2 (and its reflection) or 10 (the paper's five crops and their reflections).");
        return Run(forward, classes, maxBatch, data.Name, data.Count, pipeline.SampleLength, data.ClassNames, data.Label, views,
            (index, view, sample) => pipeline.View(data.Pixels(index), view < 2 ? ImagePipeline.CentreView : view / 2 - 1, mirror: view % 2 == 1, sample),
            cancel);
    }

    /// <summary>
    /// The loop of both evaluations: batches of up to <paramref name="maxBatch"/> samples, each view prepared by
    /// <paramref name="prepareView"/>(sample index, view, destination), softmax averaged over the views. A data set of K
    /// classes on a network of more outputs is judged on the first K (the outputs beyond belong to no class).
    /// </summary>
    private static EvaluationResult Run(ForwardPass forward, int outputs, int maxBatch, string name, int count, int length, IReadOnlyList<string> classNames,
        Func<int, int> labelOf, int views, Action<int, int, Span<float>> prepareView, CancellationToken cancel)
    {
        int classes = classNames.Count;
        if (classes > outputs) throw new ArgumentException($"{name}: {classes} classes, the network has {outputs} outputs.");
        var images = new float[maxBatch * length];
        var logits = new float[maxBatch * outputs];
        var probabilities = new double[maxBatch * classes];
        var viewProbabilities = new double[classes];
        var confusion = new int[classes, classes];
        double lossSum = 0;
        for (int start = 0; start < count; start += maxBatch)
        {
            cancel.ThrowIfCancellationRequested();
            int chunk = Math.Min(maxBatch, count - start);
            Array.Clear(probabilities);
            for (int view = 0; view < views; view++)
            {
                for (int i = 0; i < chunk; i++) prepareView(start + i, view, images.AsSpan(i * length, length));
                forward(images.AsSpan(0, chunk * length), chunk, logits);
                for (int i = 0; i < chunk; i++)
                {
                    Softmax(logits.AsSpan(i * outputs, classes), viewProbabilities);
                    Span<double> sumOverViews = probabilities.AsSpan(i * classes, classes);
                    for (int k = 0; k < classes; k++) sumOverViews[k] += viewProbabilities[k];
                }
            }
            for (int i = 0; i < chunk; i++)
            {
                Span<double> mean = probabilities.AsSpan(i * classes, classes);
                int label = labelOf(start + i);
                int predicted = ArgMax<double>(mean);
                lossSum -= Math.Log(Math.Max(mean[label] / views, double.Epsilon));
                confusion[label, predicted]++;
            }
        }
        int correct = 0;
        for (int k = 0; k < classes; k++) correct += confusion[k, k];
        return new EvaluationResult(count == 0 ? double.NaN : lossSum / count, count == 0 ? double.NaN : (double)correct / count, confusion, classNames);
    }

    /// <summary>probabilities = softmax(logits), computed stably in double (the maximum logit subtracted first).</summary>
    internal static void Softmax(ReadOnlySpan<float> logits, Span<double> probabilities)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits) max = MathF.Max(max, v);
        double sum = 0;
        for (int k = 0; k < logits.Length; k++) sum += probabilities[k] = Math.Exp(logits[k] - max);
        for (int k = 0; k < logits.Length; k++) probabilities[k] /= sum;
    }

    /// <summary>Index of the first maximum.</summary>
    public static int ArgMax<T>(ReadOnlySpan<T> values) where T : IComparisonOperators<T, T, bool>
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
