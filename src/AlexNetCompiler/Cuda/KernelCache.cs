using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace AlexNetCompiler.Cuda;

/// <summary>
/// NVRTC output cached on disk. The key is SHA-256 over the source, its headers, the options, the target architecture and
/// NVRTC's version, so a change to any of them compiles afresh. Each entry carries its key and a SHA-256 of
/// its payload; an entry that is truncated, altered or stored under the wrong name is deleted and rebuilt,
/// never loaded. Writes go to a temporary file that is then renamed, so a crash leaves no torn entry.
/// </summary>
/// <remarks>
/// A cached image is code the GPU runs, so the cache trusts only what this user wrote: the directory is created
/// readable by its owner only (0700 on Unix), entries are written 0600, and an entry that is not a regular file (a
/// symbolic link, a FIFO), is owned by another user, is unreadable or is implausibly large is ignored and compiled
/// afresh (the new entry replaces it where the directory allows). Owners are checked on Linux; on other Unix
/// systems, where that check is not available, nothing is read from the cache. Problems with the cache (permissions,
/// a full or read-only disk) never escape it: they cost a compile, not the run.
/// </remarks>
public sealed class KernelCache
{
    private static ReadOnlySpan<byte> Magic => "ANCKRNL1"u8;
    private const int HeaderBytes = 8 + 32 + 4 + 4 + 4 + 32; // magic, key, kind, image length, log length, checksum

    /// <summary>
    /// Larger entries are not read. A network's module (CUBIN or PTX plus the compile log) takes a few MB; the limit
    /// keeps a stray large file in the cache directory from being read into memory.
    /// </summary>
    internal const long MaxEntryBytes = 256L << 20;

    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public KernelCache(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory = directory;
    }

    public string Directory { get; }

    /// <summary>ALEXNET_KERNEL_CACHE, else $XDG_CACHE_HOME/alexnetcompiler/kernels (~/.cache/... on Linux, LocalAppData on Windows).</summary>
    public static string DefaultDirectory
    {
        get
        {
            string? explicitDir = Environment.GetEnvironmentVariable("ALEXNET_KERNEL_CACHE");
            if (!string.IsNullOrEmpty(explicitDir)) return explicitDir;
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string root = !string.IsNullOrEmpty(xdg) ? xdg
                : OperatingSystem.IsWindows() ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "alexnetcompiler", "kernels");
        }
    }

    /// <summary>The cache key (lower-case hex SHA-256) of one compilation.</summary>
    public static string Key(string source, string architecture, IReadOnlyList<string> options, (int Major, int Minor) nvrtcVersion, IReadOnlyList<CudaHeader>? headers = null)
    {
        var text = new StringBuilder();
        text.Append("nvrtc ").Append(nvrtcVersion.Major).Append('.').Append(nvrtcVersion.Minor).Append('\0');
        text.Append("arch ").Append(architecture).Append('\0');
        foreach (string option in options) text.Append("option ").Append(option).Append('\0');
        foreach (CudaHeader header in headers ?? []) text.Append("header ").Append(header.Name).Append('\0').Append(header.Source).Append('\0');
        text.Append("source\0").Append(source);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    public string PathFor(string key) => Path.Combine(Directory, key + ".nvrtc");

    /// <summary>Returns the cached output when a valid entry exists, else compiles with NVRTC and stores it.</summary>
    public NvrtcOutput GetOrCompile(string source, string programName, string architecture, IReadOnlyList<string> options, out bool hit, IReadOnlyList<CudaHeader>? headers = null)
    {
        string key = Key(source, architecture, options, Nvrtc.Version, headers);
        string path = PathFor(key);
        if (TryRead(path, key, architecture, out NvrtcOutput? cached))
        {
            hit = true;
            return cached!;
        }
        hit = false;
        NvrtcOutput compiled = Nvrtc.Compile(source, programName, architecture, options, headers);
        Write(path, key, compiled);
        return compiled;
    }

    /// <summary>
    /// Reads a valid entry; deletes an invalid one (and returns false). An entry that cannot be trusted or read
    /// returns false and is left for the next write to replace; no I/O or permission error escapes.
    /// </summary>
    internal static bool TryRead(string path, string key, string architecture, out NvrtcOutput? output)
    {
        output = null;
        byte[] data;
        try
        {
            if (!IsTrusted(path)) return false;
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        if (!TryDecode(data, key, architecture, out output))
        {
            TryDelete(path);
            return false;
        }
        return true;
    }

    /// <summary>
    /// True for an existing regular file of plausible size that this process's user owns (on Linux; on Windows the
    /// cache lives in the user's own profile, on other Unix systems owners cannot be checked and nothing is trusted).
    /// </summary>
    private static bool IsTrusted(string path)
    {
        if (UnixFiles.CanCheckOwners)
        {
            UnixFiles.FileFacts? facts = UnixFiles.Describe(path);
            return facts is { IsRegularFile: true } entry && entry.OwnerId == UnixFiles.EffectiveUserId && entry.Length <= MaxEntryBytes;
        }
        if (!OperatingSystem.IsWindows()) return false;
        var info = new FileInfo(path);
        return info.Exists && (info.Attributes & FileAttributes.ReparsePoint) == 0 && info.Length <= MaxEntryBytes;
    }

    private static bool TryDecode(byte[] data, string key, string architecture, out NvrtcOutput? output)
    {
        output = null;
        if (data.Length < HeaderBytes || !data.AsSpan(0, 8).SequenceEqual(Magic)) return false;
        if (!data.AsSpan(8, 32).SequenceEqual(Convert.FromHexString(key))) return false;
        int kind = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(40));
        int imageLength = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(44));
        int logLength = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(48));
        if (kind is not (0 or 1) || imageLength <= 0 || logLength < 0 || (long)HeaderBytes + imageLength + logLength != data.Length) return false;
        ReadOnlySpan<byte> payload = data.AsSpan(HeaderBytes);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(data.AsSpan(52, 32))) return false;
        output = new NvrtcOutput((CudaImageKind)kind, payload[..imageLength].ToArray(), Encoding.UTF8.GetString(payload[imageLength..]), architecture);
        return true;
    }

    /// <summary>Stores an entry (atomically, owner-only); a cache that cannot be written is skipped silently.</summary>
    internal void Write(string path, string key, NvrtcOutput compiled)
    {
        byte[] log = Encoding.UTF8.GetBytes(compiled.Log);
        byte[] data = new byte[HeaderBytes + compiled.Image.Length + log.Length];
        Magic.CopyTo(data);
        Convert.FromHexString(key).CopyTo(data, 8);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(40), (int)compiled.Kind);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(44), compiled.Image.Length);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(48), log.Length);
        compiled.Image.CopyTo(data, HeaderBytes);
        log.CopyTo(data, HeaderBytes + compiled.Image.Length);
        SHA256.HashData(data.AsSpan(HeaderBytes)).CopyTo(data, 52);
        string temp = path + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N") + ".tmp";
        bool created = false;
        try
        {
            CreateDirectory();
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnlyFile;
            using (var stream = new FileStream(temp, options))
            {
                created = true;
                stream.Write(data);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only or full cache only costs a recompile next time; the compiled kernels are still returned.
            if (created) TryDelete(temp);
        }
    }

    /// <summary>
    /// Creates the cache directory readable by its owner only (0700 on Unix); missing parents get the usual mode, as
    /// the directory itself keeps other users out. An existing directory is left as it is (it may be shared on purpose;
    /// entries are then checked one by one).
    /// </summary>
    private void CreateDirectory()
    {
        if (System.IO.Directory.Exists(Directory)) return;
        if (OperatingSystem.IsWindows()) System.IO.Directory.CreateDirectory(Directory);
        else System.IO.Directory.CreateDirectory(Directory, OwnerOnlyDirectory);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
