namespace AlexNetCompiler.Tests.Networks;

/// <summary>The typed hyper-parameters and input shapes of the generated layer table, which exporters read at run time.</summary>
public sealed class LayerDescriptorTests
{
    [Fact]
    public void Every_layer_carries_its_attribute_values_with_the_defaults_resolved()
    {
        IReadOnlyList<LayerDescriptor> layers = UnusualNet.Model.Layers;
        Assert.Equal(new Conv2dHyperparameters(3, 2, 1, 2, 1, 0, 1, Bias: false), layers[0].Hyperparameters);
        Assert.Equal(new LrnHyperparameters(3, 0.05f, 0.75f, 1f), layers[1].Hyperparameters);
        Assert.Null(layers[2].Hyperparameters); // ReLU
        Assert.Equal(new MaxPoolHyperparameters(3, 3, 2, 2, 1, 1), layers[3].Hyperparameters);
        Assert.Equal(new DropoutHyperparameters(0.2f), layers[5].Hyperparameters);
        Assert.Equal(new Conv2dHyperparameters(3, 3, 1, 1, 1, 1, 2, Bias: true), layers[6].Hyperparameters);
        Assert.Equal(new DenseHyperparameters(Bias: true), layers[9].Hyperparameters);
        Assert.Null(layers[^1].Hyperparameters); // the loss head
        Assert.Equal(LayerKind.SoftmaxCrossEntropy, layers[^1].Kind);
        Assert.Null(AvgPoolNet.Model.Layers.Single(l => l.Kind == LayerKind.AdaptiveAvgPool && l.Index == 2).Hyperparameters);
    }

    [Fact]
    public void Each_layer_reads_what_the_one_before_writes_and_the_first_reads_the_input()
    {
        foreach (NetworkDescriptor network in new[] { UnusualNet.Model, RectangularPoolNet.Model, AvgPoolNet.Model, FashionMnist.FashionNet.Model })
        {
            Assert.Equal([network.InputChannels, network.InputHeight, network.InputWidth], network.Layers[0].InputShape);
            for (int i = 1; i < network.Layers.Count; i++) Assert.Equal(network.Layers[i - 1].OutputShape, network.Layers[i].InputShape);
        }
        // The first Dense layer reads the feature map unflattened; the next one reads features.
        LayerDescriptor[] dense = UnusualNet.Model.Layers.Where(l => l.Kind == LayerKind.Dense).ToArray();
        Assert.Equal(3, dense[0].InputShape.Length);
        Assert.Equal([12], dense[1].InputShape);
    }
}
