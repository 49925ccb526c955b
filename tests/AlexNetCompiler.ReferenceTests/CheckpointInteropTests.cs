using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Training;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>
/// Checkpoints move between the project and TorchSharp by state-dict name. TorchSharp 0.107 has no
/// safetensors support, so the torch side reads and writes the files with the minimal, independent
/// implementation of the format below (not the project's), and load_state_dict (strict) checks the names.
/// </summary>
public sealed class CheckpointInteropTests : IDisposable
{
    // Weights must arrive bit-identical. The outputs are then computed by two implementations (our reference
    // kernels in double, libtorch in float32) over at most 96-term sums: |d| <= 1e-5 + 1e-4*|ref|.
    private const double OutputRelative = 1e-4, OutputAbsolute = 1e-5;
    private const int Batch = 3;

    private readonly string _directory = Directory.CreateTempSubdirectory("anc-interop-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void CheckpointWrittenByTheProjectLoadsIntoTorchWithIdenticalOutputs()
    {
        NetworkDescriptor network = TinyNetwork.Descriptor;
        var parameters = new float[network.ParameterCount];
        Initializer.Initialize(network, parameters, InitScheme.He, seed: 7);
        string path = Path.Combine(_directory, "ours.safetensors");
        Checkpoint.Save(path, network, parameters);

        using var dispose = torch.NewDisposeScope();
        var module = TinyNetwork.CreateTorchModule();
        Dictionary<string, Tensor> stateDict = ReadSafeTensorsIndependently(path);
        module.load_state_dict(stateDict, strict: true);
        foreach (ParameterDescriptor p in network.Parameters)
            Assert.Equal(parameters.AsSpan(p.Offset, p.Length).ToArray(), ToArray(module.state_dict()[p.Name]).ToArray());

        module.eval();
        float[] input = RandomArray(Batch * network.InputLength, 81);
        float[] torchLogits = ToArray(module.call(ToTensor(input, Batch, 3, 8, 8)));
        AssertClose(torchLogits, TinyNetwork.Forward(parameters, input, Batch), OutputRelative, OutputAbsolute, "logits");
    }

    [Fact]
    public void CheckpointWrittenFromTorchParametersLoadsIntoTheProjectWithIdenticalOutputs()
    {
        NetworkDescriptor network = TinyNetwork.Descriptor;
        using var dispose = torch.NewDisposeScope();
        torch.manual_seed(3);
        var module = TinyNetwork.CreateTorchModule();
        module.eval();
        string path = Path.Combine(_directory, "torch.safetensors");
        WriteSafeTensorsIndependently(path, module.state_dict());

        var parameters = new float[network.ParameterCount];
        Checkpoint.Load(path, network, parameters);
        foreach (ParameterDescriptor p in network.Parameters)
            Assert.Equal(ToArray(module.state_dict()[p.Name]), parameters.AsSpan(p.Offset, p.Length).ToArray());

        float[] input = RandomArray(Batch * network.InputLength, 82);
        float[] torchLogits = ToArray(module.call(ToTensor(input, Batch, 3, 8, 8)));
        AssertClose(torchLogits, TinyNetwork.Forward(parameters, input, Batch), OutputRelative, OutputAbsolute, "logits");
    }

    /// <summary>Reads every F32 tensor of a safetensors file into torch tensors (header: 8-byte LE length + JSON).</summary>
    private static Dictionary<string, Tensor> ReadSafeTensorsIndependently(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        using JsonDocument header = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        var tensors = new Dictionary<string, Tensor>();
        foreach (JsonProperty entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            Assert.Equal("F32", entry.Value.GetProperty("dtype").GetString());
            long[] shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            long begin = entry.Value.GetProperty("data_offsets")[0].GetInt64(), end = entry.Value.GetProperty("data_offsets")[1].GetInt64();
            var values = new float[(end - begin) / 4];
            Buffer.BlockCopy(file, (int)(8 + headerLength + begin), values, 0, (int)(end - begin));
            tensors[entry.Name] = ToTensor(values, shape);
        }
        return tensors;
    }

    /// <summary>
    /// Writes torch tensors as safetensors: an unpadded header built as plain text, and the data section in
    /// the reverse of the header's order (both allowed by the format), so the loader cannot rely on our writer's habits.
    /// </summary>
    private static void WriteSafeTensorsIndependently(string path, IReadOnlyDictionary<string, Tensor> stateDict)
    {
        var names = stateDict.Keys.ToList();
        var data = new List<byte[]>();
        var offsets = new Dictionary<string, (long Begin, long End)>();
        long position = 0;
        foreach (string name in Enumerable.Reverse(names))
        {
            float[] values = ToArray(stateDict[name]);
            var bytes = new byte[values.Length * 4];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
            data.Add(bytes);
            offsets[name] = (position, position + bytes.Length);
            position += bytes.Length;
        }
        var json = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        foreach (string name in names)
        {
            string shape = string.Join(",", stateDict[name].shape);
            json.Append($",\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{shape}],\"data_offsets\":[{offsets[name].Begin},{offsets[name].End}]}}");
        }
        json.Append('}');
        byte[] headerBytes = Encoding.UTF8.GetBytes(json.ToString());
        using var stream = File.Create(path);
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBytes.Length);
        stream.Write(length);
        stream.Write(headerBytes);
        foreach (byte[] bytes in data) stream.Write(bytes);
    }
}
