using AlexNetCompiler.Onnx;
using AlexNetCompiler.Onnx.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;

namespace AlexNetCompiler.OnnxTests;

/// <summary>
/// Every example network and every test network, exported with random He-initialised weights and run in ONNX Runtime
/// (CPU) on random inputs: the logits agree with the generated Forward, and the file says what docs/onnx.md says.
/// </summary>
public sealed class OnnxExportTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>
    /// Float rounding only: the two runtimes sum dot products of up to 9,216 terms in different orders; measured at most
    /// 1.0e-6 over every network here (docs/onnx.md), so 1e-5 leaves a tenfold margin while a wrong layer mapping gives
    /// errors of order 1.
    /// </summary>
    internal const double Tolerance = 1e-5;

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<string, int> NetworksAndBatches()
    {
        var data = new TheoryData<string, int>();
        foreach (string name in OnnxRuntimeRunner.SmallNetworks.Concat(OnnxRuntimeRunner.LargeNetworks))
        {
            data.Add(name, 1);
            data.Add(name, 7);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(NetworksAndBatches))]
    public void OnnxRuntime_logits_match_the_generated_forward(string name, int batch)
    {
        INetwork network = OnnxRuntimeRunner.Create(name, batch);
        float[] input = OnnxRuntimeRunner.RandomInput(network.Descriptor, batch, seed: 2);
        string path = _folder.File(name + ".onnx");
        network.ExportOnnx(path);

        float[] expected = OnnxRuntimeRunner.Forward(network, input, batch);
        float[] actual = OnnxRuntimeRunner.Run(path, network.Descriptor, input, batch);

        double relativeL2 = OnnxRuntimeRunner.RelativeL2(actual, expected);
        output.WriteLine($"{name}, batch {batch}: relative L2 of the logits {relativeL2:E2}");
        Assert.True(relativeL2 <= Tolerance, $"{name}, batch {batch}: relative L2 {relativeL2:E2} > {Tolerance:E0}");
    }

    [Theory]
    [InlineData("EveryOptionNet")]
    [InlineData("FashionNet")]
    public void With_softmax_the_outputs_are_probabilities_of_our_logits(string name)
    {
        const int batch = 7;
        INetwork network = OnnxRuntimeRunner.Create(name, batch);
        float[] input = OnnxRuntimeRunner.RandomInput(network.Descriptor, batch, seed: 3);
        string path = _folder.File(name + ".onnx");
        network.ExportOnnx(path, includeSoftmax: true);

        var expected = new float[batch * network.Descriptor.ClassCount];
        network.Predict(input, batch, expected);
        float[] actual = OnnxRuntimeRunner.Run(path, network.Descriptor, input, batch);

        int classes = network.Descriptor.ClassCount;
        for (int n = 0; n < batch; n++)
            Assert.Equal(1.0, actual.AsSpan(n * classes, classes).ToArray().Sum(p => (double)p), precision: 5);
        double relativeL2 = OnnxRuntimeRunner.RelativeL2(actual, expected);
        output.WriteLine($"{name} with softmax: relative L2 of the probabilities {relativeL2:E2}");
        Assert.True(relativeL2 <= Tolerance, $"relative L2 {relativeL2:E2}");
        using var session = new InferenceSession(path);
        Assert.Equal([OnnxExporter.ProbabilitiesName], session.OutputNames);
    }

    [Fact]
    public void The_same_network_exports_to_the_same_bytes()
    {
        INetwork network = OnnxRuntimeRunner.Create("EveryOptionNet", 1);
        var metadata = new Dictionary<string, string> { ["b"] = "2", ["a"] = "1" };
        network.ExportOnnx(_folder.File("first.onnx"), metadata: metadata);
        network.ExportOnnx(_folder.File("second.onnx"), metadata: new Dictionary<string, string>(metadata.Reverse()));
        using var stream = new MemoryStream();
        OnnxExporter.Export(network.Descriptor, network.Parameters, stream, new OnnxExportOptions(Metadata: metadata));

        byte[] first = File.ReadAllBytes(_folder.File("first.onnx"));
        Assert.Equal(first, File.ReadAllBytes(_folder.File("second.onnx")));
        Assert.Equal(first, stream.ToArray());
        Assert.Empty(Directory.GetFiles(_folder.Path, "*.tmp"));
    }

    [Fact]
    public void The_graph_has_the_documented_opset_names_and_lowering()
    {
        INetwork network = OnnxRuntimeRunner.Create("EveryOptionNet", 1);
        using var stream = new MemoryStream();
        OnnxExporter.Export(network.Descriptor, network.Parameters, stream);
        ModelProto model = ModelProto.Parser.ParseFrom(stream.ToArray());

        Assert.Equal(8, model.IrVersion);
        Assert.Equal(17, Assert.Single(model.OpsetImport).Version);
        // Initializers: the state dict in order, then the constant pooling matrices of the one non-uniform pool.
        string[] stateDict = network.Descriptor.Parameters.Select(p => p.Name).ToArray();
        Assert.Equal(stateDict, model.Graph.Initializer.Take(stateDict.Length).Select(t => t.Name));
        Assert.Equal(["features.8.row_pool", "features.8.column_pool"], model.Graph.Initializer.Skip(stateDict.Length).Select(t => t.Name));
        // Dropout and the identity pool emit nothing; the divisible pool is an AveragePool, the other two matrix products.
        Assert.Equal(["Conv", "Relu", "LRN", "MaxPool", "Conv", "Relu", "AveragePool", "MatMul", "MatMul", "Relu", "Flatten", "Gemm", "Relu", "Gemm"],
            model.Graph.Node.Select(n => n.OpType));
        NodeProto firstConv = model.Graph.Node[0];
        Assert.Equal(["input", "features.0.weight"], firstConv.Input); // Bias = false: no third input
        Assert.Equal([5L, 3L], firstConv.Attribute.Single(a => a.Name == "kernel_shape").Ints);
        Assert.Equal([2L, 1L, 2L, 1L], firstConv.Attribute.Single(a => a.Name == "pads").Ints);
        AttributeProto alpha = model.Graph.Node[2].Attribute.Single(a => a.Name == "alpha");
        Assert.Equal(0.02f * 3, alpha.F); // the paper's alpha times size
        Assert.Equal(2, model.Graph.Node.Single(n => n.OpType == "Conv" && n.Name == "features.5").Attribute.Single(a => a.Name == "group").I);
        Assert.Equal("logits", model.Graph.Node[^1].Output.Single());

        using var session = new InferenceSession(stream.ToArray());
        NodeMetadata input = session.InputMetadata[OnnxExporter.InputName];
        Assert.Equal([-1, 3, 25, 21], input.Dimensions);
        Assert.Equal(OnnxExporter.BatchDimension, input.SymbolicDimensions[0]);
        NodeMetadata logits = session.OutputMetadata[OnnxExporter.LogitsName];
        Assert.Equal([-1, 5], logits.Dimensions);
        Assert.Equal(OnnxExporter.BatchDimension, logits.SymbolicDimensions[0]);
    }

    [Fact]
    public void A_parameter_buffer_of_the_wrong_size_is_refused()
    {
        INetwork network = OnnxRuntimeRunner.Create("UnusualNet", 1);
        var error = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(network.Descriptor, new float[3], _folder.File("x.onnx")));
        Assert.Contains("UnusualNet", error.Message);
        Assert.False(File.Exists(_folder.File("x.onnx")));
    }

    [Fact]
    public void A_layer_named_like_a_value_of_the_exporter_is_refused_with_its_name()
    {
        var network = new FlattenNamedNet(1);
        var error = Assert.Throws<ArgumentException>(() => network.ExportOnnx(_folder.File("x.onnx")));
        Assert.Contains("'flatten'", error.Message);
        Assert.False(File.Exists(_folder.File("x.onnx")));
    }
}
