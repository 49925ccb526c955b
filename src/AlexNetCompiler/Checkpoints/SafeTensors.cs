using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
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
/// AOT-safe). Writes are atomic: a temporary file of a name no other writer uses is written, flushed to disk
/// and renamed over the target. Reading a malformed file throws <see cref="InvalidDataException"/> naming the
/// file and the field, whatever is wrong with it.
/// </summary>
public static class SafeTensors
{
    /// <summary>Headers larger than this are rejected as corrupt (the reference implementation uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// A temporary file whose writer still runs is left alone for this long after its last write. Writing a
    /// checkpoint takes seconds, so an hour without progress means the writer is gone and its process id has
    /// been reused by another process (common in containers, where the same few ids come back on every start).
    /// </summary>
    public static readonly TimeSpan StaleTemporaryFileAge = TimeSpan.FromHours(1);

    /// <summary>Temporary files this process is writing now; <see cref="DeleteStaleTemporaryFiles"/> never touches them.</summary>
    private static readonly ConcurrentDictionary<string, byte> InFlight = new(StringComparer.Ordinal);

    private const string TemporarySuffix = ".tmp";
    private const int TemporaryRandomHexDigits = 16;

    public static void Write(string path, IReadOnlyList<SafeTensorData> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors, metadata, CreateTemporaryFile);

    /// <param name="createTemporaryFile">
    /// Creates the temporary file (which must not exist yet) and opens it for writing; tests pass one whose writes
    /// fail part-way, as on a full disk.
    /// </param>
    internal static void Write(string path, IReadOnlyList<SafeTensorData> tensors, IReadOnlyDictionary<string, string>? metadata,
        Func<string, FileStream> createTemporaryFile)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; writing from a big-endian machine is not supported.");

        byte[] header = BuildHeader(tensors, metadata);
        string fullPath = Path.GetFullPath(path);
        // Unique per writer: two processes (or threads) saving the same checkpoint never share, truncate or
        // delete each other's temporary file.
        string temporaryPath = TemporaryPathFor(fullPath);
        InFlight.TryAdd(temporaryPath, 0);
        bool created = false;
        try
        {
            // CreateNew: this writer owns the file it creates, and only that file is deleted on failure below.
            using (FileStream stream = createTemporaryFile(temporaryPath))
            {
                created = true;
                Span<byte> lengthPrefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(lengthPrefix, (ulong)header.Length);
                stream.Write(lengthPrefix);
                stream.Write(header);
                foreach (SafeTensorData tensor in tensors)
                    stream.Write(MemoryMarshal.AsBytes(tensor.Data.Span));
                stream.Flush(flushToDisk: true); // the data is on disk before the rename makes it visible
            }
            File.Move(temporaryPath, fullPath, overwrite: true);
            created = false; // renamed: nothing of this writer is left to clean up
        }
        catch (Exception e)
        {
            if (created)
            {
                try { File.Delete(temporaryPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
            // A full disk or a failed device names at most the temporary file, which is gone now: name the checkpoint.
            if (e is IOException)
                throw new IOException($"{fullPath}: the checkpoint could not be written ({e.Message.TrimEnd('.')}); the previous file, if any, is unchanged.", e);
            throw;
        }
        finally
        {
            InFlight.TryRemove(temporaryPath, out _);
        }
    }

    private static FileStream CreateTemporaryFile(string path) =>
        new(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);

    /// <summary>"{fullPath}.{process id}.{16 random hex digits}.tmp".</summary>
    private static string TemporaryPathFor(string fullPath) =>
        $"{fullPath}.{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}." +
        $"{RandomNumberGenerator.GetHexString(TemporaryRandomHexDigits, lowercase: true)}{TemporarySuffix}";

    /// <summary>
    /// Deletes the temporary files of <paramref name="path"/> ("{path}.{pid}.{random}.tmp") that writers which
    /// crashed before their rename left behind: those whose writer process no longer runs, and those not written to
    /// for <see cref="StaleTemporaryFileAge"/> (the writer's process id may have been reused). Files this process is
    /// writing now are never touched. Returns the paths deleted; files that cannot be deleted are skipped.
    /// </summary>
    /// <remarks>
    /// "No longer runs" is judged within this machine's process namespace: a writer in another container that shares
    /// the folder but not the process ids looks gone, so callers sharing a checkpoint folder across containers should
    /// not run this while another container may be saving.
    /// </remarks>
    public static IReadOnlyList<string> DeleteStaleTemporaryFiles(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string fullPath = Path.GetFullPath(path);
        string? directory = Path.GetDirectoryName(fullPath);
        string prefix = Path.GetFileName(fullPath) + ".";
        var deleted = new List<string>();
        if (directory is null || prefix.Length == 1 || !Directory.Exists(directory)) return deleted;

        IEnumerable<string> candidates;
        try
        {
            // Filtered by prefix below, not by the search pattern: a file name may hold '*' or '?'.
            candidates = Directory.EnumerateFiles(directory, "*" + TemporarySuffix).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return deleted;
        }
        DateTime staleBefore = DateTime.UtcNow - StaleTemporaryFileAge;
        foreach (string candidate in candidates)
        {
            string name = Path.GetFileName(candidate);
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || !TryParseWriter(name.AsSpan(prefix.Length), out int writer))
                continue;
            if (InFlight.ContainsKey(candidate)) continue;
            try
            {
                // A file of this process's id that it is not writing was left by an earlier process with the same id.
                bool stale = writer == Environment.ProcessId || !IsRunning(writer) || File.GetLastWriteTimeUtc(candidate) < staleBefore;
                if (!stale || InFlight.ContainsKey(candidate)) continue;
                File.Delete(candidate);
                deleted.Add(candidate);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return deleted;
    }

    /// <summary>Parses "{pid}.{16 hex digits}.tmp", the part of a temporary file name after "{target name}.".</summary>
    private static bool TryParseWriter(ReadOnlySpan<char> rest, out int processId)
    {
        processId = 0;
        if (!rest.EndsWith(TemporarySuffix, StringComparison.Ordinal)) return false;
        rest = rest[..^TemporarySuffix.Length];
        int dot = rest.IndexOf('.');
        if (dot <= 0) return false;
        ReadOnlySpan<char> random = rest[(dot + 1)..];
        if (random.Length != TemporaryRandomHexDigits || random.ContainsAnyExcept("0123456789abcdef")) return false;
        return int.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out processId) && processId > 0;
    }

    private static bool IsRunning(int processId)
    {
        try
        {
            using Process process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or NotSupportedException)
        {
            return false;
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
    /// Reads and validates the header of a safetensors file: length, UTF-8 JSON, every entry's fields (dtype,
    /// shape, data_offsets), unique names, string-to-string metadata, offsets within the file, and that the data
    /// section is covered exactly once. Throws InvalidDataException naming the file and the field at fault.
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
            throw Invalid(path, $"header length: the file has {fileLength} bytes, fewer than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthPrefix);
        if (headerLength > MaxHeaderBytes || headerLength > (ulong)(fileLength - 8))
            throw Invalid(path, $"bad header length {headerLength}: it exceeds the file ({fileLength} bytes) or the {MaxHeaderBytes}-byte limit");
        byte[] headerBytes = new byte[headerLength];
        if (stream.ReadAtLeast(headerBytes, headerBytes.Length, throwOnEndOfStream: false) < headerBytes.Length)
            throw Invalid(path, $"header: the file ended before the {headerLength} header bytes");

        var entries = new List<SafeTensorEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        try
        {
            using JsonDocument document = JsonDocument.Parse(headerBytes);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Invalid(path, $"bad header: the JSON header is {Article(document.RootElement.ValueKind)}, not an object");
            string? previous = null;
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                string name = NameOf(path, property, previous is null ? "the first tensor name" : $"the tensor name after '{previous}'");
                previous = name;
                if (name == "__metadata__")
                {
                    if (sawMetadata) throw Invalid(path, "bad header: __metadata__ appears twice");
                    sawMetadata = true;
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                if (!names.Add(name))
                    throw Invalid(path, $"bad header: duplicate tensor name '{name}'");
                entries.Add(ParseEntry(path, name, property.Value));
            }
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"bad header: not valid JSON ({e.Message})", e);
        }

        // The data section must be covered exactly: sorted by offset, each entry starts where the previous ended.
        long dataLength = fileLength - 8 - (long)headerLength;
        long expectedBegin = 0;
        foreach (SafeTensorEntry entry in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (entry.Begin != expectedBegin)
                throw Invalid(path, $"tensor '{entry.Name}': data_offsets [{entry.Begin}, {entry.End}] overlap or leave a hole (expected to begin at {expectedBegin})");
            if (entry.End > dataLength)
                throw Invalid(path, $"tensor '{entry.Name}': truncated data: data_offsets end at byte {entry.End} of the data section but the file holds only {dataLength}");
            expectedBegin = entry.End;
        }
        if (expectedBegin != dataLength)
            throw Invalid(path, $"data section: it has {dataLength} bytes but the tensors' data_offsets cover {expectedBegin}");

        return new SafeTensorHeader(path, 8 + (long)headerLength, entries, metadata);
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"bad header: __metadata__ is {Article(value.ValueKind)}, not an object of strings");
        string? previous = null;
        foreach (JsonProperty item in value.EnumerateObject())
        {
            string key = NameOf(path, item, previous is null ? "the first __metadata__ key" : $"the __metadata__ key after '{previous}'");
            previous = key;
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Invalid(path, $"bad header: __metadata__ '{key}' is {Article(item.Value.ValueKind)}, not a string");
            if (!metadata.TryAdd(key, StringOf(path, item.Value, $"__metadata__ '{key}'")))
                throw Invalid(path, $"bad header: duplicate __metadata__ key '{key}'");
        }
    }

    private static SafeTensorEntry ParseEntry(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Invalid(path, $"bad header: tensor '{name}' is {Article(value.ValueKind)}, not an object with \"dtype\", \"shape\" and \"data_offsets\"");
        // The fields are found by enumerating, not TryGetProperty: that unescapes every name it compares and throws
        // InvalidOperationException on one that is not valid text. Unknown fields are ignored, repeated ones refused.
        JsonElement? dtypeField = null, shapeField = null, offsetsField = null;
        string? previous = null;
        foreach (JsonProperty field in value.EnumerateObject())
        {
            string fieldName = NameOf(path, field, previous is null ? $"the first field name of tensor '{name}'" : $"the field name after '{previous}' in tensor '{name}'");
            previous = fieldName;
            ref JsonElement? slot = ref dtypeField;
            if (fieldName == "shape") slot = ref shapeField;
            else if (fieldName == "data_offsets") slot = ref offsetsField;
            else if (fieldName != "dtype") continue;
            if (slot is not null) throw Invalid(path, $"bad header: tensor '{name}' has \"{fieldName}\" twice");
            slot = field.Value;
        }
        if (dtypeField is not { ValueKind: JsonValueKind.String } dtype)
            throw Invalid(path, $"bad header: tensor '{name}' has no string \"dtype\"");
        if (shapeField is not { ValueKind: JsonValueKind.Array } shape)
            throw Invalid(path, $"bad header: tensor '{name}' has no \"shape\" array");
        if (offsetsField is not { ValueKind: JsonValueKind.Array } offsets || offsets.GetArrayLength() != 2)
            throw Invalid(path, $"bad header: tensor '{name}' needs \"data_offsets\" of two integers");

        string dtypeName = StringOf(path, dtype, $"tensor '{name}': dtype");
        int elementBits = ElementBits(dtypeName);
        if (elementBits == 0)
            throw Invalid(path, $"bad header: tensor '{name}' has unknown dtype '{dtypeName}'");

        var dimensions = new long[shape.GetArrayLength()];
        int d = 0;
        foreach (JsonElement dimension in shape.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out long size) || size < 0 || size > int.MaxValue)
                throw Invalid(path, $"bad header: tensor '{name}' has an invalid shape: dimension {d} is not an integer in [0, {int.MaxValue}]");
            dimensions[d++] = size;
        }
        long begin = Offset(path, name, offsets[0], "begin");
        long end = Offset(path, name, offsets[1], "end");
        if (end < begin)
            throw Invalid(path, $"bad header: tensor '{name}' has data_offsets [{begin}, {end}] that end before they begin");

        // Checked 64-bit arithmetic: a shape such as [2147483647, 2147483647, 2147483647] overflows a long.
        long elements = 1, bits;
        try
        {
            foreach (long size in dimensions) elements = checked(elements * size);
            bits = checked(elements * elementBits);
        }
        catch (OverflowException)
        {
            throw Invalid(path, $"bad header: tensor '{name}' has shape [{string.Join(", ", dimensions)}] of more elements than 64-bit arithmetic holds");
        }
        if (bits % 8 != 0 || end - begin != bits / 8)
        {
            string needs = bits % 8 == 0 ? $"{bits / 8} bytes" : $"{bits} bits, not a whole number of bytes";
            throw Invalid(path, $"tensor '{name}': data_offsets span {end - begin} bytes but shape [{string.Join(", ", dimensions)}] of {dtypeName} needs {needs}");
        }
        return new SafeTensorEntry(name, dtypeName, dimensions, begin, end);
    }

    private static long Offset(string path, string name, JsonElement value, string which)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long offset) || offset < 0)
            throw Invalid(path, $"bad header: tensor '{name}' has an invalid data_offsets {which}: {Article(value.ValueKind)}, not a non-negative integer");
        return offset;
    }

    /// <summary>A property name, or InvalidDataException when it is not valid UTF-8 (or escapes a lone surrogate).</summary>
    private static string NameOf(string path, JsonProperty property, string what)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException e)
        {
            throw Invalid(path, $"bad header: {what} is not valid UTF-8 text ({e.Message})", e);
        }
    }

    /// <summary>A string value, or InvalidDataException when it is not valid UTF-8 (or escapes a lone surrogate).</summary>
    private static string StringOf(string path, JsonElement value, string what)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw Invalid(path, $"bad header: {what} is not valid UTF-8 text ({e.Message})", e);
        }
    }

    private static string Article(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    /// <summary>
    /// Bits per element of every dtype the safetensors specification lists; 0 for anything else. Unknown dtypes are
    /// rejected (as the reference implementation does): their size is unknown, so their offsets cannot be checked.
    /// </summary>
    private static int ElementBits(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" or "C64" => 64,
        "F32" or "I32" or "U32" => 32,
        "F16" or "BF16" or "I16" or "U16" => 16,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" or "F8_E8M0" => 8,
        "F6_E2M3" or "F6_E3M2" => 6,
        "F4" => 4,
        _ => 0,
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
        // The header was checked against the file's length; a shorter read means the file shrank since.
        if (stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false) < bytes.Length)
            throw Invalid(header.Path, $"tensor '{entry.Name}': truncated data: the file ended inside its data_offsets [{entry.Begin}, {entry.End}]");
    }

    /// <summary>
    /// The index of the first NaN or infinity in an F32 tensor's data, or -1. Reads the file in blocks, so that a
    /// caller can reject a tensor before copying any of it.
    /// </summary>
    internal static long FirstNonFinite(FileStream stream, SafeTensorHeader header, SafeTensorEntry entry)
    {
        const int BlockFloats = 1 << 18;
        float[] block = ArrayPool<float>.Shared.Rent(BlockFloats);
        try
        {
            stream.Position = header.DataStart + entry.Begin;
            long count = (entry.End - entry.Begin) / sizeof(float);
            for (long done = 0; done < count;)
            {
                Span<float> part = block.AsSpan(0, (int)Math.Min(BlockFloats, count - done));
                if (stream.ReadAtLeast(MemoryMarshal.AsBytes(part), part.Length * sizeof(float), throwOnEndOfStream: false) < part.Length * sizeof(float))
                    throw Invalid(header.Path, $"tensor '{entry.Name}': truncated data: the file ended inside its data_offsets [{entry.Begin}, {entry.End}]");
                for (int i = 0; i < part.Length; i++)
                    if (!float.IsFinite(part[i])) return done + i;
                done += part.Length;
            }
            return -1;
        }
        finally
        {
            ArrayPool<float>.Shared.Return(block);
        }
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
