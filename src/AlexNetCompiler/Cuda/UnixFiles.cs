using System.Runtime.InteropServices;

namespace AlexNetCompiler.Cuda;

/// <summary>
/// Who owns a file, which .NET does not tell. On Linux through statx(2) (glibc 2.28+, musl 1.2.5+): unlike
/// struct stat, struct statx has the same layout on every architecture, so one declaration fits all.
/// </summary>
internal static unsafe partial class UnixFiles
{
    static UnixFiles() => NativeLibraries.EnsureRegistered();

    /// <summary>What <see cref="Describe"/> learns about a path (the path itself: a symbolic link is not followed).</summary>
    internal readonly record struct FileFacts(bool IsRegularFile, uint OwnerId, long Length);

    // statx(2): flags, mask bits, and the offsets of the fields read from struct statx (<linux/stat.h>).
    private const int AtCurrentDirectory = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1, StatxMode = 0x2, StatxUid = 0x8, StatxSize = 0x200;
    private const int StatxBufferBytes = 256;
    private const int MaskOffset = 0, UidOffset = 20, ModeOffset = 28, SizeOffset = 40;
    private const int FileTypeMask = 0xF000, RegularFileType = 0x8000;
    private const int NoSuchFile = 2, NotADirectory = 20; // ENOENT, ENOTDIR

    [LibraryImport(NativeLibraries.Libc, EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    [LibraryImport(NativeLibraries.Libc, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int directoryFd, string path, int flags, uint mask, byte* buffer);

    /// <summary>True where <see cref="Describe"/> and <see cref="EffectiveUserId"/> work (Linux).</summary>
    internal static bool CanCheckOwners => OperatingSystem.IsLinux();

    /// <summary>The user this process acts as (file ownership is checked against it).</summary>
    internal static uint EffectiveUserId => GetEffectiveUserId();

    /// <summary>
    /// Type, owner and length of <paramref name="path"/>, not following a symbolic link; null when nothing is there.
    /// Throws IOException when the path cannot be examined (no statx in this C library, a permission error).
    /// </summary>
    internal static FileFacts? Describe(string path)
    {
        if (!CanCheckOwners) throw new PlatformNotSupportedException("File owners are read through statx(2), which only Linux has.");
        byte* buffer = stackalloc byte[StatxBufferBytes];
        int result;
        try
        {
            result = Statx(AtCurrentDirectory, path, AtSymlinkNoFollow, StatxType | StatxMode | StatxUid | StatxSize, buffer);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new IOException("This C library has no statx (glibc 2.28 or later has it), so file owners cannot be checked.", e);
        }
        if (result != 0)
        {
            int error = Marshal.GetLastPInvokeError();
            if (error is NoSuchFile or NotADirectory) return null;
            throw new IOException($"statx failed on '{path}' (errno {error}).");
        }
        var fields = new ReadOnlySpan<byte>(buffer, StatxBufferBytes);
        uint returned = MemoryMarshal.Read<uint>(fields[MaskOffset..]); // native byte order, as the kernel wrote it
        const uint needed = StatxType | StatxMode | StatxUid | StatxSize;
        if ((returned & needed) != needed)
            throw new IOException($"statx did not report the type, owner and size of '{path}'.");
        int mode = MemoryMarshal.Read<ushort>(fields[ModeOffset..]);
        uint owner = MemoryMarshal.Read<uint>(fields[UidOffset..]);
        long length = (long)MemoryMarshal.Read<ulong>(fields[SizeOffset..]);
        return new FileFacts((mode & FileTypeMask) == RegularFileType, owner, length);
    }
}
