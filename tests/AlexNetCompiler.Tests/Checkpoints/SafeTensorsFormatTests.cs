using System.Buffers.Binary;
using System.Text;
using AlexNetCompiler.Checkpoints;

namespace AlexNetCompiler.Tests.Checkpoints;

/// <summary>
/// Malformed headers, one field at a time: each gives an InvalidDataException that names the file and the field,
/// never another exception type (the JSON reader's InvalidOperationException, OverflowException...).
/// </summary>
public sealed class SafeTensorsFormatTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("anc-safetensors-format-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Writes 8-byte length + header bytes + dataBytes zero bytes.</summary>
    private string WriteFile(byte[] header, int dataBytes)
    {
        string path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".safetensors");
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string WriteFile(string header, int dataBytes) => WriteFile(Encoding.UTF8.GetBytes(header), dataBytes);

    private static void AssertRejected(string path, params string[] fragments)
    {
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.ReadHeader(path));
        Assert.Contains(path, e.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, e.Message);
        // Checkpoint.Load goes through the same header reader.
        var network = TestNetworks.Create("Tiny", ("a", [2], ParameterRole.Bias, 1, 0f));
        Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, network, new float[network.ParameterCount]));
    }

    private const string A = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    [Theory]
    // data_offsets of the wrong JSON type, negative, reversed, outside the file, overlapping
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", 8, "'a'", "data_offsets begin", "a string")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8, "'a'", "data_offsets end")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,null]}}", 8, "'a'", "data_offsets end", "null")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "'a'", "data_offsets begin")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'a'", "data_offsets [8, 0]")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 8, "'a'", "data_offsets")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[9223372036854775800,9223372036854775808]}}", 8, "'a'", "data_offsets end")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "'a'", "data_offsets [4, 12]", "hole")]
    [InlineData("{" + A + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "'b'", "overlap")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "'a'", "truncated")]
    [InlineData("{" + A + "}", 9, "data section", "9 bytes")]
    // shapes: overflow of the element count, fractions, negative and oversized dimensions, the wrong size
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8, "'a'", "shape", "64-bit")]
    [InlineData("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2],\"data_offsets\":[0,8]}}", 8, "'a'", "shape", "64-bit")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,8]}}", 8, "'a'", "shape")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'a'", "shape")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,8]}}", 8, "'a'", "shape")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, "'a'", "shape")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "'a'", "shape")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'a'", "needs 12 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, "'a'", "not a whole number of bytes")]
    // dtypes
    [InlineData("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "unknown dtype 'Q7'")]
    [InlineData("{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "dtype")]
    [InlineData("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a'", "dtype")]
    // the header and its entries of the wrong JSON type; duplicate names
    [InlineData("[1, 2]", 0, "bad header", "an array, not an object")]
    [InlineData("\"text\"", 0, "bad header", "a string, not an object")]
    [InlineData("{\"a\":[0,8]}", 8, "'a'", "an array, not an object")]
    [InlineData("{" + A + "," + A + "}", 8, "duplicate tensor name 'a'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, "not valid JSON")]
    // metadata that is not a map of strings to strings
    [InlineData("{\"__metadata__\":[\"x\"]," + A + "}", 8, "__metadata__", "an array")]
    [InlineData("{\"__metadata__\":{\"epoch\":3}," + A + "}", 8, "__metadata__ 'epoch'", "a number, not a string")]
    [InlineData("{\"__metadata__\":{\"epoch\":{\"x\":\"y\"}}," + A + "}", 8, "__metadata__ 'epoch'", "an object")]
    [InlineData("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," + A + "}", 8, "duplicate __metadata__ key 'k'")]
    [InlineData("{\"__metadata__\":{},\"__metadata__\":{}," + A + "}", 8, "__metadata__ appears twice")]
    // escapes that do not decode to text: a lone surrogate in a name, a metadata value and a dtype
    [InlineData("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "the first tensor name", "UTF-8")]
    [InlineData("{" + A + ",\"\\udc00b\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "the tensor name after 'a'", "UTF-8")]
    [InlineData("{\"__metadata__\":{\"k\":\"\\udfff\"}," + A + "}", 8, "__metadata__ 'k'", "UTF-8")]
    [InlineData("{\"__metadata__\":{\"\\ud83d\":\"v\"}," + A + "}", 8, "__metadata__ key", "UTF-8")]
    [InlineData("{\"a\":{\"dtype\":\"F\\ud800\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a': dtype", "UTF-8")]
    [InlineData("{\"a\":{\"\\ud800\":1,\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "the first field name of tensor 'a'", "UTF-8")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"x\":0,\"\\udc00\":1,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "the field name after 'x' in tensor 'a'")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'a' has \"dtype\" twice")]
    public void MalformedHeaderNamesTheFileAndTheField(string header, int dataBytes, params string[] fragments) =>
        AssertRejected(WriteFile(header, dataBytes), fragments);

    [Fact]
    public void InvalidUtf8InATensorNameIsNamed()
    {
        byte[] header = [.. "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b"u8, 0xff, 0xfe,
            .. "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}"u8];
        AssertRejected(WriteFile(header, 8), "the tensor name after 'a'", "UTF-8");
    }

    [Fact]
    public void InvalidUtf8InAMetadataValueIsNamed()
    {
        byte[] header = [.. "{\"__metadata__\":{\"note\":\"caf"u8, 0xc3, .. "\"},"u8, .. Encoding.UTF8.GetBytes(A), .. "}"u8];
        AssertRejected(WriteFile(header, 8), "__metadata__ 'note'", "UTF-8");
    }

    [Fact]
    public void InvalidUtf8OutsideStringsIsInvalidJson()
    {
        byte[] header = [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("{" + A + "}")]; // a byte-order mark
        AssertRejected(WriteFile(header, 8), "not valid JSON");
    }

    [Fact]
    public void HeaderLengthBeyondTheLimitOrTheFileIsNamed()
    {
        foreach (ulong length in new[] { ulong.MaxValue, (ulong)long.MaxValue + 1, (ulong)SafeTensors.MaxHeaderBytes + 1, 100UL })
        {
            string path = Path.Combine(_directory, $"length-{length}.safetensors");
            var bytes = new byte[64];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
            File.WriteAllBytes(path, bytes);
            AssertRejected(path, "header length");
        }
    }

    [Fact]
    public void EveryKnownDtypeIsSizedAndAcceptedByTheHeaderReader()
    {
        // Loading as float32 is refused later (by the dtype check); the header itself is valid.
        string path = WriteFile("{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}," +
            "\"b\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[6,8]},\"c\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[8,16]}}", 16);
        SafeTensorHeader header = SafeTensors.ReadHeader(path);
        Assert.Equal(["BF16", "F4", "C64"], header.Tensors.Select(t => t.DType));
        var network = TestNetworks.Create("Tiny", ("a", [3], ParameterRole.Bias, 1, 0f));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path, network, new float[3]));
        Assert.Contains("tensor 'a' has dtype BF16, expected F32", e.Message);
    }
}
