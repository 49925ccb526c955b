using AlexNetCompiler;

namespace FashionMnist;

/// <summary>
/// The canonical 2012 AlexNet (the stack of examples/CanonicalAlexNet/AlexNet2012.cs: conv 96 k11 s4, conv 256 k5
/// in two groups, three 3x3 convolutions, LRN and overlapping pools, dense 4096, 4096) for one grey channel and ten
/// classes: Fashion-MNIST upscaled from 28x28 to 227x227, the input size at which the 11x11 stride-4 kernel tiles.
/// 56,885,962 parameters; <c>alexnet-fashion train --network alexnet</c>.
/// </summary>
[Network(Channels = 1, Height = 227, Width = 227)]
[Conv2d(96, Kernel = 11, Stride = 4), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2)]
[Conv2d(256, Kernel = 5, Padding = 2, Groups = 2), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2)]
[Conv2d(384, Kernel = 3, Padding = 1), Relu]
[Conv2d(384, Kernel = 3, Padding = 1, Groups = 2), Relu]
[Conv2d(256, Kernel = 3, Padding = 1, Groups = 2), Relu, MaxPool(3, Stride = 2)]
[Dropout(0.5f), Dense(4096), Relu]
[Dropout(0.5f), Dense(4096), Relu]
[Dense(10)]
public partial class AlexNetFashion { }
