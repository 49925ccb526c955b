using AlexNetCompiler.Checkpoints;

namespace FashionMnist.App;

/// <summary>
/// Decides which folder a fresh train run writes to, so that a new run never overwrites an earlier one, and
/// which files are a run's (the ones --force deletes).
/// </summary>
public static class RunFolder
{
    public const string StaleBestSuffix = ".stale";

    /// <summary>Files whose presence means the folder holds a run.</summary>
    public static readonly IReadOnlyList<string> RunMarkers =
        [Trainer.LastCheckpointName, Trainer.BestCheckpointName, MetricsLog.CsvName, MetricsLog.JsonName];

    /// <summary>Every file a run writes; other files in the folder are the user's and are left alone.</summary>
    public static readonly IReadOnlyList<string> RunFiles =
        [.. RunMarkers, Trainer.BestCheckpointName + StaleBestSuffix, Plots.LossName, Plots.AccuracyName, Plots.ConfusionName, Plots.FiltersName];

    public static bool HoldsRun(string folder) => RunMarkers.Any(name => File.Exists(Path.Combine(folder, name)));

    /// <summary>
    /// The folder a fresh (not resumed) run uses. A default folder that holds a run gives way to the next free
    /// "FOLDER-2", "FOLDER-3", ...; a folder the user named that holds a run is refused unless <paramref name="force"/>.
    /// </summary>
    /// <param name="notice">One line for the user when the folder is not the one asked for, else null.</param>
    public static string ForFreshRun(string folder, bool outputGiven, bool force, out string? notice)
    {
        notice = null;
        if (!HoldsRun(folder)) return folder;
        if (outputGiven)
        {
            if (force) return folder;
            throw new IOException($"{folder} already holds a run; continue it with --resume, or start over in it with --force (deletes its checkpoints, logs and plots).");
        }
        string trimmed = Path.TrimEndingDirectorySeparator(folder);
        for (int number = 2; ; number++)
        {
            string candidate = $"{trimmed}-{number}";
            if (!HoldsRun(candidate))
            {
                notice = $"{folder} already holds a run; writing this one to {candidate} (--output chooses the folder, --resume continues the earlier run).";
                return candidate;
            }
        }
    }

    /// <summary>Deletes the files a run writes (and checkpoint temporaries of crashed writers) for --force.</summary>
    public static void DeleteRunFiles(string folder)
    {
        foreach (string name in RunFiles)
        {
            string path = Path.Combine(folder, name);
            File.Delete(path);
        }
        SafeTensors.DeleteStaleTemporaryFiles(Path.Combine(folder, Trainer.LastCheckpointName));
        SafeTensors.DeleteStaleTemporaryFiles(Path.Combine(folder, Trainer.BestCheckpointName));
    }
}

/// <summary>
/// Holds a run folder for one run: ".lock" in the folder, open with FileShare.None (an advisory flock on Linux,
/// released by the kernel even when the process is killed), holding the owner's process id as text.
/// </summary>
public sealed class RunFolderLock : IDisposable
{
    public const string FileName = ".lock";

    private const int MaxLockAttempts = 10;

    private readonly FileStream _stream;
    private readonly string _folder;
    private readonly bool _createdFolder;

    private RunFolderLock(FileStream stream, string folder, bool createdFolder)
    {
        _stream = stream;
        _folder = folder;
        _createdFolder = createdFolder;
    }

    public string Path => _stream.Name;

    /// <summary>Creates the folder if needed and locks it; fails at once (IOException naming the holder) when another run holds it.</summary>
    public static RunFolderLock Acquire(string folder)
    {
        bool created = !Directory.Exists(folder);
        Directory.CreateDirectory(folder);
        string path = System.IO.Path.Combine(folder, FileName);
        string pid = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        for (int attempt = 0; ; attempt++)
        {
            FileStream stream;
            try
            {
                stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                throw new IOException($"{folder} is in use by another train run (process {ReadHolder(path)}); wait for it to finish or choose another --output.");
            }
            bool ours;
            try
            {
                stream.SetLength(0);
                using (var writer = new StreamWriter(stream, leaveOpen: true)) writer.Write(pid);
                stream.Flush(flushToDisk: false);
                // A run that finishes deletes .lock while holding it; a run that opened that file just before the delete
                // holds a lock on a file no longer in the folder. The path then shows another file (or none): try again.
                ours = OperatingSystem.IsWindows() || ReadHolder(path) == pid;
            }
            catch
            {
                stream.Dispose();
                throw;
            }
            if (ours) return new RunFolderLock(stream, folder, created);
            stream.Dispose();
            if (attempt + 1 == MaxLockAttempts) throw new IOException($"{path}: could not be locked (it was replaced while being locked, {MaxLockAttempts} times).");
        }
    }

    private static string ReadHolder(string path)
    {
        string text = "";
        try
        {
            // .NET's FileStream takes a shared flock for reading, which the holder's exclusive one refuses; the
            // lock is advisory, so a plain open(2) reads the file.
            if (!OperatingSystem.IsWindows()) text = ReadWithoutLocking(path);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or IOException) { }
        return text.Length > 0 ? text : "unknown";
    }

    private static string ReadWithoutLocking(string path)
    {
        int fd = NativeOpen(path, 0 /* O_RDONLY */);
        if (fd < 0) return "";
        try
        {
            var buffer = new byte[32];
            nint count = NativeRead(fd, buffer, buffer.Length);
            return count > 0 ? System.Text.Encoding.ASCII.GetString(buffer, 0, (int)count).Trim() : "";
        }
        finally
        {
            NativeClose(fd);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "open", SetLastError = true)]
    private static extern int NativeOpen([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, int flags);

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "read", SetLastError = true)]
    private static extern nint NativeRead(int fd, byte[] buffer, nint count);

    [System.Runtime.InteropServices.DllImport("libc.so.6", EntryPoint = "close")]
    private static extern int NativeClose(int fd);

    public void Dispose()
    {
        string path = _stream.Name;
        // Deleted while still held, so no other run can lock this file between the close and the delete.
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _stream.Dispose();
        // A run that failed before writing anything leaves no empty folder behind.
        if (_createdFolder)
        {
            try { if (!Directory.EnumerateFileSystemEntries(_folder).Any()) Directory.Delete(_folder); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }
}
