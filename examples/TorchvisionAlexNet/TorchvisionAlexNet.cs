using AlexNetCompiler;

namespace TorchvisionAlexNet;

/// <summary>
/// torchvision.models.alexnet (the "one weird trick" variant): 64-192-384-256-256 channels, conv1 padding 2,
/// no LRN, no groups, and torchvision's AdaptiveAvgPool2d((6, 6)) before the classifier, which makes the classifier's
/// input 256x6x6 at any input size. At 224x224 the feature map is already 6x6, so the pool is the identity and the
/// generated code runs no kernel for it. 61,100,840 parameters; the state-dict names match torchvision's, so its
/// weights load directly.
/// </summary>
[Network(Channels = 3, Height = 224, Width = 224)]
[Conv2d(64, Kernel = 11, Stride = 4, Padding = 2), Relu, MaxPool(3, Stride = 2)]
[Conv2d(192, Kernel = 5, Padding = 2), Relu, MaxPool(3, Stride = 2)]
[Conv2d(384, Kernel = 3, Padding = 1), Relu]
[Conv2d(256, Kernel = 3, Padding = 1), Relu]
[Conv2d(256, Kernel = 3, Padding = 1), Relu, MaxPool(3, Stride = 2)]
[AdaptiveAvgPool(6, Name = "avgpool")]
[Dropout(0.5f), Dense(4096), Relu]
[Dropout(0.5f), Dense(4096), Relu]
[Dense(1000)]
public partial class TorchvisionAlexNet { }
