using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace AlexNetCompiler.Checkpoints;

/// <summary>One float32 tensor to write: its name, PyTorch shape and data.</summary>
public readonly record struct SafeTensorData(string Name, int[] Shape, ReadOnlyMemory<float> Data);

/// <summary>One tensor entry of a safetensors header: dtype, shape and byte range within the data section.</summary>
public sealed record SafeTensorEntry(string Name, string DType, long[] Shape, long Begin, long End);

/// <summary>
/// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length,
/// a JSON header mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
/// relative to the data section) plus an optional "__metadata__" string map, then the raw little-endian
/// data, contiguous and without holes. Written and read with Utf8JsonWriter/JsonDocument (no reflection,
/// AOT-safe). Writes are atomic: a temporary file is written, flushed to disk and renamed over the target.
/// </summary>
public static class SafeTensors
{
    /// <summary>Headers larger than this are rejected as corrupt (the reference implementation uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public static void Write(string path, IReadOnlyList<SafeTensorData> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; writing from a big-endian machine is not supported.");

        byte[] header = BuildHeader(tensors, metadata);
        string fullPath = Path.GetFullPath(path);
        string temporaryPath = fullPath + ".tmp";
        try
        {
            using (var stream = new FileStream(temporaryPath, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20))
            {
                Span<byte> lengthPrefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(lengthPrefix, (ulong)header.Length);
                stream.Write(lengthPrefix);
                stream.Write(header);
                foreach (SafeTensorData tensor in tensors)
                    stream.Write(MemoryMarshal.AsBytes(tensor.Data.Span));
                stream.Flush(flushToDisk: true); // the data is on disk before the rename makes it visible
            }
            File.Move(temporaryPath, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporaryPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static byte[] BuildHeader(IReadOnlyList<SafeTensorData> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata.OrderBy(pair => pair.Key, StringComparer.Ordinal))
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            var names = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (SafeTensorData tensor in tensors)
            {
                if (string.IsNullOrEmpty(tensor.Name) || tensor.Name == "__metadata__" || !names.Add(tensor.Name))
                    throw new ArgumentException($"safetensors: tensor name '{tensor.Name}' is empty, reserved or repeated.", nameof(tensors));
                long elements = 1;
                foreach (int dimension in tensor.Shape)
                {
                    if (dimension < 0) throw new ArgumentException($"safetensors: tensor '{tensor.Name}' has a negative dimension.", nameof(tensors));
                    elements *= dimension;
                }
                if (elements != tensor.Data.Length)
                    throw new ArgumentException($"safetensors: tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}] but {tensor.Data.Length} values.", nameof(tensors));
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (int dimension in tensor.Shape) json.WriteNumberValue(dimension);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                offset += elements * sizeof(float);
                json.WriteNumberValue(offset);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        // Pad with spaces to a multiple of 8 so the data section is aligned (as the reference writer does).
        int padded = (int)((buffer.Length + 7) & ~7L);
        while (buffer.Length < padded) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    /// <summary>
    /// Reads and validates the header of a safetensors file: length, JSON, every entry's fields, offsets
    /// within the file, and that the data section is covered exactly once. Throws InvalidDataException
    /// naming the file and the problem.
    /// </summary>
    public static SafeTensorHeader ReadHeader(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return ReadHeader(stream, path);
    }

    internal static SafeTensorHeader ReadHeader(FileStream stream, string path)
    {
        long fileLength = stream.Length;
        Span<byte> lengthPrefix = stackalloc byte[8];
        if (fileLength < 8 || stream.ReadAtLeast(lengthPrefix, 8, throwOnEndOfStream: false) < 8)
            throw Invalid(path, $"the file has {fileLength} bytes, fewer than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthPrefix);
        if (headerLength > MaxHeaderBytes || headerLength > (ulong)(fileLength - 8))
            throw Invalid(path, $"bad header: its length {headerLength} exceeds the file ({fileLength} bytes) or the {MaxHeaderBytes}-byte limit");
        byte[] headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);

        var entries = new Dictionary<string, SafeTensorEntry>(StringComparer.Ordinal);
        var order = new List<string>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(headerBytes);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Invalid(path, "bad header: the JSON header is not an object");
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw Invalid(path, "bad header: __metadata__ is not an object");
                    foreach (JsonProperty item in property.Value.EnumerateObject())
                    {
                        if (item.Value.ValueKind != JsonValueKind.String)
                            throw Invalid(path, $"bad header: metadata '{item.Name}' is not a string");
                        metadata[item.Name] = item.Value.GetString()!;
                    }
                    continue;
                }
                entries[property.Name] = ParseEntry(path, property);
                order.Add(property.Name);
            }
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"bad header: not valid JSON ({e.Message})", e);
        }

        // The data section must be covered exactly: sorted by offset, each entry starts where the previous ended.
        long dataLength = fileLength - 8 - (long)headerLength;
        long expectedBegin = 0;
        foreach (SafeTensorEntry entry in entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin != expectedBegin)
                throw Invalid(path, $"tensor '{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] overlap or leave a hole (expected to begin at {expectedBegin})");
            if (entry.End > dataLength)
                throw Invalid(path, $"tensor '{entry.Name}': truncated data: it ends at byte {entry.End} of the data section but the file holds only {dataLength}");
            expectedBegin = entry.End;
        }
        if (expectedBegin != dataLength)
            throw Invalid(path, $"the data section has {dataLength} bytes but the tensors cover {expectedBegin}");

        return new SafeTensorHeader(path, 8 + (long)headerLength, order.Select(name => entries[name]).ToArray(), metadata);
    }

    private static SafeTensorEntry ParseEntry(string path, JsonProperty property)
    {
        JsonElement value = property.Value;
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out JsonElement dtype) || dtype.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out JsonElement shape) || shape.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Invalid(path, $"bad header: tensor '{property.Name}' needs \"dtype\", \"shape\" and two \"data_offsets\"");
        var dimensions = new long[shape.GetArrayLength()];
        long elements = 1;
        int d = 0;
        foreach (JsonElement dimension in shape.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out long size) || size < 0 || size > int.MaxValue)
                throw Invalid(path, $"bad header: tensor '{property.Name}' has an invalid shape");
            dimensions[d++] = size;
            elements = checked(elements * size);
        }
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Invalid(path, $"bad header: tensor '{property.Name}' has invalid data_offsets");
        string dtypeName = dtype.GetString()!;
        int elementBytes = ElementBytes(dtypeName);
        if (elementBytes > 0 && end - begin != elements * elementBytes)
            throw Invalid(path, $"tensor '{property.Name}': data_offsets span {end - begin} bytes but shape [{string.Join(", ", dimensions)}] of {dtypeName} needs {elements * elementBytes}");
        return new SafeTensorEntry(property.Name, dtypeName, dimensions, begin, end);
    }

    private static int ElementBytes(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => 0, // unknown dtypes are allowed in the file; loading one as float32 fails on the dtype check
    };

    /// <summary>Reads one F32 tensor's data into <paramref name="destination"/> (whose length must match).</summary>
    internal static void ReadTensor(FileStream stream, SafeTensorHeader header, SafeTensorEntry entry, Span<float> destination)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; reading on a big-endian machine is not supported.");
        Span<byte> bytes = MemoryMarshal.AsBytes(destination);
        if (bytes.Length != entry.End - entry.Begin)
            throw Invalid(header.Path, $"tensor '{entry.Name}': {entry.End - entry.Begin} bytes in the file, {bytes.Length} expected");
        stream.Position = header.DataStart + entry.Begin;
        stream.ReadExactly(bytes);
    }

    internal static InvalidDataException Invalid(string path, string message, Exception? inner = null) =>
        new($"Checkpoint '{path}': {message}.", inner);
}

/// <summary>A validated safetensors header: where the data starts, the tensors in header order, and the metadata.</summary>
public sealed record SafeTensorHeader(string Path, long DataStart, IReadOnlyList<SafeTensorEntry> Tensors, IReadOnlyDictionary<string, string> Metadata)
{
    public SafeTensorEntry? Find(string name)
    {
        foreach (SafeTensorEntry entry in Tensors)
            if (entry.Name == name) return entry;
        return null;
    }
}
