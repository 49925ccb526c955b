using AlexNetCompiler;

namespace FashionMnist;

/// <summary>
/// An AlexNet-shaped network for 32x32 colour images (CIFAR-10): the paper's five convolutions with LRN after the
/// first two, groups = 2 in conv2, conv4 and conv5 (the paper's two-GPU split), overlapping 3x3/2 max pools and two
/// dropout-regularised hidden layers; 5x5 kernels with stride 1 in the first two blocks in place of conv1's
/// 11x11/4, which a 32-pixel image cannot afford, and every pool padded by one so that its windows read every row
/// (32 -> 16 -> 8 -> 4). 3,233,674 parameters.
/// </summary>
[Network(Channels = 3, Height = 32, Width = 32)]
[Conv2d(64, Kernel = 5, Padding = 2), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2, Padding = 1)]
[Conv2d(128, Kernel = 5, Padding = 2, Groups = 2), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2, Padding = 1)]
[Conv2d(192, Kernel = 3, Padding = 1), Relu]
[Conv2d(192, Kernel = 3, Padding = 1, Groups = 2), Relu]
[Conv2d(128, Kernel = 3, Padding = 1, Groups = 2), Relu, MaxPool(3, Stride = 2, Padding = 1)]
[Dropout(0.5f), Dense(1024), Relu]
[Dropout(0.5f), Dense(512), Relu]
[Dense(10)]
public partial class CifarNet { }
