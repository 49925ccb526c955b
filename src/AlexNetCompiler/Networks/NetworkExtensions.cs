namespace AlexNetCompiler;

/// <summary>Conveniences over any generated network.</summary>
public static class NetworkExtensions
{
    /// <summary>Inference: class probabilities [batch, classes] (softmax of the logits, computed stably).</summary>
    public static void Predict(this INetwork network, ReadOnlySpan<float> input, int batch, Span<float> probabilities)
    {
        ArgumentNullException.ThrowIfNull(network);
        int classes = network.Descriptor.ClassCount;
        if (probabilities.Length < batch * classes)
            throw new ArgumentException($"probabilities holds {probabilities.Length} floats; batch {batch} needs {batch * classes}.", nameof(probabilities));
        network.Forward(input, batch, probabilities);
        for (int n = 0; n < batch; n++)
        {
            Span<float> row = probabilities.Slice(n * classes, classes);
            float max = float.NegativeInfinity;
            foreach (float v in row) max = MathF.Max(max, v);
            float sum = 0;
            for (int c = 0; c < classes; c++) { row[c] = MathF.Exp(row[c] - max); sum += row[c]; }
            for (int c = 0; c < classes; c++) row[c] /= sum;
        }
    }
}
