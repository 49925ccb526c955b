using System.Buffers.Binary;
using System.Text;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Tests.Checkpoints;

public sealed class CheckpointTests : IDisposable
{
    private static readonly NetworkDescriptor Network = TestNetworks.Small;
    private readonly string _directory = Directory.CreateTempSubdirectory("anc-checkpoint-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    private static float[] Parameters(ulong seed)
    {
        var parameters = new float[Network.ParameterCount];
        Initializer.Initialize(Network, parameters, InitScheme.He, seed);
        return parameters;
    }

    [Fact]
    public void RoundTripRestoresParametersOptimizerStateAndMetadata()
    {
        float[] parameters = Parameters(1);
        var sgd = new Sgd(parameters.Length, new SgdOptions(0.02f));
        float[] grad = Parameters(2);
        sgd.Step(parameters, grad);
        sgd.Step(parameters, grad);
        sgd.LearningRate = 0.002f;
        string path = PathOf("run.safetensors");
        Checkpoint.Save(path, Network, parameters, sgd, new Dictionary<string, string> { ["epoch"] = "3" });

        var loaded = new float[parameters.Length];
        var loadedSgd = new Sgd(parameters.Length, new SgdOptions(0.02f));
        IReadOnlyDictionary<string, string> metadata = Checkpoint.Load(path, Network, loaded, loadedSgd);
        Assert.Equal(parameters, loaded);
        Assert.Equal(sgd.Velocity, loadedSgd.Velocity);
        Assert.Equal(2, loadedSgd.StepCount);
        Assert.Equal(0.002f, loadedSgd.LearningRate);
        Assert.Equal("3", metadata["epoch"]);
        Assert.Equal("SmallNet", metadata[Checkpoint.NetworkKey]);
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
    }

    [Fact]
    public void FileFollowsTheSafetensorsLayout()
    {
        float[] parameters = Parameters(3);
        string path = PathOf("layout.safetensors");
        Checkpoint.Save(path, Network, parameters);
        byte[] file = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file);
        Assert.Equal(0UL, (8 + headerLength) % 8); // data section aligned
        string header = Encoding.UTF8.GetString(file, 8, (int)headerLength);
        Assert.Contains("\"features.0.weight\":{\"dtype\":\"F32\",\"shape\":[8,3,5,5],\"data_offsets\":[0,2400]}", header);
        Assert.Equal(8 + (long)headerLength + parameters.Length * 4L, file.Length);
        // The first weight's bytes are the raw little-endian floats.
        Assert.Equal(parameters[0], BinaryPrimitives.ReadSingleLittleEndian(file.AsSpan(8 + (int)headerLength)));
    }

    [Fact]
    public void SaveReplacesAnExistingFileAndLeavesNoTemporary()
    {
        string path = PathOf("replace.safetensors");
        Checkpoint.Save(path, Network, Parameters(4));
        float[] second = Parameters(5);
        Checkpoint.Save(path, Network, second);
        var loaded = new float[second.Length];
        Checkpoint.Load(path, Network, loaded);
        Assert.Equal(second, loaded);
        Assert.Equal([path], Directory.GetFiles(_directory));
    }

    [Fact]
    public void FailedSaveRemovesItsTemporaryFile()
    {
        // The target is replaced by a rename, and renaming a file over a non-empty directory fails: the data has been
        // written by then, so the failure path runs. (SafeTensorsWriteTests covers a failure with an old file in place.)
        string path = PathOf("occupied.safetensors");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "occupied"), "x");
        Assert.ThrowsAny<IOException>(() => Checkpoint.Save(path, Network, Parameters(7)));
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
    }

    [Fact]
    public void FileSha256IsTheHashOfTheFilesBytes()
    {
        string best = PathOf("best.safetensors"), last = PathOf("last.safetensors"), other = PathOf("other.safetensors");
        float[] parameters = Parameters(13);
        Checkpoint.Save(best, Network, parameters, metadata: new Dictionary<string, string> { ["epoch"] = "4" });
        Checkpoint.Save(last, Network, parameters, metadata: new Dictionary<string, string> { ["epoch"] = "4" });
        parameters[^1] += 1f;
        Checkpoint.Save(other, Network, parameters, metadata: new Dictionary<string, string> { ["epoch"] = "4" });

        string hash = Checkpoint.FileSha256(best);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(best))), hash);
        Assert.Matches("^[0-9a-f]{64}$", hash);
        Assert.Equal(hash, Checkpoint.FileSha256(last)); // same state, same bytes
        Assert.NotEqual(hash, Checkpoint.FileSha256(other));
        Assert.Throws<FileNotFoundException>(() => Checkpoint.FileSha256(PathOf("absent.safetensors")));
    }

    [Fact]
    public void TruncatedFileNamesTheFileAndTheTensor()
    {
        string path = PathOf("truncated.safetensors");
        Checkpoint.Save(path, Network, Parameters(8));
        // Cut 100 bytes: the last tensor (classifier.3.bias, 40 bytes) is gone and the one before it is cut short.
        using (var stream = new FileStream(path, FileMode.Open)) stream.SetLength(stream.Length - 100);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains(path, e.Message);
        Assert.Contains("classifier.3.weight", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Theory]
    [InlineData(0)]      // empty file
    [InlineData(5)]      // shorter than the length prefix
    public void TooShortFileIsRejected(int length)
    {
        string path = PathOf("short.safetensors");
        File.WriteAllBytes(path, new byte[length]);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void HugeHeaderLengthIsRejected()
    {
        string path = PathOf("huge.safetensors");
        var bytes = new byte[64];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue / 2);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains("bad header", e.Message);
    }

    [Fact]
    public void GarbageHeaderIsRejected()
    {
        string path = PathOf("garbage.safetensors");
        byte[] json = Encoding.UTF8.GetBytes("{\"features.0.weight\": [1, 2");
        var bytes = new byte[8 + json.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains("not valid JSON", e.Message);
        Assert.Contains(path, e.Message);
    }

    /// <summary>Writes the small network's tensors with one of them altered (renamed, reshaped or retyped).</summary>
    private string WriteAltered(string fileName, Func<ParameterDescriptor, (string Name, int[] Shape)> alter)
    {
        float[] parameters = Parameters(9);
        var tensors = Network.Parameters.Select(p =>
        {
            var (name, shape) = alter(p);
            int length = shape.Aggregate(1, (a, b) => a * b);
            return new SafeTensorData(name, shape, parameters.AsMemory(p.Offset, Math.Min(length, p.Length)).ToArray().Concat(new float[Math.Max(0, length - p.Length)]).ToArray());
        }).ToList();
        string path = PathOf(fileName);
        SafeTensors.Write(path, tensors);
        return path;
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        string path = WriteAltered("missing.safetensors", p => p.Name == "features.3.bias" ? ("features.3.bias_renamed", p.Shape) : (p.Name, p.Shape));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains("missing tensor 'features.3.bias'", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void ShapeMismatchIsNamedAndParametersAreUntouched()
    {
        string path = WriteAltered("shape.safetensors", p => p.Name == "classifier.1.weight" ? (p.Name, [256, 300]) : (p.Name, p.Shape));
        var parameters = new float[Network.ParameterCount];
        parameters.AsSpan().Fill(42f);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, parameters));
        Assert.Contains("'classifier.1.weight' has shape [256, 300], expected [300, 256]", e.Message);
        Assert.All(parameters, v => Assert.Equal(42f, v)); // validated before anything was read
    }

    [Fact]
    public void WrongDTypeIsNamed()
    {
        string path = PathOf("dtype.safetensors");
        Checkpoint.Save(path, Network, Parameters(10));
        // Same byte length, different dtype name: "F32" -> "I32" for the first tensor only.
        byte[] file = File.ReadAllBytes(path);
        int at = Encoding.ASCII.GetString(file).IndexOf("\"F32\"", StringComparison.Ordinal);
        file[at + 1] = (byte)'I';
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains("dtype I32, expected F32", e.Message);
        Assert.Contains("features.0.weight", e.Message);
    }

    [Fact]
    public void UnexpectedTensorIsRejected()
    {
        string path = PathOf("extra.safetensors");
        float[] parameters = Parameters(11);
        var tensors = Network.Parameters.Select(p => new SafeTensorData(p.Name, p.Shape, parameters.AsMemory(p.Offset, p.Length))).ToList();
        tensors.Add(new SafeTensorData("features.9.weight", [2], new float[2]));
        SafeTensors.Write(path, tensors);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains("unexpected tensor 'features.9.weight'", e.Message);
    }

    [Fact]
    public void OptimizerStateIsRequiredOnlyWhenAsked()
    {
        string path = PathOf("weights-only.safetensors");
        float[] parameters = Parameters(12);
        Checkpoint.Save(path, Network, parameters);
        var loaded = new float[parameters.Length];
        Checkpoint.Load(path, Network, loaded); // fine without an optimizer
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, loaded, new Sgd(parameters.Length, new SgdOptions())));
        Assert.Contains("missing tensor 'optimizer.velocity.features.0.weight'", e.Message);

        // A checkpoint with optimizer state loads into parameters alone too.
        string withState = PathOf("with-state.safetensors");
        Checkpoint.Save(withState, Network, parameters, new Sgd(parameters.Length, new SgdOptions()));
        Checkpoint.Load(withState, Network, loaded);
        Assert.Equal(parameters, loaded);
    }

    [Fact]
    public void OverlappingDataOffsetsAreRejected()
    {
        string path = PathOf("overlap.safetensors");
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        byte[] header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + 12];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.ReadHeader(path));
        Assert.Contains("'b'", e.Message);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void MissingFileIsReported()
    {
        string path = PathOf("nope.safetensors");
        var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.Load(path, Network, new float[Network.ParameterCount]));
        Assert.Contains(path, e.Message);
    }

    [Theory]
    [InlineData(float.NaN, false)]
    [InlineData(float.PositiveInfinity, false)]
    [InlineData(float.NegativeInfinity, true)]
    public void NonFiniteValue_IsRejectedNamingTheTensor_AndNothingIsLoaded(float value, bool inVelocity)
    {
        float[] parameters = Parameters(5);
        var sgd = new Sgd(parameters.Length, new SgdOptions(0.02f));
        sgd.Step(parameters, Parameters(6));
        ParameterDescriptor last = Network.Parameters[^1];
        (inVelocity ? sgd.Velocity : parameters)[last.Offset + 1] = value;
        string path = PathOf("nan.safetensors");
        Checkpoint.Save(path, Network, parameters, sgd);

        float[] loaded = Parameters(7), before = (float[])loaded.Clone();
        var loadedSgd = new Sgd(parameters.Length, new SgdOptions(0.02f));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, Network, loaded, loadedSgd));
        Assert.Contains(path, e.Message);
        Assert.Contains($"'{(inVelocity ? Checkpoint.VelocityPrefix : "") + last.Name}'", e.Message);
        Assert.Contains("non-finite", e.Message);
        Assert.Contains("index 1", e.Message);
        Assert.Equal(before, loaded);
        Assert.All(loadedSgd.Velocity, v => Assert.Equal(0f, v));
    }
}
