using AlexNetCompiler;

namespace FashionMnist;

/// <summary>
/// An AlexNet-shaped network for 28x28 grey images: five convolutions (the later ones grouped, as in the
/// paper), ReLU, LRN after the first two blocks, overlapping 3x3/2 max pools, and a dropout-regularised
/// classifier. Small enough that a 2-core CPU trains it on Fashion-MNIST in minutes.
/// </summary>
[Network(Channels = 1, Height = 28, Width = 28)]
[Conv2d(32, Kernel = 3, Padding = 1), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2, Padding = 1)]
[Conv2d(64, Kernel = 3, Padding = 1), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2, Padding = 1)]
[Conv2d(128, Kernel = 3, Padding = 1), Relu]
[Conv2d(128, Kernel = 3, Padding = 1, Groups = 2), Relu]
[Conv2d(64, Kernel = 3, Padding = 1, Groups = 2), Relu, MaxPool(3, Stride = 2)]
[Dropout(0.5f), Dense(512), Relu]
[Dropout(0.5f), Dense(256), Relu]
[Dense(10)]
public partial class FashionNet { }
