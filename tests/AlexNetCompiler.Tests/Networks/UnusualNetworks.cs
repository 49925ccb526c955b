using AlexNetCompiler;

namespace AlexNetCompiler.Tests.Networks;

// Specs that exercise the less common paths of the CPU emitter: a ReLU after LRN (own buffer), a standalone
// ReLU after a pool (in place), a conv without bias, rectangular kernels and strides, a pool with padding,
// dropout after a pool and its ReLU, before a conv (a kernel of its own on the GPU; dropout before a Dense is
// fused into the Dense), a Dense with no ReLU before another Dense, and an explicit loss head.

[Network(Channels = 2, Height = 11, Width = 9)]
[Conv2d(6, KernelHeight = 3, KernelWidth = 2, StrideWidth = 2, PaddingHeight = 1, Bias = false), Lrn(Size = 3, Alpha = 0.05f, Beta = 0.75f, K = 1f), Relu]
[MaxPool(3, Stride = 2, Padding = 1), Relu, Dropout(0.2f)]
[Conv2d(4, Kernel = 3, Padding = 1, Groups = 2), Relu]
[Dropout(0.25f), Dense(12), Dense(7), Relu, Dense(5), SoftmaxCrossEntropy]
public partial class UnusualNet { }

// Non-square max pools (kernel and stride differ between the axes): one padded and fused with the LRN before it,
// one on its own. The CUDA kernels take each axis separately; the GPU check compares them with the CPU backend.
[Network(Channels = 3, Height = 13, Width = 12)]
[Conv2d(8, Kernel = 3, Padding = 1), Relu, Lrn(Size = 3, Alpha = 0.05f, Beta = 0.75f, K = 1f)]
[MaxPool(3, KernelWidth = 2, StrideHeight = 2, StrideWidth = 1, Padding = 1)]
[Conv2d(6, Kernel = 2), Relu, MaxPool(2, KernelWidth = 3, StrideHeight = 1, StrideWidth = 2)]
[Dense(5)]
public partial class RectangularPoolNet { }

// Adaptive average pools that are not the identity: one shrinking 9x8 to 4x3 (bins overlap on both axes), one growing
// 4x3 to 5x6 (an input row feeds two outputs), and one at its input's size (the identity: no kernel runs).
[Network(Channels = 3, Height = 19, Width = 17)]
[Conv2d(6, Kernel = 3, Stride = 2), Relu, AdaptiveAvgPool(4, OutputWidth = 3)]
[Conv2d(8, Kernel = 1), AdaptiveAvgPool(5, OutputWidth = 6), Relu, AdaptiveAvgPool(5, OutputWidth = 6)]
[Dense(6)]
public partial class AvgPoolNet { }
