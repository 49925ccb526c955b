namespace AlexNetCompiler.ReferenceTests;

/// <summary>
/// A small torchvision-style network whose AdaptiveAvgPool is not the identity: the 7x7 feature map goes to 6x4, so
/// neighbouring bins overlap on both axes (rows [0, 2), [1, 3), ...; columns [0, 2), [1, 4), [3, 6), [5, 7)).
/// </summary>
[Network(Channels = 3, Height = 16, Width = 16)]
[Conv2d(8, Kernel = 3, Padding = 1), Relu, MaxPool(3, Stride = 2)]
[Conv2d(12, Kernel = 3, Padding = 1), Relu]
[AdaptiveAvgPool(6, OutputWidth = 4, Name = "avgpool")]
[Dropout(0.5f), Dense(32), Relu]
[Dense(10)]
public partial class AvgPoolNet { }
