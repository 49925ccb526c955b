using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;
using System.Text;

namespace AlexNetCompiler.Data;

/// <summary>
/// Decodes one image file to the stored square: RGB, the shorter side resized to <c>side</c> and the centre
/// <c>side x side</c> kept (Krizhevsky et al. 2012, section 2: "rescaled the image such that the shorter side was of
/// length 256, and then cropped out the central 256x256 patch"; <see cref="ImageGeometry"/> gives the sizes). The
/// runtime does not decode images itself, so that it stays free of native libraries; the main job supplies a
/// SkiaSharp decoder.
/// </summary>
public interface IImageDecoder
{
    /// <summary>Names the decoder and its resampling; part of the cache key, so a change of either rebuilds the cache.</summary>
    string Identity { get; }

    /// <summary>
    /// Writes the image as uint8 CHW (3 x side x side) into <paramref name="destination"/>. Throws (an
    /// <see cref="InvalidDataException"/> naming the file) for a file it cannot read or decode.
    /// </summary>
    void DecodeSquare(string path, int side, Span<byte> destination);
}

/// <summary>The sizes of the resize-then-centre-crop every decoder applies.</summary>
public static class ImageGeometry
{
    /// <summary>The size after scaling the shorter side to <paramref name="side"/> and the longer one by the same factor (rounded, at least side).</summary>
    public static (int Width, int Height) ShorterSideTo(int width, int height, int side)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"Image size {width}x{height} must be positive.");
        if (width <= height) return (side, Math.Max(side, (int)Math.Round((double)height * side / width)));
        return (Math.Max(side, (int)Math.Round((double)width * side / height)), side);
    }

    /// <summary>The top-left corner of the centred side x side square in a width x height image.</summary>
    public static (int Left, int Top) CentreSquare(int width, int height, int side) => ((width - side) / 2, (height - side) / 2);
}

/// <summary>
/// The decoded images of an <see cref="ImageFolder"/> in one file on disk: uint8 CHW squares of Side x Side,
/// memory-mapped, so that an epoch reads pixels instead of decoding JPEGs, and the operating system's page cache,
/// not the process, holds what fits in memory.
///
/// Built once per folder and size, rebuilt when the folder changes: the file records the SHA-256 of a manifest
/// (every file's relative path, class, length and modification time, the side and the decoder's identity), and a
/// cache whose manifest differs, or whose header, length or labels are wrong, is rebuilt. The build writes a
/// temporary file beside the cache and renames it over the old one, so a reader never sees half a cache.
///
/// Layout (little-endian): a <see cref="HeaderBytes"/>-byte header (magic, version, side, slot count, manifest hash,
/// table offset and length); one slot of 3 x Side x Side bytes per file of the folder, in its order; then the table:
/// an int32 label per slot (-1: the file could not be decoded) and, for those, UTF-8 lines "slot TAB reason".
/// </summary>
public sealed unsafe class ImageCache : IDisposable
{
    public const int Channels = 3;
    public const int HeaderBytes = 4096;
    private const int Version = 1;
    private static ReadOnlySpan<byte> Magic => "ANCIMGC1"u8;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly int[] _slots;
    private readonly int[] _labels;
    private bool _disposed;

    private ImageCache(FileStream stream, long length, string path, ImageFolder folder, int side, int[] slots, int[] labels, IReadOnlyList<SkippedImage> skipped, bool built)
    {
        Path = path;
        FolderRoot = folder.Root;
        ClassNames = folder.ClassNames;
        Side = side;
        _slots = slots;
        _labels = labels;
        Skipped = skipped;
        WasBuilt = built;
        // The stream whose header and table were checked is the one mapped, at the length they describe, so that a file
        // replaced or truncated by another process in between is not mapped unchecked.
        _map = MemoryMappedFile.CreateFromFile(stream, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        _view = _map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _base = pointer + _view.PointerOffset;
    }

    /// <summary>The cache file.</summary>
    public string Path { get; }
    /// <summary>The image folder it was built from (full path).</summary>
    public string FolderRoot { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int Side { get; }
    public int SampleBytes => Channels * Side * Side;
    /// <summary>Readable images (the folder's files less the skipped ones).</summary>
    public int Count => _slots.Length;
    /// <summary>Files that could not be decoded, with the reason; they have no image here.</summary>
    public IReadOnlyList<SkippedImage> Skipped { get; }
    /// <summary>True when this call decoded the folder; false when an existing cache was reused.</summary>
    public bool WasBuilt { get; }

    public int Label(int index) => _labels[index];

    /// <summary>Image <paramref name="index"/>: uint8 CHW, RGB, Side x Side.</summary>
    public ReadOnlySpan<byte> Pixels(int index)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)index >= (uint)_slots.Length) throw new ArgumentOutOfRangeException(nameof(index), $"Image {index} is outside the {Count} images of {Path}.");
        return new ReadOnlySpan<byte>(_base + HeaderBytes + (long)_slots[index] * SampleBytes, SampleBytes);
    }

    /// <summary>
    /// The cache of <paramref name="folder"/> at <paramref name="side"/> in <paramref name="cacheFolder"/>: reused when it
    /// matches the folder, built (decoding every image on <paramref name="threads"/> threads) otherwise.
    /// <paramref name="log"/> hears why a cache is rebuilt and each file that is skipped.
    /// </summary>
    public static ImageCache Open(ImageFolder folder, int side, string cacheFolder, IImageDecoder decoder, int threads = 0, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(decoder);
        if (side < 1 || side > 4096) throw new ArgumentException($"Image side {side}: must be in [1, 4096].");
        if (threads < 0) throw new ArgumentException($"Decoding threads {threads}: must be >= 0 (0 = every processor).");
        try
        {
            Directory.CreateDirectory(cacheFolder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{cacheFolder}: cannot create the image cache folder: {e.Message}", e);
        }
        byte[] manifest = ManifestHash(folder, side, decoder);
        string path = System.IO.Path.Combine(cacheFolder, FileName(folder, side));
        DeleteAbandonedTemporaries(path);
        if (File.Exists(path))
        {
            string? problem = TryOpenChecked(path, folder, side, manifest, built: false, out ImageCache? cache);
            if (problem is null) return cache!;
            log?.Invoke($"{path}: rebuilding the image cache: {problem}.");
        }
        List<SkippedImage> newlySkipped = Build(path, folder, side, decoder, manifest, threads == 0 ? Environment.ProcessorCount : threads);
        // Reasons are logged here, in slot order, not from the decoding threads (a log need not be thread-safe).
        foreach (SkippedImage skip in newlySkipped) log?.Invoke($"{skip.Path}: skipped: {skip.Reason}");
        string? damaged = TryOpenChecked(path, folder, side, manifest, built: true, out ImageCache? built);
        return built ?? throw new InvalidDataException($"{path}: the image cache just written does not check: {damaged}.");
    }

    /// <summary>
    /// The temporary file of a build is named <c>cache.PID.GUID.tmp</c>. One whose process is no longer running was
    /// left by an interrupted build and is deleted; one of a running process (this one included) may be in use.
    /// </summary>
    private static void DeleteAbandonedTemporaries(string path)
    {
        string? folder = System.IO.Path.GetDirectoryName(path);
        if (folder is null) return;
        string prefix = System.IO.Path.GetFileName(path) + ".";
        foreach (string temporary in Directory.EnumerateFiles(folder, prefix + "*.tmp"))
        {
            string[] parts = System.IO.Path.GetFileName(temporary)[prefix.Length..].Split('.');
            if (parts.Length != 3 || !int.TryParse(parts[0], out int pid) || IsRunning(pid)) continue;
            TryDelete(temporary);
        }
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; } // no such process
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Opens, checks and maps the cache file through one stream; returns why it cannot be used, or null.</summary>
    private static string? TryOpenChecked(string path, ImageFolder folder, int side, byte[] manifest, bool built, out ImageCache? cache)
    {
        cache = null;
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"it could not be read ({e.Message})";
        }
        try
        {
            string? problem = TryReadTable(stream, folder, side, manifest, out int[]? slotLabels, out List<SkippedImage>? skipped);
            if (problem is not null)
            {
                stream.Dispose();
                return problem;
            }
            cache = Create(stream, path, folder, side, slotLabels!, skipped!, built);
            return null;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The file name of a folder's cache: the folder's name, a hash of its full path (two folders of one name differ) and the side.</summary>
    public static string FileName(ImageFolder folder, int side)
    {
        string name = new(System.IO.Path.GetFileName(folder.Root.TrimEnd(System.IO.Path.DirectorySeparatorChar)).Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
        string pathHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(folder.Root))).Substring(0, 12);
        return $"{name}-{pathHash}-{side}.imagecache";
    }

    private static ImageCache Create(FileStream stream, string path, ImageFolder folder, int side, int[] slotLabels, List<SkippedImage> skipped, bool built)
    {
        var slots = new List<int>(slotLabels.Length);
        var labels = new List<int>(slotLabels.Length);
        for (int s = 0; s < slotLabels.Length; s++)
        {
            if (slotLabels[s] < 0) continue;
            slots.Add(s);
            labels.Add(slotLabels[s]);
        }
        var perClass = new int[folder.ClassNames.Count];
        foreach (int label in labels) perClass[label]++;
        for (int c = 0; c < perClass.Length; c++)
            if (perClass[c] == 0)
                throw new InvalidDataException(
                    $"{System.IO.Path.Combine(folder.Root, folder.ClassNames[c])}: none of the class's images could be decoded (see the skipped files above).");
        return new ImageCache(stream, stream.Length, path, folder, side, slots.ToArray(), labels.ToArray(), skipped, built);
    }

    private static byte[] ManifestHash(ImageFolder folder, int side, IImageDecoder decoder)
    {
        var text = new StringBuilder();
        text.Append("version ").Append(Version).Append('\n');
        text.Append("side ").Append(side).Append('\n');
        text.Append("decoder ").Append(decoder.Identity).Append('\n');
        foreach (string name in folder.ClassNames) text.Append("class ").Append(name).Append('\n');
        foreach (ImageFile file in folder.Files)
            text.Append(file.RelativePath).Append('\t').Append(file.Label).Append('\t').Append(file.Length).Append('\t').Append(file.LastWriteTicks).Append('\n');
        return SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>Reads and checks an existing cache's header and table; returns why it cannot be used, or null.</summary>
    private static string? TryReadTable(FileStream stream, ImageFolder folder, int side, byte[] manifest, out int[]? slotLabels, out List<SkippedImage>? skipped)
    {
        slotLabels = null;
        skipped = null;
        try
        {
            if (stream.Length < HeaderBytes) return $"the file has {stream.Length} bytes, less than its {HeaderBytes}-byte header";
            var header = new byte[HeaderBytes];
            stream.ReadExactly(header);
            if (!header.AsSpan(0, 8).SequenceEqual(Magic)) return "not an image cache (wrong magic bytes)";
            int version = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(8));
            if (version != Version) return $"cache version {version}, this program writes {Version}";
            int storedSide = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(12));
            int slots = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(16));
            if (!header.AsSpan(20, 32).SequenceEqual(manifest)) return "the folder's files, the image size or the decoder changed since it was built";
            long tableOffset = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(52));
            long tableLength = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(60));
            long sampleBytes = (long)Channels * side * side;
            if (storedSide != side || slots != folder.Files.Count) return $"its header says {slots} images of {storedSide}x{storedSide}";
            if (tableOffset != HeaderBytes + slots * sampleBytes || tableLength < 4L * slots || tableLength > int.MaxValue || stream.Length != tableOffset + tableLength)
                return $"the file has {stream.Length} bytes, not what its header describes (truncated or damaged)";
            stream.Position = tableOffset;
            var table = new byte[tableLength];
            stream.ReadExactly(table);
            var labels = new int[slots];
            for (int s = 0; s < slots; s++)
            {
                labels[s] = BinaryPrimitives.ReadInt32LittleEndian(table.AsSpan(4 * s));
                if (labels[s] != -1 && labels[s] != folder.Files[s].Label) return $"the label of image {s} is {labels[s]}, not its folder's {folder.Files[s].Label} (damaged)";
            }
            var reasons = new List<SkippedImage>();
            string text = Encoding.UTF8.GetString(table, 4 * slots, table.Length - 4 * slots);
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int tab = line.IndexOf('\t');
                if (tab < 0 || !int.TryParse(line.AsSpan(0, tab), out int slot) || (uint)slot >= (uint)slots || labels[slot] != -1)
                    return "its list of skipped images is damaged";
                reasons.Add(new SkippedImage(folder.FullPath(folder.Files[slot]), line[(tab + 1)..]));
            }
            if (reasons.Count != labels.Count(l => l == -1)) return "its list of skipped images is damaged";
            slotLabels = labels;
            skipped = reasons;
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"it could not be read ({e.Message})";
        }
    }

    private static List<SkippedImage> Build(string path, ImageFolder folder, int side, IImageDecoder decoder, byte[] manifest, int threads)
    {
        int slots = folder.Files.Count;
        long sampleBytes = (long)Channels * side * side;
        long tableOffset = HeaderBytes + slots * sampleBytes;
        var labels = new int[slots];
        var reasons = new string?[slots];
        string temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None))
            {
                stream.SetLength(tableOffset);
                Microsoft.Win32.SafeHandles.SafeFileHandle handle = stream.SafeFileHandle;
                // Each worker holds one decoded square at a time; positional writes need no lock.
                Parallel.For(0, slots, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => new byte[sampleBytes], (s, _, buffer) =>
                {
                    ImageFile file = folder.Files[s];
                    string filePath = folder.FullPath(file);
                    try
                    {
                        decoder.DecodeSquare(filePath, side, buffer);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // A file that cannot be opened now (permissions, a share gone) may open later: not a
                        // permanent skip recorded in the cache, but the end of this build.
                        throw new UnreadableImageException($"{filePath}: cannot read the image: {e.Message}", e);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        labels[s] = -1;
                        // One line, without the path a decoder's message may start with (the report names it once).
                        string message = string.Join(" ", e.Message.Split('\n', '\r', '\t'));
                        reasons[s] = message.StartsWith(filePath + ": ", StringComparison.Ordinal) ? message[(filePath.Length + 2)..] : message;
                        return buffer;
                    }
                    // Outside the catch: a failed write (a full disk) ends the build instead of skipping the image.
                    RandomAccess.Write(handle, buffer, HeaderBytes + s * sampleBytes);
                    labels[s] = file.Label;
                    return buffer;
                }, _ => { });

                var table = new MemoryStream();
                var entry = new byte[4];
                foreach (int label in labels)
                {
                    BinaryPrimitives.WriteInt32LittleEndian(entry, label);
                    table.Write(entry);
                }
                for (int s = 0; s < slots; s++)
                    if (reasons[s] is { } reason) table.Write(Encoding.UTF8.GetBytes($"{s}\t{reason}\n"));
                stream.Position = tableOffset;
                table.Position = 0;
                table.CopyTo(stream);

                var header = new byte[HeaderBytes];
                Magic.CopyTo(header);
                BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), Version);
                BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(12), side);
                BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), slots);
                manifest.CopyTo(header.AsSpan(20));
                BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(52), tableOffset);
                BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(60), table.Length);
                stream.Position = 0;
                stream.Write(header);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e)
        {
            TryDelete(temporary);
            // Parallel.For wraps a worker's exception.
            Exception inner = e is AggregateException aggregate ? aggregate.Flatten().InnerExceptions[0] : e;
            if (inner is UnreadableImageException) throw new IOException(inner.Message, inner.InnerException);
            if (inner is IOException or UnauthorizedAccessException) throw new IOException($"{path}: cannot write the image cache: {inner.Message}", inner);
            throw;
        }
        var skipped = new List<SkippedImage>();
        for (int s = 0; s < slots; s++)
            if (reasons[s] is { } reason) skipped.Add(new SkippedImage(folder.FullPath(folder.Files[s]), reason));
        return skipped;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}

/// <summary>An image that could not be opened (not: decoded); ends a cache build.</summary>
internal sealed class UnreadableImageException(string message, Exception inner) : IOException(message, inner);

/// <summary>An image file left out because it could not be decoded, and why.</summary>
public sealed record SkippedImage(string Path, string Reason);
