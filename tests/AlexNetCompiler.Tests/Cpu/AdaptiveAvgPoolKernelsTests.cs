using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Tests.Cpu;

public class AdaptiveAvgPoolKernelsTests
{
    /// <summary>(batch, C, H, W, OH, OW).</summary>
    public static TheoryData<int, int, int, int, int, int> Shapes() => new()
    {
        { 2, 3, 7, 7, 6, 6 },       // overlapping bins
        { 1, 4, 12, 12, 6, 6 },     // divides
        { 3, 2, 6, 6, 6, 6 },       // identity
        { 2, 2, 3, 5, 6, 4 },       // output larger than the input on one axis
        { 1, 5, 13, 9, 4, 7 },      // rectangular
        { 2, 256, 13, 13, 6, 6 },   // torchvision AlexNet at 448x448
        { 1, 1, 1, 1, 300, 2 },     // more bins than fit the kernels' stack buffer
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_and_backward_match_reference_exactly(int batch, int c, int h, int w, int oh, int ow)
    {
        var g = new AdaptiveAvgPoolGeometry(c, h, w, oh, ow);
        float[] input = KernelAssert.Random(batch * g.InputLength, 71);
        int outLength = batch * g.OutputLength;
        var expected = new float[outLength];
        AdaptiveAvgPoolKernels.ForwardReference(g, batch, input, expected);
        float[] dOutput = KernelAssert.Random(outLength, 72);
        var dInputRef = new float[input.Length];
        AdaptiveAvgPoolKernels.BackwardReference(g, batch, dOutput, dInputRef);

        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var ctx = new CpuContext(threads);
            var actual = new float[outLength];
            AdaptiveAvgPoolKernels.Forward(g, batch, input, actual, ctx);
            // The same windows summed in the same order: bit-identical.
            Assert.Equal(expected, actual);

            float[] dInput = KernelAssert.Random(input.Length, 73); // poisoned: backward zeroes first
            AdaptiveAvgPoolKernels.Backward(g, batch, dOutput, dInput, ctx);
            Assert.Equal(dInputRef, dInput);
        }
    }

    // The bins' definition, written out for 7 -> 6 and 7 -> 4: every bin non-empty, neighbours overlap.
    [Fact]
    public void Bins_are_pytorchs()
    {
        int[] Starts(int input, int output) => Enumerable.Range(0, output).Select(i => AdaptiveAvgPoolGeometry.BinStart(i, input, output)).ToArray();
        int[] Ends(int input, int output) => Enumerable.Range(0, output).Select(i => AdaptiveAvgPoolGeometry.BinEnd(i, input, output)).ToArray();
        Assert.Equal([0, 1, 2, 3, 4, 5], Starts(7, 6));
        Assert.Equal([2, 3, 4, 5, 6, 7], Ends(7, 6));
        Assert.Equal([0, 1, 3, 5], Starts(7, 4));
        Assert.Equal([2, 4, 6, 7], Ends(7, 4));
        Assert.Equal([0, 0, 0], Starts(1, 3));
        Assert.Equal([1, 1, 1], Ends(1, 3));
    }

    [Fact]
    public void Wrong_lengths_are_reported()
    {
        var g = new AdaptiveAvgPoolGeometry(2, 5, 5, 3, 3);
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentException>(() => AdaptiveAvgPoolKernels.Forward(g, 1, new float[49], new float[18], ctx));
        Assert.Contains("input has 49 floats", e.Message);
    }
}
