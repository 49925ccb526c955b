using AlexNetCompiler.Cpu;
using AlexNetCompiler.Tests.Networks;
using AlexNetCompiler.Training;
using Microsoft.ML.OnnxRuntime;

namespace AlexNetCompiler.OnnxTests;

/// <summary>The networks the exporter is checked on, and one way to run an exported model in ONNX Runtime (CPU).</summary>
internal static class OnnxRuntimeRunner
{
    /// <summary>The networks of ten or so million parameters and more: run once each, at batch 7.</summary>
    public static readonly string[] LargeNetworks = ["AlexNet2012", "TorchvisionAlexNet", "AlexNetFashion"];

    public static readonly string[] SmallNetworks = ["FashionNet", "UnusualNet", "RectangularPoolNet", "AvgPoolNet", "EveryOptionNet"];

    /// <summary>A network by class name with He-initialised parameters (seeded), its buffers planned for maxBatch.</summary>
    public static INetwork Create(string name, int maxBatch, ulong seed = 1)
    {
        var cpu = new CpuContext(2);
        INetwork network = name switch
        {
            "AlexNet2012" => new CanonicalAlexNet.AlexNet2012(maxBatch, cpu),
            "TorchvisionAlexNet" => new TorchvisionAlexNet.TorchvisionAlexNet(maxBatch, cpu),
            "AlexNetFashion" => new FashionMnist.AlexNetFashion(maxBatch, cpu),
            "FashionNet" => new FashionMnist.FashionNet(maxBatch, cpu),
            "UnusualNet" => new UnusualNet(maxBatch, cpu),
            "RectangularPoolNet" => new RectangularPoolNet(maxBatch, cpu),
            "AvgPoolNet" => new AvgPoolNet(maxBatch, cpu),
            "EveryOptionNet" => new EveryOptionNet(maxBatch, cpu),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Unknown network."),
        };
        Initializer.Initialize(network.Descriptor, network.Parameters, InitScheme.He, seed);
        return network;
    }

    /// <summary>batch samples of uniform [-1, 1) noise.</summary>
    public static float[] RandomInput(NetworkDescriptor network, int batch, ulong seed)
    {
        var random = new SeededRandom(seed);
        var input = new float[batch * network.InputLength];
        for (int i = 0; i < input.Length; i++) input[i] = 2 * random.NextSingle() - 1;
        return input;
    }

    /// <summary>The generated Forward's logits [batch, classes].</summary>
    public static float[] Forward(INetwork network, float[] input, int batch)
    {
        var logits = new float[batch * network.Descriptor.ClassCount];
        network.Forward(input, batch, logits);
        return logits;
    }

    /// <summary>Runs the model file on input [batch, C, H, W] and returns its one output, flattened.</summary>
    public static float[] Run(string modelPath, NetworkDescriptor network, float[] input, int batch)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 2, InterOpNumThreads = 1 };
        using var session = new InferenceSession(modelPath, options);
        long[] shape = [batch, network.InputChannels, network.InputHeight, network.InputWidth];
        using OrtValue inputValue = OrtValue.CreateTensorValueFromMemory(input, shape);
        using var runOptions = new RunOptions();
        string output = session.OutputNames.Single();
        using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(runOptions, [Onnx.OnnxExporter.InputName], [inputValue], [output]);
        long[] outputShape = outputs[0].GetTensorTypeAndShape().Shape;
        Assert.Equal([batch, network.ClassCount], outputShape);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>||actual - expected|| / ||expected||, in double.</summary>
    public static double RelativeL2(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double difference = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            difference += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(difference / norm);
    }
}

/// <summary>A folder under the temp directory, deleted with everything in it on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("anc-onnx-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
