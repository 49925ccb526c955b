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

    /// <summary>
    /// Writes the network with its current parameters as an ONNX model for inference (opset
    /// <see cref="Onnx.OnnxExporter.Opset"/>, input "input" [batch, C, H, W], output "logits" [batch, classes], or
    /// "probabilities" with <paramref name="includeSoftmax"/>); see <see cref="Onnx.OnnxExporter"/>.
    /// </summary>
    public static void ExportOnnx(this INetwork network, string path, bool includeSoftmax = false,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        Onnx.OnnxExporter.Export(network.Descriptor, network.Parameters, path, new Onnx.OnnxExportOptions(includeSoftmax, metadata));
    }
}
