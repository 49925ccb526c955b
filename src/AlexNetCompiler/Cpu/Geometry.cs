namespace AlexNetCompiler.Cpu;

/// <summary>Shape of a 2-D convolution for one sample. Input [C, H, W], weight [OC, C/G, KH, KW], output [OC, OH, OW].</summary>
public readonly record struct Conv2dGeometry(
    int InChannels, int InHeight, int InWidth,
    int OutChannels, int OutHeight, int OutWidth,
    int KernelHeight, int KernelWidth,
    int StrideHeight, int StrideWidth,
    int PaddingHeight, int PaddingWidth,
    int Groups)
{
    public int InputLength => InChannels * InHeight * InWidth;
    public int OutputLength => OutChannels * OutHeight * OutWidth;
    public int WeightLength => OutChannels * (InChannels / Groups) * KernelHeight * KernelWidth;
}

/// <summary>Shape of a max pool for one sample. Input [C, H, W], output [C, OH, OW]; padding acts as -infinity.</summary>
public readonly record struct PoolGeometry(
    int Channels, int InHeight, int InWidth, int OutHeight, int OutWidth,
    int KernelHeight, int KernelWidth, int StrideHeight, int StrideWidth, int PaddingHeight, int PaddingWidth)
{
    public int InputLength => Channels * InHeight * InWidth;
    public int OutputLength => Channels * OutHeight * OutWidth;
}

/// <summary>
/// Shape of an adaptive average pool for one sample. Input [C, H, W], output [C, OH, OW]; output row i averages input
/// rows <see cref="BinStart"/>(i, H, OH) up to <see cref="BinEnd"/>(i, H, OH), exclusive (PyTorch's bins), columns likewise.
/// </summary>
public readonly record struct AdaptiveAvgPoolGeometry(int Channels, int InHeight, int InWidth, int OutHeight, int OutWidth)
{
    public int InputLength => Channels * InHeight * InWidth;
    public int OutputLength => Channels * OutHeight * OutWidth;

    /// <summary>floor(i * input / output): the first input index of output bin i.</summary>
    public static int BinStart(int i, int input, int output) => (int)((long)i * input / output);

    /// <summary>ceil((i + 1) * input / output): one past the last input index of output bin i; never equal to its start.</summary>
    public static int BinEnd(int i, int input, int output) => (int)(((long)(i + 1) * input + output - 1) / output);
}

/// <summary>
/// Cross-channel LRN for one sample, [C, H, W] in and out. Alpha is the paper's (applied to the plain sum
/// over the window); torch's LocalResponseNorm(size, alpha * size, beta, k) is the same function.
/// </summary>
public readonly record struct LrnGeometry(int Channels, int Height, int Width, int Size, float Alpha, float Beta, float K)
{
    public int Length => Channels * Height * Width;
}
