namespace AlexNetCompiler.Cpu;

/// <summary>
/// Softmax followed by cross-entropy against integer labels, fused (torch.nn.functional.cross_entropy with
/// mean reduction). Stable: loss_n = logsumexp(x_n) - x_n[label] with logsumexp = max + log(sum(exp(x - max))).
/// </summary>
public static class SoftmaxCrossEntropyKernels
{
    /// <summary>logits [N, classes], labels [N]; fills probabilities [N, classes] and returns the mean loss.</summary>
    public static float Forward(int batch, int classes, ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, Span<float> probabilities)
    {
        ThrowIfInvalid(batch, classes, logits.Length, labels, probabilities.Length, "probabilities");
        double totalLoss = 0;
        for (int n = 0; n < batch; n++)
        {
            ReadOnlySpan<float> x = logits.Slice(n * classes, classes);
            Span<float> prob = probabilities.Slice(n * classes, classes);
            float max = float.NegativeInfinity;
            for (int c = 0; c < classes; c++) max = Math.Max(max, x[c]);
            double sum = 0;
            for (int c = 0; c < classes; c++)
            {
                float e = MathF.Exp(x[c] - max);
                prob[c] = e;
                sum += e;
            }
            float inverse = (float)(1.0 / sum);
            for (int c = 0; c < classes; c++) prob[c] *= inverse;
            double logSumExp = max + Math.Log(sum);
            totalLoss += logSumExp - x[labels[n]];
        }
        return batch == 0 ? 0f : (float)(totalLoss / batch);
    }

    /// <summary>dLogits [N, classes] = (probabilities - onehot(label)) / N (the gradient of the mean loss).</summary>
    public static void Backward(int batch, int classes, ReadOnlySpan<float> probabilities, ReadOnlySpan<int> labels, Span<float> dLogits)
    {
        ThrowIfInvalid(batch, classes, probabilities.Length, labels, dLogits.Length, "dLogits");
        float inverseBatch = 1f / batch;
        for (int n = 0; n < batch; n++)
        {
            for (int c = 0; c < classes; c++)
                dLogits[n * classes + c] = probabilities[n * classes + c] * inverseBatch;
            dLogits[n * classes + labels[n]] -= inverseBatch;
        }
    }

    private static void ThrowIfInvalid(int batch, int classes, int logitsLength, ReadOnlySpan<int> labels, int outputLength, string outputName)
    {
        if (batch < 0 || classes <= 0)
            throw new ArgumentException($"Softmax cross-entropy: batch {batch} must not be negative and classes {classes} must be positive.");
        if (logitsLength != batch * classes || outputLength != batch * classes)
            throw new ArgumentException($"Softmax cross-entropy: logits ({logitsLength}) and {outputName} ({outputLength}) must have {batch} x {classes} floats.");
        if (labels.Length < batch)
            throw new ArgumentException($"Softmax cross-entropy: {labels.Length} labels for a batch of {batch}.");
        for (int n = 0; n < batch; n++)
        {
            if ((uint)labels[n] >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), labels[n], $"Softmax cross-entropy: label of sample {n} is {labels[n]}, outside [0, {classes}).");
        }
    }
}
