using AlexNetCompiler;
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
    /// <summary>Inference over every sample of the loader's dataset (no augmentation should be configured on it).</summary>
    public static EvaluationResult Evaluate(INetwork network, BatchLoader loader, CancellationToken cancel = default) =>
        Evaluate(network.Forward, network.Descriptor.ClassCount, network.MaxBatch, loader, cancel);

    /// <summary>The same through any forward pass (the CPU network or a GPU engine) taking up to <paramref name="maxBatch"/> images.</summary>
    public static EvaluationResult Evaluate(ForwardPass forward, int classes, int maxBatch, BatchLoader loader, CancellationToken cancel = default)
    {
        if (loader.BatchSize > maxBatch)
            throw new ArgumentException($"Evaluation batches of {loader.BatchSize} exceed the forward pass's maximum batch {maxBatch}.");
        var confusion = new int[classes, classes];
        var logits = new float[maxBatch * classes];
        double lossSum = 0;
        int seen = 0;
        foreach (Batch batch in loader.Epoch(0))
        {
            cancel.ThrowIfCancellationRequested();
            forward(batch.ImageSpan, batch.Count, logits);
            for (int n = 0; n < batch.Count; n++)
            {
                ReadOnlySpan<float> row = logits.AsSpan(n * classes, classes);
                int label = batch.Labels[n];
                lossSum += CrossEntropy(row, label);
                confusion[label, ArgMax(row)]++;
            }
            seen += batch.Count;
        }
        int correct = 0;
        for (int c = 0; c < classes; c++) correct += confusion[c, c];
        return new EvaluationResult(seen == 0 ? double.NaN : lossSum / seen, seen == 0 ? double.NaN : (double)correct / seen, confusion, loader.Data.ClassNames);
    }

    /// <summary>-log softmax(logits)[label], computed stably (log-sum-exp shifted by the maximum).</summary>
    public static double CrossEntropy(ReadOnlySpan<float> logits, int label)
    {
        float max = float.NegativeInfinity;
        foreach (float v in logits) max = MathF.Max(max, v);
        double sum = 0;
        foreach (float v in logits) sum += Math.Exp(v - max);
        return Math.Log(sum) + max - logits[label];
    }

    /// <summary>Index of the first maximum.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
