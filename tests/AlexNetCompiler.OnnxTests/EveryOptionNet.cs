using AlexNetCompiler;

namespace AlexNetCompiler.OnnxTests;

// Every option the layer attributes allow, for the exporter: a rectangular conv without bias with per-axis stride and
// padding, LRN with non-default parameters, a padded rectangular max pool, a grouped conv, adaptive average pools that
// lower to an AveragePool (22 -> 11 columns, rows unchanged), to matrices (7x11 -> 3x13: rows shrink, columns grow)
// and to nothing (the identity), dropout before a conv and before Dense layers, a Dense without bias, an explicit loss.
[Network(Channels = 3, Height = 25, Width = 21)]
[Conv2d(8, KernelHeight = 5, KernelWidth = 3, StrideHeight = 2, StrideWidth = 1, PaddingHeight = 2, PaddingWidth = 1, Bias = false), Relu]
[Lrn(Size = 3, Alpha = 0.02f, Beta = 0.6f, K = 1.5f)]
[MaxPool(3, KernelWidth = 2, StrideHeight = 2, StrideWidth = 1, Padding = 1), Dropout(0.1f)]
[Conv2d(6, Kernel = 3, Padding = 1, Groups = 2), Relu]
[AdaptiveAvgPool(7, OutputWidth = 11), AdaptiveAvgPool(3, OutputWidth = 13), Relu, AdaptiveAvgPool(3, OutputWidth = 13)]
[Dropout(0.3f), Dense(16, Bias = false), Relu]
[Dropout(0.2f), Dense(5), SoftmaxCrossEntropy]
public partial class EveryOptionNet { }

// A layer named like a value the exporter names itself (the Flatten before the first Dense).
[Network(Channels = 1, Height = 6, Width = 6)]
[Conv2d(2, Kernel = 3), Relu(Name = "flatten")]
[Dense(3)]
public partial class FlattenNamedNet { }
