namespace AlexNetCompiler.Bench;

/// <summary>
/// Floating-point work of one image, counted as 2 x the multiply-adds of the convolution and dense layers (the
/// layers that hold all but a fraction of a percent of AlexNet's arithmetic; ReLU, LRN, pooling and the loss are not
/// counted). A training step is the forward pass plus backward's two products per layer — the input gradient and
/// the weight gradient, each as large as the forward product — less the first layer's input gradient, which neither
/// this project nor PyTorch computes (the images need no gradient).
/// </summary>
internal static class Flops
{
    public static double ForwardPerImage(NetworkDescriptor d) => LayerFlops(d).Sum();

    public static double TrainingStepPerImage(NetworkDescriptor d)
    {
        double[] layers = LayerFlops(d).ToArray();
        return layers.Length == 0 ? 0 : 3 * layers.Sum() - layers[0];
    }

    private static IEnumerable<double> LayerFlops(NetworkDescriptor d)
    {
        foreach (LayerDescriptor layer in d.Layers)
        {
            if (layer.Kind == LayerKind.Conv2d && layer.Hyperparameters is Conv2dHyperparameters c)
            {
                double inChannelsPerGroup = (double)layer.InputShape[0] / c.Groups;
                double outputs = (double)layer.OutputShape[0] * layer.OutputShape[1] * layer.OutputShape[2];
                yield return 2 * outputs * inChannelsPerGroup * c.KernelHeight * c.KernelWidth;
            }
            else if (layer.Kind == LayerKind.Dense)
            {
                double inFeatures = layer.InputShape.Aggregate(1.0, (a, b) => a * b);
                yield return 2 * inFeatures * layer.OutputShape[0];
            }
        }
    }
}
