using AlexNetCompiler;

namespace CanonicalAlexNet;

/// <summary>
/// The network of Krizhevsky, Sutskever and Hinton (2012), as one tower: the paper's two-GPU split is
/// expressed as groups = 2 in conv2, conv4 and conv5. 227x227 input (the paper's "224" does not tile
/// with an 11x11 stride-4 kernel). 60,965,224 parameters.
/// </summary>
[Network(Channels = 3, Height = 227, Width = 227)]
[Conv2d(96, Kernel = 11, Stride = 4), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2)]
[Conv2d(256, Kernel = 5, Padding = 2, Groups = 2), Relu, Lrn(Size = 5, Alpha = 1e-4f, Beta = 0.75f, K = 2f), MaxPool(3, Stride = 2)]
[Conv2d(384, Kernel = 3, Padding = 1), Relu]
[Conv2d(384, Kernel = 3, Padding = 1, Groups = 2), Relu]
[Conv2d(256, Kernel = 3, Padding = 1, Groups = 2), Relu, MaxPool(3, Stride = 2)]
[Dropout(0.5f), Dense(4096), Relu]
[Dropout(0.5f), Dense(4096), Relu]
[Dense(1000)]
public partial class AlexNet2012 { }
